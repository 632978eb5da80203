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
turns the recorded runs into `<study>.csv`, `<study>.md` and `<study>.png`.

Example:
>>> from ecgrhythm.studies import STUDIES
>>> sorted(STUDIES)
['depth', 'length', 'normalization']
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from ._io import atomic_write, atomic_write_text
from .config import ModelConfig, PreprocessConfig, TrainConfig
from .preprocessing import bandpass, normalize

__all__ = [
    "STUDIES",
    "Budget",
    "Variant",
    "StudyData",
    "load_study_data",
    "run_study",
    "write_report",
    "open_store",
    "add_note",
    "DEFAULT_STORE",
]

logger = logging.getLogger(__name__)

DEFAULT_STORE = Path("runs") / "studies" / "studies.db"
BANDPASS = (0.5, 40.0)
# The common advice: crop or pad every record to 9,000 samples at 300 Hz (30 s).
ADVISED_SAMPLES, ADVISED_FS = 9000, 300.0
MAX_SEED = 10**6
# The network and rate every study starts from, fixed here so that changing a default of `train`
# does not change what a study command measures: one BiLSTM layer of 64 units after six conv blocks, at 150 Hz.
BASE_MODEL = ModelConfig(conv_filters=(16, 32, 48, 64, 96, 128), conv_kernel=7, lstm_layers=1, lstm_units=64, bidirectional=True, dropout=0.3)
STUDY_FS = 150.0


@dataclasses.dataclass(frozen=True)
class Budget:
    """What every run of a study gets: the same data, epochs and optimiser.

    Args:
        epochs: epochs of each run (cosine learning-rate decay over them).
        train_records: size of the fixed stratified subset of the training
            part that every run trains on (all of it if larger).
        val_fraction: share of the folder held out (stratified) for validation.
        split_seed: seed of the split and of the subset (the run seeds vary
            only the weights and the windows).
        batch_size, window_s, learning_rate: as in :class:`TrainConfig`.
    """

    epochs: int = 4
    train_records: int = 2000
    val_fraction: float = 0.15
    split_seed: int = 0
    batch_size: int = 32
    window_s: float = 20.0
    learning_rate: float = 1e-3

    def __post_init__(self):
        self.train_config(0)  # the same checks as training
        if self.train_records < 2:
            raise ValueError(f"Invalid argument `train_records`: expected at least 2. Received: train_records={self.train_records!r}")

    def train_config(self, seed: int) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, window_s=self.window_s,
                           learning_rate=self.learning_rate, val_fraction=self.val_fraction, seed=seed)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One setting of the factor under study.

    Attributes:
        name: short label used in reports.
        params: the factor's values as recorded in the store.
        normalization: per-record method (see :func:`ecgrhythm.preprocessing.normalize`)
            or `"global"`: one offset and scale for the whole data set,
            measured on the training records.
        bandpass: band-pass filter `(low, high)` in Hz, or `None`.
        length: how records of different lengths reach the network (see `LENGTH_STRATEGIES`).
        model: the network.
    """

    name: str
    params: dict
    normalization: str = "zscore"
    bandpass: tuple[float, float] | None = None
    length: str = "bucket_mask"
    model: ModelConfig = BASE_MODEL


# --------------------------------------------------------------------------- data


@dataclasses.dataclass
class StudyData:
    """The records a study uses: signals at the model's rate (not normalised, not filtered), labels and the fixed split.

    Attributes:
        fingerprint: a digest of the folder's labels and of the split, to refuse resuming on other data.
        crop_pad_discards: what cropping to 30 s throws away over the whole folder (`discarded_share`).
    """

    names: list[str]
    signals: list[np.ndarray]
    targets: np.ndarray
    classes: tuple[str, ...]
    fs: float
    train_idx: np.ndarray
    val_idx: np.ndarray
    source: str
    fingerprint: str
    crop_pad_discards: dict


def load_study_data(data_dir, budget: Budget, fs: float = STUDY_FS) -> StudyData:
    """Read a folder with a `REFERENCE.csv` once, and fix the split every run uses."""
    from sklearn.model_selection import train_test_split

    from .labelled import load_labelled, stratified_split

    data = load_labelled(data_dir, PreprocessConfig(fs=fs, normalization="none"), labels="reference")
    train_idx, val_idx = stratified_split(data.targets, budget.val_fraction, budget.split_seed)
    if budget.train_records < len(train_idx):
        train_idx, _ = train_test_split(train_idx, train_size=budget.train_records, stratify=data.targets[train_idx], random_state=budget.split_seed)
        train_idx = np.sort(train_idx)
    text = json.dumps([[data.names[i] for i in train_idx], [data.names[i] for i in val_idx], data.targets.tolist()])
    fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
    discards = discarded_share([len(x) for x in data.signals], fs)
    used = np.concatenate([train_idx, val_idx])  # keep only what the runs use
    return StudyData([data.names[i] for i in used], [data.signals[i] for i in used], data.targets[used], data.classes, fs,
                     np.arange(len(train_idx)), np.arange(len(train_idx), len(used)), str(Path(data_dir).resolve()), fingerprint, discards)


def _normalised(data: StudyData, variant: Variant) -> list[np.ndarray]:
    """The signals filtered and normalised as `variant` says."""
    signals = data.signals
    if variant.bandpass is not None:
        signals = [bandpass(s, data.fs, *variant.bandpass) for s in signals]
    if variant.normalization != "global":
        return [normalize(s, variant.normalization) for s in signals]
    train = np.concatenate([signals[i] for i in data.train_idx])
    center, scale = train.mean(axis=0), max(float(train.std()), 1e-6)
    return [((s - center) / scale).astype(np.float32) for s in signals]


# ------------------------------------------------------------------ length strategies

LENGTH_STRATEGIES = {
    "crop_pad": "crop or zero-pad every record to 9,000 samples at 300 Hz (30 s)",
    "resample": "resample every record to one fixed length (30 s at the model's rate)",
    "bucket_mask": "pad each batch to a length bucket and mask the padding (ecgrhythm's default)",
    "windows": "fixed 20 s windows, no mask; a record's prediction is the mean over windows with 50% overlap",
}


def advised_length(fs: float, downsampling: int) -> tuple[int, int]:
    """`(kept, padded)`: the advised 9,000 samples at 300 Hz in samples at `fs`, and that
    rounded up to a multiple of the network's downsampling factor."""
    kept = int(round(ADVISED_SAMPLES * fs / ADVISED_FS))
    return kept, int(math.ceil(kept / downsampling) * downsampling)


