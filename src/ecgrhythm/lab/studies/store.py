"""The run store: one Optuna study per study, one trial per run, and the runs read back as report rows.

A trial's parameters are the variant's `params` and the `seed`; its value is the
CinC score; its user attributes hold the other measurements, the budget, the
`fold` (`None` for the runs on the one fixed split) and the machine. The study's
`setup` user attribute holds what every run shares (refused if it changes) and
`notes` what a reader of the report should know. :func:`import_csv` rebuilds the
trials from a published report CSV.
"""

from __future__ import annotations

import csv
import datetime
import json
from pathlib import Path

import numpy as np

from ecgrhythm.lab.studies.base import MAX_SEED, STUDIES, Variant
from ecgrhythm.lab.studies.strategies import LENGTHS
from ecgrhythm.networks.cnn_lstm import ModelConfig

__all__ = [
    "DEFAULT_STORE",
    "CSV_COLUMNS",
    "open_store",
    "open_study",
    "recorded",
    "run_key",
    "budget_key",
    "budget_of",
    "means",
    "record_run",
    "run_attrs",
    "study_rows",
    "add_note",
    "import_csv",
    "add_runs",
]

DEFAULT_STORE = Path("runs") / "studies" / "studies.db"
CSV_COLUMNS = [
    "variant",
    "seed",
    "fold",
    "val_cinc_score",
    "f1_N",
    "f1_A",
    "f1_O",
    "f1_~",
    "parameters",
    "train_seconds",
    "seconds_per_epoch",
    "inference_records_per_s",
    "signal_discarded",
    "epochs",
    "train_records",
    "val_records",
    "final_loss",
    "machine",
    "config",
]
_FLOATS = ("val_cinc_score", "f1_N", "f1_A", "f1_O", "f1_~", "train_seconds", "seconds_per_epoch", "inference_records_per_s", "final_loss")
_INTS = ("parameters", "epochs", "train_records", "val_records")


def open_store(storage: str | Path = DEFAULT_STORE):
    """An Optuna storage: a database URL, or a path to a SQLite file (created with its folder)."""
    import optuna

    text = str(storage)
    if "://" not in text:
        path = Path(text).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"sqlite:///{path.resolve()}"
    return optuna.storages.RDBStorage(text)


def open_study(name: str, storage, attrs: dict | None = None, info: dict | None = None):
    """The Optuna study `name`; with `attrs`, created if missing and checked to have been run with them.

    `attrs` (budget, split, margin) must match those recorded; `info` (where the
    data lies, its rate) is recorded on creation but not compared, so a study
    resumes on another machine with the same data.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if attrs is None:
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            raise ValueError(f"study {name!r} has no recorded runs yet in {storage.url}") from None
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    recorded_setup = study.user_attrs.get("setup")
    attrs = json.loads(json.dumps(attrs))
    if recorded_setup is None:
        study.set_user_attr("setup", {**(info or {}), **attrs})
    elif any(recorded_setup.get(k) != v for k, v in attrs.items()):
        changed = sorted(k for k, v in attrs.items() if recorded_setup.get(k) != v)
        raise ValueError(
            f"study {name!r} in the store was run with other settings ({', '.join(changed)} differ): "
            "rerun with the same settings, or use another `storage`"
        )
    return study


def recorded(study) -> list:
    """The study's complete trials."""
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def budget_key(epochs: int, train_records: int, fold) -> tuple[int, int]:
    """What tells the budgets apart: `(epochs, train_records)` for runs on the fixed split, `(epochs, 0)` for
    runs on cross-validation folds (their folds differ by a record or two in size but are one budget)."""
    return int(epochs), 0 if fold is not None else int(train_records)


def budget_of(trial) -> tuple[int, int]:
    """The budget of a recorded run (see :func:`budget_key`)."""
    a = trial.user_attrs
    return budget_key(a["epochs"], a["train_records"], a.get("fold"))


def run_key(trial) -> tuple:
    """What makes a run one run: variant, seed, fold and budget."""
    return trial.user_attrs["variant"], trial.params["seed"], trial.user_attrs.get("fold"), *budget_of(trial)


