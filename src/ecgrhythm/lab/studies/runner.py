"""Running a study: the data every run shares, one run of a variant, and the loop that records the missing runs.

This is the one module of the package that uses `training` (data, class
weights, the epoch, the scoring) and that builds a network.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.lab.studies.base import MAX_SEED, STUDIES, STUDY_FS, Budget, Variant
from ecgrhythm.lab.studies.store import DEFAULT_STORE, budget_of, import_csv, means, open_store, open_study, record_run, recorded, run_attrs, run_key
from ecgrhythm.lab.studies.strategies import discarded_share, length_strategy

if TYPE_CHECKING:
    from ecgrhythm.training.data import LabelledData

__all__ = ["StudyData", "load_study_data", "fit_variant", "run_variant", "run_study", "import_runs"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class StudyData:
    """The records a study uses and the fixed split every run shares.

    Attributes:
        records: training's `LabelledData` at the study's rate, not normalised or filtered, holding
            only the records the runs use (the training subset, then the validation part).
        train_idx, val_idx: indices into `records` `(n_train,)`, `(n_val,)`.
        source: the folder, resolved.
        fingerprint: a digest of the folder's labels and of the split, to refuse resuming on other data.
        crop_pad_discards: what cropping to 30 s throws away over the whole folder (`discarded_share`).
    """

    records: LabelledData
    train_idx: np.ndarray
    val_idx: np.ndarray
    source: str
    fingerprint: str
    crop_pad_discards: dict

    @property
    def fs(self) -> float:
        return self.records.preprocess.fs

    def setup(self, budget: Budget, margin: float) -> tuple[dict, dict]:
        """`(setup, info)` as the store records them: what every run shares (compared on resume) and where the data lies (not compared)."""
        setup = {
            "budget": dataclasses.asdict(budget),
            "split": self.fingerprint,
            "n_train": int(len(self.train_idx)),
            "n_val": int(len(self.val_idx)),
            "margin": margin,
        }
        return setup, {"data": self.source, "fs": self.fs, "crop_pad_discards": self.crop_pad_discards}


def load_study_data(data_dir, budget: Budget, fs: float = STUDY_FS) -> StudyData:
    """Read a folder with a `REFERENCE.csv` once, and fix the split every run uses."""
    from sklearn.model_selection import train_test_split

    from ecgrhythm.training.data import load_labelled, stratified_split

    data = load_labelled(data_dir, PreprocessConfig(fs=fs, normalization="none"), labels="reference")
    train_idx, val_idx = stratified_split(data.targets, budget.val_fraction, budget.split_seed)
    if budget.train_records < len(train_idx):
        train_idx, _ = train_test_split(train_idx, train_size=budget.train_records, stratify=data.targets[train_idx], random_state=budget.split_seed)
        train_idx = np.sort(train_idx)
    text = json.dumps([[data.names[i] for i in train_idx], [data.names[i] for i in val_idx], data.targets.tolist()])
    fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
    discards = discarded_share([len(x) for x in data.signals], fs)
    used = np.concatenate([train_idx, val_idx])  # keep only what the runs use
    records = dataclasses.replace(data, names=[data.names[i] for i in used], signals=[data.signals[i] for i in used], targets=data.targets[used])
    return StudyData(records, np.arange(len(train_idx)), np.arange(len(train_idx), len(used)), str(Path(data_dir).resolve()), fingerprint, discards)


def fit_variant(data: StudyData, variant: Variant, seed: int, budget: Budget, *, signals=None, verbose: int = 0):
    """Train one run of `variant` with `seed` on the study's training records.

    Args:
        signals: the signals already normalised for `variant` (computed if `None`).

    Returns:
        `(model, strategy, signals, epoch_seconds, final_loss)`: the trained network, the variant's length
        strategy, the normalised signals of every record and the seconds of each epoch.
    """
    import keras

    from ecgrhythm.preprocessing.batching import WindowSequence
    from ecgrhythm.training.losses import class_weights
    from ecgrhythm.training.plan import compile_network
    from ecgrhythm.training.trainer import fit_epoch

    records = data.records
    signals = variant.signals(records.signals, data.fs, data.train_idx) if signals is None else signals
    tc = budget.train_config(seed)
    strategy = length_strategy(variant.length, data.fs, variant.model.downsampling, tc.window_s)
    y_train = records.targets[data.train_idx]
    train_signals, window = strategy.training([signals[i] for i in data.train_idx])
    weights = class_weights(y_train, len(records.classes), tc.class_weighting)[y_train]
    sequence = WindowSequence(train_signals, y_train, window=window, batch_size=min(tc.batch_size, len(y_train)), sample_weight=weights, seed=seed)
    keras.utils.set_random_seed(seed)
    model = compile_network(signals[0].shape[1], len(records.classes), variant.model, tc)
    epoch_seconds = []
    for epoch in range(tc.epochs):
        t0 = time.perf_counter()
        fit = fit_epoch(model, sequence, epoch, tc, verbose=verbose)
        epoch_seconds.append(time.perf_counter() - t0)
    return model, strategy, signals, epoch_seconds, float(fit.history["loss"][-1])


def run_variant(data: StudyData, variant: Variant, seed: int, budget: Budget, *, signals=None, verbose: int = 0) -> dict:
    """Train and score one run (see :func:`fit_variant`).

    Returns:
        The run's measurements: `val_cinc_score`, `f1_<class>`, `parameters`,
        `train_seconds`, `seconds_per_epoch`, `inference_records_per_s`, ...
    """
    from ecgrhythm.scoring.metrics import score_probabilities

    model, strategy, signals, epoch_seconds, final_loss = fit_variant(data, variant, seed, budget, signals=signals, verbose=verbose)
    val_signals = [signals[i] for i in data.val_idx]
    probs = strategy.predict(model, val_signals)  # compiles the shapes it needs
    t0 = time.perf_counter()
    strategy.predict(model, val_signals)
    inference_seconds = time.perf_counter() - t0
    score, f1, _ = score_probabilities(data.records.targets[data.val_idx], probs, data.records.classes)
    return {
        "val_cinc_score": round(score, 5),
        **{f"f1_{c}": round(v, 5) for c, v in f1.items()},
        "final_loss": round(final_loss, 5),
        "parameters": int(model.count_params()),
        "train_seconds": round(sum(epoch_seconds), 1),
        # the first epoch includes compiling: the per-epoch time leaves it out when there are others
        "seconds_per_epoch": round(float(np.mean(epoch_seconds[1:] or epoch_seconds)), 2),
        "inference_records_per_s": round(len(val_signals) / inference_seconds, 1),
    }


def _study(name: str):
    if name not in STUDIES:
        raise ValueError(f"Invalid argument `name`: expected one of {sorted(STUDIES)}. Received: name={name!r}")
    return STUDIES[name]


def run_study(
    name: str,
    data_dir,
    *,
    storage=DEFAULT_STORE,
    budget: Budget = Budget(),
    seeds=(0, 1, 2),
    margin: float = 0.01,
    variants=None,
    max_runs: int | None = None,
    device: str | None = None,
    data: StudyData | None = None,
    on_run=None,
    verbose: int = 0,
) -> int:
    """Run the missing runs of study `name` and record each in the store as it finishes.

    Args:
        name: a study in `STUDIES` (`"normalization"`, `"length"`, `"depth"`, ...).
        data_dir: folder with records and a `REFERENCE.csv`.
        storage: database URL or SQLite file of the store.
        budget: what every run gets (recorded; a study cannot resume with another).
        seeds: run seeds; every variant runs once per seed.
        margin: the smallest improvement in mean CinC score that counts (depth study).
        variants: names of the variants to run (default: all the study asks for).
        max_runs: stop after this many runs (the rest run next time).
        device: label for the rows (default: the machine's description).
        data: the folder's data if already loaded (`load_study_data`).
        on_run: called with `(variant, seed, measurements)` after each run.

    Returns:
        The number of runs made now.
    """
    from ecgrhythm.utils.machine import describe

    study_def = _study(name)
    seeds = tuple(dict.fromkeys(int(s) for s in seeds))
    if not seeds or any(not 0 <= s <= MAX_SEED for s in seeds):
        raise ValueError(f"Invalid argument `seeds`: expected seeds in [0, {MAX_SEED}]. Received: seeds={seeds!r}")
    if len(seeds) < 3:
        logger.warning("%d seed(s): the report answers a study only from variants run with at least 3 seeds", len(seeds))
    if not margin >= 0:
        raise ValueError(f"Invalid argument `margin`: expected a non-negative score difference. Received: margin={margin!r}")
    if variants is not None:
        known = {v.name for v in study_def.variants()}
        unknown = [v for v in variants if v not in known]
        if unknown:
            raise ValueError(f"unknown {name} variants {unknown}; known: {sorted(known)}")
    data = data or load_study_data(data_dir, budget)
    study = open_study(name, open_store(storage), *data.setup(budget, margin))
    machine = device or describe()
    n_train, n_val = int(len(data.train_idx)), int(len(data.val_idx))
    made = 0
    cached_key, cached = None, None
    while max_runs is None or made < max_runs:
        trials = [t for t in recorded(study) if budget_of(t) == (budget.epochs, n_train) and t.user_attrs.get("fold") is None]
        done = {run_key(t)[:2] for t in trials}
        plan = study_def.plan(means(trials, [(None, s) for s in seeds]), margin)
        if variants is not None:
            plan = [v for v in plan if v.name in variants]
        todo = [(v, s) for s in seeds for v in plan if (v.name, s) not in done]
        if not todo:
            break
        variant, seed = todo[0]
        key = (variant.normalization, variant.bandpass)
        if key != cached_key:
            cached_key, cached = key, variant.signals(data.records.signals, data.fs, data.train_idx)
        logger.info("%s: %s, seed %d", name, variant.name, seed)
        started = datetime.datetime.now()
        measured = run_variant(data, variant, seed, budget, signals=cached, verbose=verbose)
        attrs = run_attrs(variant, measured, epochs=budget.epochs, train_records=n_train, val_records=n_val, machine=machine)
        record_run(study, name, variant, seed, attrs, started, datetime.datetime.now())
        made += 1
        if on_run is not None:
            on_run(variant, seed, measured)
    return made


def import_runs(
    name: str, csv_path, data_dir, *, storage=DEFAULT_STORE, budget: Budget = Budget(), margin: float = 0.01, data: StudyData | None = None
) -> int:
    """Rebuild the store's runs of study `name` from a published `<name>.csv` (see `store.import_csv`).

    The study's setup (split fingerprint, record counts, budget, margin) is worked out from `data_dir` as
    :func:`run_study` does, so that the imported runs and later real runs are one study.

    Returns:
        The number of runs added.
    """
    _study(name)
    data = data or load_study_data(data_dir, budget)
    return import_csv(name, csv_path, storage, *data.setup(budget, margin))