def crop_or_pad(signal: np.ndarray, kept: int, length: int) -> np.ndarray:
    """The first `kept` samples of `signal`, zero-padded to `length` (the padding is not masked)."""
    out = np.zeros((length, signal.shape[1]), dtype=np.float32)
    n = min(len(signal), kept)
    out[:n] = signal[:n]
    return out


def resample_to(signal: np.ndarray, length: int) -> np.ndarray:
    """`signal` stretched or squeezed to exactly `length` samples (Fourier method)."""
    from scipy.signal import resample

    return resample(signal.astype(np.float64), length, axis=0).astype(np.float32)


def pad_to(signal: np.ndarray, length: int) -> np.ndarray:
    """`signal` zero-padded at the end to at least `length` samples (the padding is not masked)."""
    if len(signal) >= length:
        return signal
    return np.concatenate([signal, np.zeros((length - len(signal), signal.shape[1]), dtype=signal.dtype)])


def window_starts(n: int, window: int, hop: int) -> list[int]:
    """Starts of windows of `window` samples every `hop` samples, the last one ending at `n`."""
    if n <= window:
        return [0]
    starts = list(range(0, n - window + 1, hop))
    if starts[-1] != n - window:
        starts.append(n - window)
    return starts


def discarded_share(lengths, fs: float, kept_seconds: float = ADVISED_SAMPLES / ADVISED_FS) -> dict[str, float]:
    """What cropping records of `lengths` samples at `fs` to `kept_seconds` throws away."""
    lengths = np.asarray(lengths, dtype=float)
    kept = np.minimum(lengths, kept_seconds * fs)
    return {"share_of_signal": round(float(1 - kept.sum() / lengths.sum()), 4), "share_of_records_cut": round(float(np.mean(lengths > kept)), 4)}


