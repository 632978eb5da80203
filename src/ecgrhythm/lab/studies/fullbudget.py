"""Full-budget runs: the finished folds of `ecgrhythm crossval` folders recorded as study runs.

A full-budget run trains the shipped model's recipe with one change (the
variant) on every training record of a cross-validation fold, for as many
epochs as the cross-validation was given. Each finished fold of a crossval
folder is one run, replicated by fold and paired with the other variants'
runs on the same fold. The folder's recipe (`crossval.json`) says which
full-budget variant it ran; a recipe that is not the shipped one plus one
study variant is refused, and so are folds other than those already recorded.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from ecgrhythm.config import PreprocessConfig, TrainConfig
from ecgrhythm.lab.studies.base import STUDIES, STUDY_FS, Variant
from ecgrhythm.lab.studies.store import add_runs, open_store, open_study, run_attrs
from ecgrhythm.lab.studies.strategies import ADVISED_FS, ADVISED_SAMPLES
from ecgrhythm.networks.cnn_lstm import ModelConfig

__all__ = ["crossval_variant", "crossval_runs", "import_crossval", "CROP_PAD_SECONDS"]

# A crossval recipe with this fixed input length runs the length study's `crop_pad`.
CROP_PAD_SECONDS = ADVISED_SAMPLES / ADVISED_FS
_LENGTHS = {None: "bucket_mask", CROP_PAD_SECONDS: "crop_pad"}
# What a full-budget run may change in `train`'s settings besides the variant: the epochs, the seed (one seed for
# all the full-budget runs of a study, so that they pair by fold) and the early-stopping patience, which like the
# epochs sets how long it trains (the runs of docs/studies had `train`'s patience of 12 of their day); crossval
# ignores the validation fraction.
_FREE_TRAIN = ("epochs", "seed", "patience")
# The preprocessing the studies' variants change; a full-budget run keeps the rest as `PreprocessConfig` at STUDY_FS
# has it (the rate, every lead, no RR channel, and any setting added later).
_VARIED_PREPROCESS = ("normalization", "bandpass", "fixed_length_s")
_IGNORED_TRAIN = ("val_fraction",)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} not found: give a folder that `ecgrhythm crossval` wrote") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not readable as JSON ({exc})") from None


def _fixed_preprocess(config: PreprocessConfig) -> dict:
    """`config`'s settings other than those the studies vary."""
    return {k: v for k, v in config.to_dict().items() if k not in _VARIED_PREPROCESS}


def crossval_variant(name: str, recipe: dict, where) -> Variant:
    """The full-budget variant of study `name` that a crossval `recipe` (its `crossval.json`) ran.

    Raises:
        ValueError: the recipe is not the shipped recipe with one of the study's changes (`where` names the folder).
    """
    study = STUDIES[name]
    try:
        pre, model, train = recipe["preprocess"], ModelConfig.from_dict(recipe["model"]), recipe["train"]
        shipped = json.loads(json.dumps(TrainConfig(**{k: train[k] for k in _FREE_TRAIN}).to_dict()))
        train, shipped = ({k: v for k, v in d.items() if k not in _IGNORED_TRAIN} for d in (train, shipped))
        bandpass = tuple(pre["bandpass"]) if pre["bandpass"] else None
        length = _LENGTHS.get(pre.get("fixed_length_s"))
        fixed = _fixed_preprocess(PreprocessConfig.from_dict(pre))
        plain = fixed == _fixed_preprocess(PreprocessConfig(fs=STUDY_FS)) and recipe.get("limit") is None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: not a crossval recipe ({exc})") from None
    if not plain or train != shipped or recipe.get("labels") not in ("auto", "reference") or recipe.get("classes") is not None:
        differ = sorted(k for k in {*train, *shipped} if train.get(k) != shipped.get(k))
        raise ValueError(
            f"{where}: a full-budget run trains the shipped recipe at {STUDY_FS:g} Hz on every record "
            f"(only {', '.join(_FREE_TRAIN[:-1])} and {_FREE_TRAIN[-1]} may differ); this one has other settings ({', '.join(differ) or 'rate, leads, RR channel or limit'})"
        )
    reference = next(v for v in study.full_budget_variants() if v.name == study.full_budget_reference())
    for v in study.full_budget_variants():
        one_change = sum(v.params.get(k) != reference.params.get(k) for k in {*v.params, *reference.params}) <= 1
        if one_change and (v.normalization, v.bandpass, v.length, v.model) == (pre["normalization"], bandpass, length, model):
            return v
    raise ValueError(f"{where}: its recipe is not the shipped recipe with one change of the {name} study (see `ecgrhythm study {name} --help`)")