def means(trials, replicates) -> dict[str, float]:
    """Mean score of each variant that has all of `replicates` (`(fold, seed)` pairs) recorded, in `trials` of one budget."""
    by_name: dict[str, dict[tuple, float]] = {}
    for t in trials:
        by_name.setdefault(t.user_attrs["variant"], {})[(t.user_attrs.get("fold"), t.params["seed"])] = t.value
    return {name: float(np.mean([runs[r] for r in replicates])) for name, runs in by_name.items() if all(r in runs for r in replicates)}


def run_attrs(variant: Variant, measured: dict, *, epochs: int, train_records: int, val_records: int, machine: str, fold=None) -> dict:
    """The user attributes of one run: its measurements, budget, fold, machine and what the variant ran."""
    return {
        "variant": variant.name,
        **measured,
        "epochs": epochs,
        "train_records": train_records,
        "val_records": val_records,
        "fold": fold,
        "machine": machine,
        "model": variant.model.to_dict(),
        "normalization": variant.normalization,
        "bandpass": list(variant.bandpass) if variant.bandpass else None,
        "length": variant.length,
    }


def record_run(study, name: str, variant: Variant, seed: int, attrs: dict, started, finished) -> None:
    """Add one finished run of `variant` with `seed` to `study` (of study `name`)."""
    import optuna

    distributions = {**STUDIES[name].distributions(), "seed": optuna.distributions.IntDistribution(0, MAX_SEED)}
    trial = optuna.trial.create_trial(
        params={**variant.params, "seed": seed},
        distributions={k: distributions[k] for k in (*variant.params, "seed")},
        value=attrs["val_cinc_score"],
        user_attrs=attrs,
    )
    trial.datetime_start, trial.datetime_complete = started, finished
    study.add_trial(trial)


def _row(trial, setup: dict) -> dict:
    a = trial.user_attrs
    config = {k: v for k, v in trial.params.items() if k != "seed"}
    row = {k: a.get(k) for k in CSV_COLUMNS if k in a}
    crops = a.get("length") in LENGTHS and LENGTHS[a["length"]].crops
    row.update(
        {
            "variant": a["variant"],
            "seed": trial.params["seed"],
            "fold": a.get("fold"),
            "config": json.dumps({**config, "model": a["model"]}, sort_keys=True),
            "signal_discarded": setup.get("crop_pad_discards", {}).get("share_of_signal") if crops else 0.0,
        }
    )
    return row


def study_rows(name: str, storage=DEFAULT_STORE) -> tuple[list[dict], dict]:
    """The recorded runs of study `name` as CSV rows (in the order the study runs them), and the study's setup.

    A run recorded twice (two processes on one store) is listed once: the first record.
    """
    study = open_study(name, open_store(storage))
    trials, seen = [], set()
    for t in sorted(recorded(study), key=lambda t: t.number):
        if run_key(t) not in seen:
            seen.add(run_key(t))
            trials.append(t)
    setup = {**study.user_attrs.get("setup", {}), "notes": study.user_attrs.get("notes", [])}
    order: dict[str, int] = {}
    for budget in sorted({budget_of(t) for t in trials}):  # the plan of each budget, the smallest first
        runs = [t for t in trials if budget_of(t) == budget]
        replicates = sorted({(t.user_attrs.get("fold"), t.params["seed"]) for t in runs}, key=_replicate_order)
        for v in STUDIES[name].plan(means(runs, replicates), setup.get("margin", 0.01)):
            order.setdefault(v.name, len(order))
    rows = [_row(t, setup) for t in trials]
    rows.sort(
        key=lambda r: (
            *budget_key(r["epochs"], r["train_records"], r["fold"]),
            order.get(r["variant"], len(order)),
            _replicate_order((r["fold"], r["seed"])),
        )
    )
    return rows, setup


def _replicate_order(replicate: tuple) -> tuple:
    fold, seed = replicate
    return (fold is not None, fold or 0, seed)


def add_note(name: str, text: str, storage=DEFAULT_STORE) -> None:
    """Keep a note with study `name` in the store (what a reader of its report should know); reports list the notes.

    A note already kept is not added twice.
    """
    study = open_study(name, open_store(storage))
    kept = study.user_attrs.get("notes", [])
    if text.strip() not in kept:
        study.set_user_attr("notes", [*kept, text.strip()])