class _Strategy:
    """Turns signals into training windows and validation probabilities for one length strategy."""

    def __init__(self, name: str, fs: float, downsampling: int, window_s: float):
        from .batching import bucket_lengths, window_length

        if name not in LENGTH_STRATEGIES:
            raise ValueError(f"Invalid argument `length`: expected one of {list(LENGTH_STRATEGIES)}. Received: length={name!r}")
        self.name = name
        self.window = window_length(window_s, fs, downsampling)
        self.kept, self.fixed = advised_length(fs, downsampling)
        self.buckets = bucket_lengths(fs, downsampling)

    def fixed_input(self, signal):
        return crop_or_pad(signal, self.kept, self.fixed) if self.name == "crop_pad" else resample_to(signal, self.fixed)

    def training(self, signals) -> tuple[list[np.ndarray], int]:
        """Training signals and the window cut from them each epoch."""
        if self.name in ("crop_pad", "resample"):
            return [self.fixed_input(s) for s in signals], self.fixed
        if self.name == "windows":
            return [pad_to(s, self.window) for s in signals], self.window
        return list(signals), self.window

    def predict(self, model, signals) -> np.ndarray:
        from .inference import average_by_owner, predict_signals

        if self.name in ("crop_pad", "resample"):
            return predict_signals(model, [self.fixed_input(s) for s in signals], (self.fixed,))
        if self.name == "bucket_mask":
            return predict_signals(model, signals, self.buckets)
        windows, owners = [], []
        for i, s in enumerate(signals):
            s = pad_to(s, self.window)
            for start in window_starts(len(s), self.window, self.window // 2):
                windows.append(s[start : start + self.window])
                owners.append(i)
        return average_by_owner(predict_signals(model, windows, (self.window,)), owners, np.ones(len(windows)), len(signals))


# ----------------------------------------------------------------------- one run


def run_variant(data: StudyData, variant: Variant, seed: int, budget: Budget, *, signals=None, verbose: int = 0) -> dict:
    """Train and score one run.

    Args:
        signals: the signals already normalised for `variant` (computed if `None`).

    Returns:
        The run's measurements: `val_cinc_score`, `f1_<class>`, `parameters`,
        `train_seconds`, `seconds_per_epoch`, `inference_records_per_s`, ...
    """
    import keras

    from .batching import WindowSequence
    from .models import build_lstm_classifier
    from .metrics import score_probabilities
    from .training import class_weights, fit_epoch

    signals = _normalised(data, variant) if signals is None else signals
    tc = budget.train_config(seed)
    strategy = _Strategy(variant.length, data.fs, variant.model.downsampling, tc.window_s)
    y_train, y_val = data.targets[data.train_idx], data.targets[data.val_idx]
    train_signals, window = strategy.training([signals[i] for i in data.train_idx])
    weights = class_weights(y_train, len(data.classes), tc.class_weighting)[y_train]
    sequence = WindowSequence(train_signals, y_train, window=window, batch_size=min(tc.batch_size, len(y_train)), sample_weight=weights, seed=seed)

    keras.utils.set_random_seed(seed)
    model = build_lstm_classifier(signals[0].shape[1], len(data.classes), variant.model)
    model.compile(optimizer=keras.optimizers.Adam(tc.learning_rate), loss="sparse_categorical_crossentropy")
    epoch_seconds = []
    for epoch in range(tc.epochs):
        t0 = time.perf_counter()
        fit = fit_epoch(model, sequence, epoch, tc, verbose=verbose)
        epoch_seconds.append(time.perf_counter() - t0)
    val_signals = [signals[i] for i in data.val_idx]
    probs = strategy.predict(model, val_signals)  # compiles the shapes it needs
    t0 = time.perf_counter()
    strategy.predict(model, val_signals)
    inference_seconds = time.perf_counter() - t0
    score, f1, _ = score_probabilities(y_val, probs, data.classes)
    return {
        "val_cinc_score": round(score, 5),
        **{f"f1_{c}": round(v, 5) for c, v in f1.items()},
        "final_loss": round(float(fit.history["loss"][-1]), 5),
        "parameters": int(model.count_params()),
        "train_seconds": round(sum(epoch_seconds), 1),
        # the first epoch includes compiling: the per-epoch time leaves it out when there are others
        "seconds_per_epoch": round(float(np.mean(epoch_seconds[1:] or epoch_seconds)), 2),
        "inference_records_per_s": round(len(val_signals) / inference_seconds, 1),
    }


# ------------------------------------------------------------------------ studies


def _normalization_variants() -> list[Variant]:
    out = []
    for band in (None, BANDPASS):
        for method in ("none", "zscore", "minmax", "robust", "global"):
            tag = "bandpass" if band else "raw"
            out.append(Variant(f"{method}/{tag}", {"normalization": method, "bandpass": f"{band[0]:g}-{band[1]:g} Hz" if band else "none"},
                               normalization=method, bandpass=band))
    return out


def _length_variants() -> list[Variant]:
    return [Variant(name, {"length": name}, length=name) for name in LENGTH_STRATEGIES]


FRONT_ENDS = {
    "6 blocks 16-128": (16, 32, 48, 64, 96, 128),
    "6 blocks 8-64": (8, 16, 24, 32, 48, 64),
    "5 blocks 16-96": (16, 32, 48, 64, 96),
}
DEFAULT_FRONT_END = "6 blocks 16-128"
MAX_LAYERS = 4


def depth_variant(layers: int, units: int = 64, bidirectional: bool = True, front_end: str = DEFAULT_FRONT_END) -> Variant:
    """A depth-study network: `layers` LSTM layers of `units` per direction after a front end."""
    name = f"{layers}x{'Bi' if bidirectional else ''}LSTM{units}" if layers else "no LSTM"
    if front_end != DEFAULT_FRONT_END:
        name += f", conv {front_end}"
    params = {"lstm_layers": layers, "lstm_units": units, "bidirectional": bidirectional, "front_end": front_end}
    model = dataclasses.replace(BASE_MODEL, conv_filters=FRONT_ENDS[front_end], lstm_layers=layers, lstm_units=units, bidirectional=bidirectional)
    return Variant(name, params, model=model)


def depth_plan(means: dict[str, float], margin: float) -> list[Variant]:
    """The networks the "start simple, add layers" procedure has asked for, given the
    mean scores of the finished ones (`means`: name -> mean over seeds).

    1. One BiLSTM layer; add a layer while the mean score improves by more than `margin`.
    2. At the depth reached: narrower and wider layers, and one direction only.
    3. At that depth: two other convolutional front ends, and no LSTM at all (a reference).

    A step is asked for only once every network of the step before has a mean.
    """
    plan = [depth_variant(1)]
    layers = 1
    while True:
        if depth_variant(layers).name not in means:
            return plan
        if layers == MAX_LAYERS:
            break
        deeper = depth_variant(layers + 1)
        plan.append(deeper)
        if deeper.name not in means:
            return plan
        if means[deeper.name] <= means[depth_variant(layers).name] + margin:
            break
        layers += 1
    stage2 = [depth_variant(layers, 32), depth_variant(layers, 128), depth_variant(layers, 64, bidirectional=False)]
    plan += stage2
    if any(v.name not in means for v in stage2):
        return plan
    plan += [depth_variant(layers, front_end=f) for f in FRONT_ENDS if f != DEFAULT_FRONT_END] + [depth_variant(0)]
    return plan


def chosen_depth(means: dict[str, float], margin: float) -> int:
    """The number of layers at which the adding stopped (the deeper network did not beat it by `margin`)."""
    layers = 1
    while layers < MAX_LAYERS:
        a, b = depth_variant(layers).name, depth_variant(layers + 1).name
        if a not in means or b not in means or means[b] <= means[a] + margin:
            break
        layers += 1
    return layers


def _variant_names(study: str) -> set[str]:
    """Every variant name a study can run."""
    if study == "normalization":
        return {v.name for v in _normalization_variants()}
    if study == "length":
        return set(LENGTH_STRATEGIES)
    return {depth_variant(n, u, b, f).name for n in range(MAX_LAYERS + 1) for u in (32, 64, 128) for b in (True, False) for f in FRONT_ENDS}


@dataclasses.dataclass(frozen=True)
class Study:
    """A study: its question, its variants (fixed, or planned from results) and the variant that is the default."""

    name: str
    question: str
    factor: str
    plan: object  # callable(means, margin) -> list[Variant]
    reference: str  # the variant that is ecgrhythm's default (or the procedure's start)


def _distributions(study: str) -> dict:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if study == "normalization":
        dists = {"normalization": CategoricalDistribution(["none", "zscore", "minmax", "robust", "global"]),
                 "bandpass": CategoricalDistribution(["none", f"{BANDPASS[0]:g}-{BANDPASS[1]:g} Hz"])}
    elif study == "length":
        dists = {"length": CategoricalDistribution(list(LENGTH_STRATEGIES))}
    else:
        dists = {"lstm_layers": IntDistribution(0, 16), "lstm_units": IntDistribution(1, 4096),
                 "bidirectional": CategoricalDistribution([True, False]), "front_end": CategoricalDistribution(list(FRONT_ENDS))}
    return {**dists, "seed": IntDistribution(0, MAX_SEED)}


STUDIES = {
    "normalization": Study("normalization", "Is normalising the raw signal a good input, and which normalisation?", "normalisation and band-pass filter",
                           lambda means, margin: _normalization_variants(), "zscore/raw"),
    "length": Study("length", "How should an LSTM take inputs of different lengths?", "variable-length strategy",
                    lambda means, margin: _length_variants(), "bucket_mask"),
    "depth": Study("depth", "How deep should the LSTM network be?", "network depth and width", depth_plan, depth_variant(1).name),
}


# -------------------------------------------------------------------------- store


def open_store(storage: str | Path = DEFAULT_STORE):
    """An Optuna storage: a database URL, or a path to a SQLite file (created with its folder)."""
    import optuna

    text = str(storage)
    if "://" not in text:
        path = Path(text).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        text = f"sqlite:///{path.resolve()}"
    return optuna.storages.RDBStorage(text)


def _open_study(name: str, storage, attrs: dict | None = None, info: dict | None = None):
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
    recorded = study.user_attrs.get("setup")
    attrs = json.loads(json.dumps(attrs))
    if recorded is None:
        study.set_user_attr("setup", {**(info or {}), **attrs})
    elif any(recorded.get(k) != v for k, v in attrs.items()):
        changed = sorted(k for k, v in attrs.items() if recorded.get(k) != v)
        raise ValueError(f"study {name!r} in the store was run with other settings ({', '.join(changed)} differ): "
                         "rerun with the same settings, or use another --store")
    return study


def _recorded(study) -> list:
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def _means(trials, seeds) -> dict[str, float]:
    """Mean score of each variant that has all of `seeds` recorded."""
    by_name: dict[str, dict[int, float]] = {}
    for t in trials:
        by_name.setdefault(t.user_attrs["variant"], {})[t.params["seed"]] = t.value
    return {name: float(np.mean([runs[s] for s in seeds])) for name, runs in by_name.items() if all(s in runs for s in seeds)}


def run_study(name: str, data_dir, *, storage=DEFAULT_STORE, budget: Budget = Budget(), seeds=(0, 1, 2), margin: float = 0.01,
              variants=None, max_runs: int | None = None, device: str | None = None, data: StudyData | None = None,
              on_run=None, verbose: int = 0) -> int:
    """Run the missing runs of study `name` and record each in the store as it finishes.

    Args:
        name: `"normalization"`, `"length"` or `"depth"`.
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
    import optuna

    from ._machine import describe

    if name not in STUDIES:
        raise ValueError(f"Invalid argument `name`: expected one of {sorted(STUDIES)}. Received: name={name!r}")
    study_def = STUDIES[name]
    seeds = tuple(dict.fromkeys(int(s) for s in seeds))
    if not seeds or any(not 0 <= s <= MAX_SEED for s in seeds):
        raise ValueError(f"Invalid argument `seeds`: expected seeds in [0, {MAX_SEED}]. Received: seeds={seeds!r}")
    if len(seeds) < 3:
        logger.warning("%d seed(s): the report answers a study only from variants run with at least 3 seeds", len(seeds))
    if not margin >= 0:
        raise ValueError(f"Invalid argument `margin`: expected a non-negative score difference. Received: margin={margin!r}")
    if variants is not None:
        known = _variant_names(name)
        unknown = [v for v in variants if v not in known]
        if unknown:
            raise ValueError(f"unknown {name} variants {unknown}; known: {sorted(known)}")
    data = data or load_study_data(data_dir, budget)
    setup = {"budget": dataclasses.asdict(budget), "split": data.fingerprint, "n_train": int(len(data.train_idx)),
             "n_val": int(len(data.val_idx)), "margin": margin}
    info = {"data": data.source, "fs": data.fs, "crop_pad_discards": data.crop_pad_discards}
    store = open_store(storage)
    study = _open_study(name, store, setup, info)
    distributions = _distributions(name)
    machine = device or describe()
    made = 0
    cached_key, cached = None, None
    while max_runs is None or made < max_runs:
        trials = _recorded(study)
        done = {(t.user_attrs["variant"], t.params["seed"]) for t in trials}
        plan = study_def.plan(_means(trials, seeds), margin)
        if variants is not None:
            plan = [v for v in plan if v.name in variants]
        todo = [(v, s) for s in seeds for v in plan if (v.name, s) not in done]
        if not todo:
            break
        variant, seed = todo[0]
        key = (variant.normalization, variant.bandpass)
        if key != cached_key:
            cached_key, cached = key, _normalised(data, variant)
        logger.info("%s: %s, seed %d", name, variant.name, seed)
        started = datetime.datetime.now()
        measured = run_variant(data, variant, seed, budget, signals=cached, verbose=verbose)
        attrs = {"variant": variant.name, **measured, "epochs": budget.epochs, "train_records": int(len(data.train_idx)),
                 "val_records": int(len(data.val_idx)), "machine": machine, "model": variant.model.to_dict(),
                 "normalization": variant.normalization, "bandpass": list(variant.bandpass) if variant.bandpass else None,
                 "length": variant.length}
        trial = optuna.trial.create_trial(params={**variant.params, "seed": seed}, distributions={k: distributions[k] for k in (*variant.params, "seed")},
                                          value=measured["val_cinc_score"], user_attrs=attrs)
        trial.datetime_start, trial.datetime_complete = started, datetime.datetime.now()
        study.add_trial(trial)
        made += 1
        if on_run is not None:
            on_run(variant, seed, measured)
    return made


# ------------------------------------------------------------------------- report

CSV_COLUMNS = ["variant", "seed", "val_cinc_score", "f1_N", "f1_A", "f1_O", "f1_~", "parameters", "train_seconds", "seconds_per_epoch",
               "inference_records_per_s", "signal_discarded", "epochs", "train_records", "val_records", "final_loss", "machine", "config"]


def study_rows(name: str, storage=DEFAULT_STORE) -> tuple[list[dict], dict]:
    """The recorded runs of study `name` as CSV rows (in the order the study runs them), and the study's setup.

    A run recorded twice (two processes on one store) is listed once: the first record.
    """
    study = _open_study(name, open_store(storage))
    notes = study.user_attrs.get("notes", [])
    trials, seen = [], set()
    for t in sorted(_recorded(study), key=lambda t: t.number):
        key = (t.user_attrs["variant"], t.params["seed"])
        if key not in seen:
            seen.add(key)
            trials.append(t)
    setup = {**study.user_attrs.get("setup", {}), "notes": notes}
    order = {v.name: i for i, v in enumerate(STUDIES[name].plan(_means(trials, _all_seeds(trials)), setup.get("margin", 0.01)))}
    rows = []
    for t in trials:
        a = t.user_attrs
        config = {k: v for k, v in t.params.items() if k != "seed"}
        row = {k: a.get(k) for k in CSV_COLUMNS if k in a}
        row.update({"variant": a["variant"], "seed": t.params["seed"], "config": json.dumps({**config, "model": a["model"]}, sort_keys=True),
                    "signal_discarded": setup.get("crop_pad_discards", {}).get("share_of_signal") if a.get("length") == "crop_pad" else 0.0})
        rows.append(row)
    rows.sort(key=lambda r: (order.get(r["variant"], len(order)), r["seed"]))
    return rows, setup


def add_note(name: str, text: str, storage=DEFAULT_STORE) -> None:
    """Keep a note with study `name` in the store (what a reader of its report should know); reports list the notes."""
    study = _open_study(name, open_store(storage))
    study.set_user_attr("notes", [*study.user_attrs.get("notes", []), text.strip()])


def _all_seeds(trials) -> tuple[int, ...]:
    """Every seed recorded in a study: a variant is complete when it has run with all of them."""
    return tuple(sorted({t.params["seed"] for t in trials}))


def summarise(rows: list[dict], reference: str | None = None) -> list[dict]:
    """Per variant, in row order: runs, mean and sample standard deviation of the score, mean F1s, median times and size.

    With a `reference` variant, also the paired difference from it: the mean over
    shared seeds of (score - reference's score with the same seed), and the
    two-sided p-value of a paired t-test (`nan` with fewer than 2 shared seeds).
    """
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["variant"], []).append(r)
    out = []
    for name, runs in groups.items():
        scores = np.array([r["val_cinc_score"] for r in runs], dtype=float)
        row = {"variant": name, "runs": len(runs), "seeds": {r["seed"] for r in runs}, "mean": float(scores.mean()),
               "sd": float(scores.std(ddof=1)) if len(runs) > 1 else float("nan")}
        for key in ("f1_N", "f1_A", "f1_O", "f1_~"):
            row[key] = float(np.mean([r[key] for r in runs]))
        for key in ("seconds_per_epoch", "inference_records_per_s"):  # medians: one run slowed by other load does not move them
            row[key] = float(np.median([r[key] for r in runs]))
        row["parameters"] = runs[0]["parameters"]
        row["config"] = json.loads(runs[0]["config"])
        out.append(row)
    base = {r["seed"]: r["val_cinc_score"] for r in groups.get(reference, [])}
    for row in out:
        pairs = [(r["val_cinc_score"], base[r["seed"]]) for r in groups[row["variant"]] if r["seed"] in base]
        row["delta"], row["p"] = _paired(pairs) if row["variant"] != reference else (float("nan"), float("nan"))
    return out


def _paired(pairs) -> tuple[float, float]:
    """Mean difference of `(a, b)` pairs and the p-value of a two-sided paired t-test."""
    if not pairs:
        return float("nan"), float("nan")
    a, b = np.array(pairs, dtype=float).T
    diff = a - b
    if len(diff) < 2:
        return float(diff.mean()), float("nan")
    if np.allclose(diff, diff[0]):
        return float(diff.mean()), 0.0 if diff[0] != 0 else 1.0
    from scipy.stats import ttest_rel

    return float(diff.mean()), float(ttest_rel(a, b).pvalue)


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.3f}" if math.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"


def answer(name: str, summary: list[dict], margin: float, min_seeds: int = 3) -> str:
    """The plain answer the summary supports, by the study's stated rule.

    Only variants run with every seed of the study (and at least `min_seeds`) take part.
    """
    seeds = set().union(*(s["seeds"] for s in summary)) if summary else set()
    if len(seeds) < min_seeds:
        return f"Not answered yet: the runs so far use {len(seeds)} seed(s), the answer needs {min_seeds}."
    complete = [s for s in summary if s["seeds"] == seeds]
    if not complete:
        return f"Not answered yet: no variant has run with all {len(seeds)} seeds."
    best = max(complete, key=lambda s: s["mean"])
    close = [s for s in complete if s["mean"] >= best["mean"] - margin]
    spread = max((s["sd"] for s in complete if not math.isnan(s["sd"])), default=float("nan"))
    close_names = "; ".join(f"`{s['variant']}`" for s in close)
    lines = [f"Best mean validation CinC score: **{best['variant']}**, {_pm(best['mean'], best['sd'])} (mean ± SD over {len(seeds)} seeds).",
             f"Within the margin of {margin:g} of it: {close_names}. "
             f"The largest seed-to-seed SD of any variant is {spread:.3f}; differences smaller than that are not evidence."]
    reference = STUDIES[name].reference
    clear = [s for s in complete if not math.isnan(s.get("p", float("nan"))) and s["p"] < 0.05]
    if clear:
        lines.append(f"Paired seed by seed with `{reference}`, these differ clearly (paired t-test p < 0.05): "
                     + ", ".join(f"{s['variant']} ({s['delta']:+.3f}, p {s['p']:.3f})" for s in clear) + ".")
    elif any(s["variant"] == reference for s in complete):
        lines.append(f"Paired seed by seed with `{reference}`, no variant differs clearly (paired t-test p < 0.05).")
    if name == "depth":
        means = {s["variant"]: s["mean"] for s in complete}
        lines.append(f"Adding layers stopped at **{chosen_depth(means, margin)}** LSTM layer(s): the next layer did not raise the mean by more than {margin:g}.")
        lstm = [s for s in close if s["config"].get("lstm_layers", 1) > 0]
        if lstm:
            lean = min(lstm, key=lambda s: s["parameters"])
            lines.append(f"Leanest LSTM network within the margin of the best: **{lean['variant']}** ({lean['parameters']:,} parameters).")
        reference = [s for s in complete if s["config"].get("lstm_layers", 1) == 0]
        for s in reference:
            verdict = "within" if s in close else "outside"
            lines.append(f"The front end without any LSTM ({s['parameters']:,} parameters) scores {_pm(s['mean'], s['sd'])}, {verdict} the margin of the best.")
    if name == "length":
        fast = max(close, key=lambda s: s["inference_records_per_s"])
        lines.append(f"Fastest at inference among those: **{fast['variant']}** ({fast['inference_records_per_s']:.0f} records/s).")
    if len(complete) < len(summary):
        lines.append(f"Variants not yet run with all {len(seeds)} seeds are left out of this answer.")
    return "\n".join(lines)


def _figure(name: str, rows: list[dict], summary: list[dict]) -> bytes:
    import io

    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(8, 0.45 * len(summary) + 1.4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    names = [s["variant"] for s in summary]
    for i, s in enumerate(summary):
        scores = [r["val_cinc_score"] for r in rows if r["variant"] == s["variant"]]
        ax.scatter(scores, [i] * len(scores), color="#1f77b4", s=18, zorder=3)
        ax.plot([s["mean"]] * 2, [i - 0.3, i + 0.3], color="#d62728", lw=2, zorder=4)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("validation CinC score (dots: seeds, bar: mean)")
    ax.set_title(f"ecgrhythm study: {name}")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def write_report(name: str, out_dir, storage=DEFAULT_STORE, *, command: str = "", notes: str = "", min_seeds: int = 3) -> dict[str, Path]:
    """Write `<name>.csv` (one row per recorded run), `<name>.md` and `<name>.png` from the store.

    Returns:
        The paths written, by suffix.
    """
    import csv
    import io

    rows, setup = study_rows(name, storage)
    seeds = sorted({r["seed"] for r in rows})
    if not command:
        b = setup.get("budget", {})
        command = (f"ecgrhythm study {name} --epochs {b.get('epochs')} --train-records {b.get('train_records')} "
                   f"--seeds {' '.join(map(str, seeds))} --margin {setup.get('margin', 0.01):g}")
    if not rows:
        raise ValueError(f"study {name!r} has no recorded runs yet")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    paths = {"csv": out_dir / f"{name}.csv", "md": out_dir / f"{name}.md", "png": out_dir / f"{name}.png"}
    atomic_write_text(paths["csv"], text.getvalue())
    summary = summarise(rows, STUDIES[name].reference)
    with atomic_write(paths["png"], "wb") as f:
        f.write(_figure(name, rows, summary))
    atomic_write_text(paths["md"], _markdown(name, rows, summary, setup, command, notes, min_seeds))
    return paths


def _compared(name: str, setup: dict) -> list[str]:
    """The variants of a study in words."""
    fs = float(setup.get("fs", STUDY_FS))
    if name == "normalization":
        return [f"Each record (at {fs:g} Hz) is, optionally after a zero-phase 3rd-order Butterworth band-pass of "
                f"{BANDPASS[0]:g}-{BANDPASS[1]:g} Hz (`bandpass`; `raw` = no filter):",
                "- `none`: the signal in millivolts as recorded;",
                "- `zscore`: minus its mean, divided by its standard deviation;",
                "- `minmax`: mapped to [-1, 1] by its minimum and maximum;",
                "- `robust`: minus its median, divided by its interquartile range;",
                "- `global`: one offset and scale for the whole data set (mean and standard deviation of all training samples)."]
    if name == "length":
        lost = setup.get("crop_pad_discards", {})
        down = BASE_MODEL.downsampling
        kept, fixed = advised_length(fs, down)
        from .batching import bucket_lengths

        longest = bucket_lengths(fs, down)[-1] / fs
        window = setup.get("budget", {}).get("window_s", Budget.window_s)
        lines = [f"- `{k}`: {v}" for k, v in LENGTH_STRATEGIES.items()]
        lines += ["", f"`crop_pad` and `resample` train and predict on one fixed input ({fixed:,} samples at {fs:g} Hz: the advised {kept:,} "
                  f"rounded up to a multiple of the network's {down}x downsampling; the padding is zeros the network sees). "
                  f"`bucket_mask` and `windows` train on the same random {window:g} s windows; they differ in records shorter than the window "
                  "(padding masked in `bucket_mask`, zeros seen in `windows`) and, mostly, at inference: `bucket_mask` predicts on the whole "
                  f"record at once, padded to its length bucket and masked (records over {longest:.0f} s in chunks), `windows` averages its windows.",
                  "", f"Cropping to 30 s throws away **{100 * lost.get('share_of_signal', float('nan')):.1f}%** of all signal in the data set "
                  f"and cuts **{100 * lost.get('share_of_records_cut', float('nan')):.1f}%** of the records."]
        return lines
    return ["The \"start simple, add layers\" procedure, automated (`ecgrhythm.studies.depth_plan`):",
            f"1. One bidirectional LSTM layer of 64 units per direction after the default front end ({DEFAULT_FRONT_END} filters); "
            f"add a layer while the mean score improves by more than the margin (at most {MAX_LAYERS}).",
            "2. At the depth reached: 32 and 128 units, and one direction only.",
            f"3. At that depth: other convolutional front ends ({', '.join(f for f in FRONT_ENDS if f != DEFAULT_FRONT_END)}), "
            "and the front end alone without an LSTM, as a reference.",
            "The answer picks the LSTM network with the fewest parameters whose mean is within the margin of the best mean."]


def _markdown(name, rows, summary, setup, command, notes, min_seeds) -> str:
    study = STUDIES[name]
    budget = setup.get("budget", {})
    margin = setup.get("margin", 0.01)
    machines = sorted({r["machine"] for r in rows})
    epochs = budget.get("epochs", 0)
    lines = [f"# Study: {name}", "", f"**Question.** {study.question}", "",
             f"**What changes between runs:** the {study.factor}, and the seed. Everything else is fixed.", "",
             "## Answer", "", answer(name, summary, margin, min_seeds), ""]
    notes = [notes.strip()] if notes else []
    notes += setup.get("notes", [])
    if notes:
        lines += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    lines += ["## Results", "",
              f"Mean (± sample SD) over seeds of the validation CinC score (mean F1 of N, A and O); F1 per class are means; s/epoch and inference records/s are medians over seeds, so one run slowed by other load on the machine does not move them. "
              f"One row per run is in [`{name}.csv`]({name}.csv).", "",
              f"The column *vs {study.reference}* is the mean difference from `{study.reference}` with the same seed, and the p-value of a "
              "paired t-test over the seeds (rough with 3 seeds, and not corrected for the number of variants).", "",
              f"| variant | runs | CinC score | vs {study.reference} | F1 N | F1 A | F1 O | F1 ~ | parameters | s/epoch | inference records/s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        vs = "" if math.isnan(s["delta"]) else f"{s['delta']:+.3f}" + ("" if math.isnan(s["p"]) else f" (p {s['p']:.2f})")
        lines.append(f"| {s['variant']} | {s['runs']} | {_pm(s['mean'], s['sd'])} | {vs} | {s['f1_N']:.3f} | {s['f1_A']:.3f} | {s['f1_O']:.3f} | {s['f1_~']:.3f} "
                     f"| {s['parameters']:,} | {s['seconds_per_epoch']:.1f} | {s['inference_records_per_s']:.0f} |")
    lines += ["", f"![{name}]({name}.png)", "", "## What was compared", "", *_compared(name, setup), "", "## How it was measured", "",
              f"- Data: `{Path(setup.get('data', '?')).name}`, one split (seed {budget.get('split_seed')}): every run trains on the same "
              f"{setup.get('n_train')} records (a stratified subset of the training part) and is scored on the same {setup.get('n_val')} validation records.",
              f"- Budget: {budget.get('epochs')} epochs of random {budget.get('window_s'):g} s windows, batch {budget.get('batch_size')}, "
              f"Adam {budget.get('learning_rate'):g} on a cosine decay, balanced class weights; scored after the last epoch. "
              "The budget is reduced so that a study fits in hours on a 2-core CPU: scores are below those of a full training, "
              "and the study compares settings, not final models.",
              f"- Seeds: {', '.join(str(s) for s in sorted({r['seed'] for r in rows}))} (weights and windows; the split stays fixed).",
              f"- Margin: {margin:g} in mean CinC score.",
              ("- s/epoch leaves out the first epoch (it includes compiling). " if epochs > 1 else "- s/epoch includes compiling (one epoch per run). ")
              + "Inference records/s is a second, warm pass over the validation records: the strategy's input transform and the network, not reading the files.",
              f"- Machine: {'; '.join(machines)}." + (" The runs come from several machines: compare times only within one." if len(machines) > 1 else "")]
    if command:
        lines += [f"- Command: `{command}`"]
    return "\n".join(lines) + "\n"