def crossval_runs(name: str, folder, machine: str | None = None) -> list[tuple]:
    """The finished folds of one crossval folder as runs of study `name`: `(where, variant, seed, attrs)` each.

    Args:
        machine: the rows' machine label (default: the one each fold's model recorded).
    """
    from ecgrhythm.networks.saving import LOG_FILE
    from ecgrhythm.training.crossval import RECIPE_FILE
    from ecgrhythm.training.folds import fold_dir, read_folds
    from ecgrhythm.training.history import read_log

    folder = Path(folder)
    recipe = _read_json(folder / RECIPE_FILE)
    variant = crossval_variant(name, recipe, folder)
    epochs, seed = int(recipe["train"]["epochs"]), int(recipe["train"]["seed"])
    runs = []
    for k in range(len(read_folds(folder).folds)):
        out = fold_dir(folder, k)
        if not (out / "oof.csv").is_file():
            continue  # not finished
        try:
            meta = _read_json(out / "config.json")["metadata"]
            log = read_log(out)
            fit = [float(r["fit_seconds"]) for r in log]
            val = [float(r["val_seconds"]) for r in log]
            best = next(r for r in log if int(r["epoch"]) == int(meta["best_epoch"]))  # 1-based, as the log counts
            machine = machine or meta["machine"]
        except (KeyError, ValueError, StopIteration, OSError) as exc:
            raise ValueError(f"{out}: not a finished crossval fold of this version (its config.json or {LOG_FILE}: {exc!r})") from None
        measured = {
            "val_cinc_score": round(float(meta["val_cinc_score"]), 5),
            **{f"f1_{c}": round(float(v), 5) for c, v in meta["val_f1"].items()},
            "final_loss": round(float(best["loss"]), 5),
            "parameters": int(meta["parameters"]),
            "train_seconds": round(float(meta["train_seconds"]), 1),
            # the first epoch includes compiling: the per-epoch times leave it out when there are others
            "seconds_per_epoch": round(statistics.median(fit[1:] or fit), 2),
            "inference_records_per_s": round(int(meta["n_val"]) / statistics.median(val[1:] or val), 1),
        }
        attrs = run_attrs(
            variant,
            measured,
            epochs=epochs,
            train_records=int(meta["n_train"]),
            val_records=int(meta["n_val"]),
            machine=machine,
            fold=k,
        )
        runs.append((str(out), variant, seed, attrs))
    return runs


def import_crossval(name: str, folders, storage, *, machine: str | None = None) -> int:
    """Record the finished folds of crossval `folders` as full-budget runs of study `name` in the store.

    The study must be in the store already (its reduced-budget runs, or their published CSV imported), and
    every folder must use the folds of the full-budget runs recorded so far.

    Returns:
        The number of runs added (folds already recorded with the same measurements are skipped).
    """
    from ecgrhythm.training.folds import read_folds

    study = open_study(name, open_store(storage))
    paired = study.user_attrs.get("crossval_folds")
    seeds = {t.params["seed"] for t in study.get_trials(deepcopy=False) if t.user_attrs.get("fold") is not None}
    runs = []
    for folder in folders:
        digest = read_folds(folder).digest
        if paired not in (None, digest):
            raise ValueError(
                f"{folder}: its folds differ from those of the full-budget runs in the store (another fold seed, number of folds or data): "
                "the runs would not pair fold by fold"
            )
        paired = digest
        found = crossval_runs(name, folder, machine)
        seeds |= {seed for _, _, seed, _ in found}
        if len(seeds) > 1:
            raise ValueError(f"{folder}: the full-budget runs of a study share one training seed (they pair by fold); found seeds {sorted(seeds)}")
        runs += found
    made = add_runs(study, name, runs, "the fold was trained again with other results; import into another `storage`")
    study.set_user_attr("crossval_folds", paired)
    return made