def import_csv(name: str, path, storage, setup: dict, info: dict) -> int:
    """Record the runs of a published `<study>.csv` in the store as a real run would have recorded them.

    Args:
        name: the study.
        path: the CSV (as :func:`write_report` writes it; a `fold` column is optional).
        storage: the store.
        setup, info: the study's setup (checked against the store's) and the data's description, as `run_study` records them.

    Returns:
        The number of runs added; runs already recorded with the same measurements are skipped.

    Raises:
        ValueError: a row names an unknown variant, a configuration other than the variant's, another budget
            than the setup's, or the same run as a recorded one with other measurements. Nothing is added then.
    """
    study = open_study(name, open_store(storage), setup, info)
    known = {v.name: v for v in STUDIES[name].variants()}
    full = {v.name: v for v in STUDIES[name].full_budget_variants()}
    with open(path, newline="") as f:
        parsed = [_parse_row(name, row, known, full, setup, f"{path} line {i}") for i, row in enumerate(csv.DictReader(f), start=2)]
    return add_runs(study, name, parsed, "import into another `storage`, or remove the row")


def add_runs(study, name: str, runs, remedy: str) -> int:
    """Record `runs` (`(where, variant, seed, attrs)` each) in `study`, skipping those already recorded with the same measurements.

    Returns:
        The number of runs added.

    Raises:
        ValueError: a run is recorded (or listed twice) with other measurements (`where` and `remedy` say which and what to do).
            Nothing is added then.
    """
    existing = {run_key(t): (t.params["seed"], t.user_attrs) for t in recorded(study)}
    new = {}
    for where, variant, seed, attrs in runs:
        attrs = json.loads(json.dumps(attrs))  # as the store gives them back (lists, not tuples)
        key = (variant.name, seed, attrs["fold"], *budget_key(attrs["epochs"], attrs["train_records"], attrs["fold"]))
        before = existing.get(key) or new.get(key)
        if before is not None:
            differ = sorted(k for k in {*attrs, *before[-1]} if before[-1].get(k) != attrs.get(k))
            if differ:
                raise ValueError(f"{where}: run {variant.name!r} seed {seed} is recorded in the store with other {', '.join(differ)}: {remedy}")
            continue
        new[key] = (variant, seed, attrs)
    now = datetime.datetime.now()
    for variant, seed, attrs in new.values():
        record_run(study, name, variant, seed, attrs, now, now)
    return len(new)


def _parse_row(name: str, row: dict, known: dict, full: dict, setup: dict, where: str):
    """`(where, variant, seed, attrs)` of one CSV row, checked against the variant and the setup.

    A row with a fold is a full-budget run, checked against the study's full-budget variant of that name.
    """
    try:
        fold = int(row["fold"]) if row.get("fold") else None
        variant = (full if fold is not None else known)[row["variant"]]
    except KeyError:
        choices = sorted(full if row.get("fold") else known)
        raise ValueError(f"{where}: unknown {name} variant {row.get('variant')!r}; known: {choices}") from None
    except ValueError as e:
        raise ValueError(f"{where}: not a study CSV row ({e}); expected the columns {CSV_COLUMNS}") from None
    try:
        config = json.loads(row["config"])
        model = ModelConfig.from_dict(config.pop("model"))
        seed = int(row["seed"])
        measured = {k: float(row[k]) for k in _FLOATS} | {k: int(row[k]) for k in _INTS}
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{where}: not a study CSV row ({e}); expected the columns {CSV_COLUMNS}") from None
    if config != json.loads(json.dumps(variant.params)) or model != variant.model:
        raise ValueError(f"{where}: the config of {variant.name!r} is not what this version runs for it: {row['config']}")
    budget = {"epochs": setup["budget"]["epochs"], "train_records": setup["n_train"], "val_records": setup["n_val"]}
    if fold is None and any(measured[k] != v for k, v in budget.items()):
        raise ValueError(
            f"{where}: a run on the fixed split with { ({k: measured[k] for k in budget}) }, but the setup has {budget}: "
            "give the setup the same epochs and training records as the runs"
        )
    epochs, train_records, val_records = (measured.pop(k) for k in ("epochs", "train_records", "val_records"))
    attrs = run_attrs(variant, measured, epochs=epochs, train_records=train_records, val_records=val_records, machine=row["machine"], fold=fold)
    return where, variant, seed, attrs
