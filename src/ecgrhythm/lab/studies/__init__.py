"""Controlled experiments behind the defaults: normalisation, variable-length strategy and depth.

Every run of a study trains on the same data (one seeded split of a labelled
folder, and one fixed stratified subset of its training part), for the same
number of epochs, with the same seeds; only the factor under study changes.
Each run is scored on the whole validation part after its last epoch (no
epoch is chosen on validation).

Runs are recorded as they finish in an Optuna study (by default the SQLite
file `runs/studies/studies.db`), one trial per run with the factor and the
seed as parameters, the CinC score as value and the other measurements as
user attributes. Browse it with

    optuna trials --storage sqlite:///runs/studies/studies.db --study-name normalization

or with `optuna-dashboard sqlite:///runs/studies/studies.db`. Running the same
study again skips the runs already recorded, so a killed study resumes where it
stopped (the run that was interrupted starts again). :func:`write_report`
turns the recorded runs into `<study>.csv`, `<study>.md` and `<study>.png`;
:func:`import_runs` rebuilds a store's runs from such a CSV.

Full-budget runs are the folds of `ecgrhythm crossval` folders that trained the
shipped recipe with one study change (every training record of the fold, as many
epochs as the recipe says, the best epoch chosen on the fold as `train` does);
:func:`import_crossval` records their finished folds, replicated by fold. A report
gives each budget its own answer and table, the full budget first.

Modules: `base` (budget, variant, the study class and its registry), `strategies`
(the length strategies and their registry), `normalization`, `length`, `depth`
(one study each), `runner` (data, one run, the loop), `fullbudget` (crossval folds
as runs), `store` (Optuna), `stats` and `report`. A new study is a `Study` subclass with `@register_study`; a new
length strategy a `LengthStrategy` subclass with `@register_length`.

Example:
>>> from ecgrhythm.lab.studies import STUDIES
>>> sorted(STUDIES)
['depth', 'length', 'normalization']
"""

from __future__ import annotations

import ecgrhythm.lab.studies.depth as depth  # noqa: F401  (registers the studies)
import ecgrhythm.lab.studies.length as length  # noqa: F401  (registers the studies)
import ecgrhythm.lab.studies.normalization as normalization  # noqa: F401  (registers the studies)
from ecgrhythm.lab.studies.base import BASE_MODEL, FULL_BUDGET_MODEL, STUDIES, STUDY_FS, Budget, Study, Variant, register_study
from ecgrhythm.lab.studies.depth import chosen_depth, depth_plan, depth_variant
from ecgrhythm.lab.studies.fullbudget import crossval_runs, import_crossval
from ecgrhythm.lab.studies.report import write_report
from ecgrhythm.lab.studies.runner import StudyData, import_runs, load_study_data, run_study, run_variant
from ecgrhythm.lab.studies.stats import answer, summarise
from ecgrhythm.lab.studies.store import CSV_COLUMNS, DEFAULT_STORE, add_note, import_csv, open_store, study_rows
from ecgrhythm.lab.studies.strategies import LENGTHS, LengthStrategy, register_length

__all__ = [
    "STUDIES",
    "Budget",
    "Variant",
    "Study",
    "register_study",
    "LENGTHS",
    "LengthStrategy",
    "register_length",
    "BASE_MODEL",
    "FULL_BUDGET_MODEL",
    "crossval_runs",
    "import_crossval",
    "STUDY_FS",
    "StudyData",
    "load_study_data",
    "run_variant",
    "run_study",
    "import_runs",
    "import_csv",
    "write_report",
    "study_rows",
    "summarise",
    "answer",
    "open_store",
    "add_note",
    "CSV_COLUMNS",
    "DEFAULT_STORE",
    "depth_variant",
    "depth_plan",
    "chosen_depth",
]
