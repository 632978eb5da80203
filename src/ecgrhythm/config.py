"""Hyperparameter containers saved as JSON beside the weights.

Each config is a frozen dataclass holding hyperparameters only; `to_dict` and
`from_dict` round-trip through JSON, and `__post_init__` rejects bad values with
the argument's name, the expected value and the received one. A network's
architecture is the config of its family (:mod:`ecgrhythm.networks.registry`;
the CNN + LSTM's is :class:`ecgrhythm.networks.cnn_lstm.ModelConfig`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

__all__ = [
    "Config",
    "check_argument",
    "PreprocessConfig",
    "TrainConfig",
    "NORMALIZATIONS",
    "AUGMENTATIONS",
    "CLASS_WEIGHTINGS",
    "MAX_MODEL_FS",
    "MAX_FIXED_LENGTH_S",
    "MIN_RR_FS",
    "default_data_dir",
    "checkout_root",
    "portable_path",
    "resolve_portable",
]

NORMALIZATIONS = ("zscore", "minmax", "robust", "none")
AUGMENTATIONS = ("flip", "scale", "noise", "wander", "stretch")  # in the order `ecgrhythm.preprocessing.augmentation` applies them
CLASS_WEIGHTINGS = ("balanced", "none")
MAX_MODEL_FS = 2000.0  # Hz: far above any ECG model's need; bounds what a config.json can make inference allocate
MIN_RR_FS = 100.0  # Hz: the beat detector of `rr_channel` (sleepecg) filters 5-30 Hz; its authors recommend 100 Hz or more
MAX_FIXED_LENGTH_S = 3600.0  # seconds: a fixed input length beyond an hour (where long records are streamed) is a mistake


def check_argument(cond: bool, name: str, expected: str, value) -> None:
    """Raise `ValueError` naming the argument, the expected value and `Received: name=value` unless `cond`."""
    if not cond:
        raise ValueError(f"Invalid argument `{name}`: expected {expected}. Received: {name}={value!r}")


class Config:
    """Base of the configs: `to_dict` and `from_dict` round-trip a frozen dataclass through JSON (lists become tuples)."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"Unknown {cls.__name__} fields: {sorted(unknown)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class PreprocessConfig(Config):
    """How a raw record becomes model input.

    Args:
        fs: sampling rate (Hz) the model works at, at most `MAX_MODEL_FS`;
            records are resampled to it.
        normalization: one of `"zscore"` (default), `"minmax"` (to [-1, 1]),
            `"robust"` (median/IQR) or `"none"`. Applied per record and lead.
        bandpass: `(low_hz, high_hz)` for a zero-phase Butterworth band-pass
            filter (default 0.5-40 Hz, the normalisation study's best), or
            `None` for no filter. `high_hz` must stay below `fs / 2`.
        leads: lead names the model expects, or `None` to take the record's
            leads as they come (single-lead models).
        fixed_length_s: crop or zero-pad every record to this many seconds;
            the zeros are part of the input, not masked (the common advice:
            30 s, i.e. 9,000 samples at 300 Hz), at most `MAX_FIXED_LENGTH_S`;
            `None` (default) keeps whole records. `to_dict` leaves it out
            when `None`, so the configs, recipes and checkpoints written
            before it existed still compare equal.
        rr_channel: append one input channel after the leads holding the
            RR-interval sequence in seconds (see
            :func:`ecgrhythm.preprocessing.pipeline.rr_intervals`), from the beats of the
            first lead. Default `False`; `to_dict` leaves it out when `False`,
            so configs written before it existed load and compare as before.

    Raises:
        ValueError: a value out of range, naming the argument and the value received.

    Example:
        >>> import ecgrhythm
        >>> ecgrhythm.RhythmClassifier.load().preprocess_           # the shipped model's
        PreprocessConfig(fs=150.0, normalization='zscore', bandpass=None, leads=None, fixed_length_s=None, rr_channel=False)
        >>> ecgrhythm.PreprocessConfig(fs=100.0, bandpass=(0.5, 60.0))
        Traceback (most recent call last):
        ...
        ValueError: Invalid argument `bandpass`: expected (low, high) with 0 <= low < high < fs/2 = 50.0. Received: bandpass=(0.5, 60.0)
    """

    fs: float = 150.0
    normalization: str = "zscore"
    bandpass: tuple[float, float] | None = (0.5, 40.0)
    leads: tuple[str, ...] | None = None
    fixed_length_s: float | None = None
    rr_channel: bool = False

    def __post_init__(self):
        check_argument(0 < self.fs <= MAX_MODEL_FS, "fs", f"a model sampling rate in Hz above 0 and at most {MAX_MODEL_FS:,.0f}", self.fs)
        check_argument(self.normalization in NORMALIZATIONS, "normalization", f"one of {NORMALIZATIONS}", self.normalization)
        if self.bandpass is not None:
            lo, hi = self.bandpass
            check_argument(0 <= lo < hi < self.fs / 2, "bandpass", f"(low, high) with 0 <= low < high < fs/2 = {self.fs / 2}", self.bandpass)
        fixed = self.fixed_length_s
        check_argument(
            fixed is None or (isinstance(fixed, (int, float)) and not isinstance(fixed, bool) and 0 < fixed <= MAX_FIXED_LENGTH_S),
            "fixed_length_s",
            f"None or a number of seconds above 0 and at most {MAX_FIXED_LENGTH_S:,.0f}",
            fixed,
        )
        check_argument(fixed is None or self.fixed_samples >= 1, "fixed_length_s", f"at least one sample at fs={self.fs:g} Hz", fixed)
        check_argument(isinstance(self.rr_channel, bool), "rr_channel", "True or False", self.rr_channel)
        check_argument(
            not self.rr_channel or self.fs >= MIN_RR_FS,
            "rr_channel",
            f"False at fs={self.fs:g} Hz (the beat detector needs fs >= {MIN_RR_FS:g})",
            True,
        )

    def to_dict(self) -> dict:
        data = super().to_dict()
        if data["fixed_length_s"] is None:
            del data["fixed_length_s"]
        if not data["rr_channel"]:
            del data["rr_channel"]
        return data

    @property
    def interval_channels(self) -> int:
        """Channels of RR intervals that preprocessing appends after the leads: 1 with `rr_channel`, else 0."""
        return int(self.rr_channel)

    def n_channels(self, n_leads: int) -> int:
        """Input channels of a network taking `n_leads` leads: the leads, then `interval_channels`."""
        return n_leads + self.interval_channels

    @property
    def fixed_samples(self) -> int | None:
        """`fixed_length_s` in samples at `fs` (rounded), or `None` for whole records."""
        return None if self.fixed_length_s is None else int(round(self.fixed_length_s * self.fs))


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    """How a model is trained.

    Args:
        epochs: maximum number of epochs.
        batch_size: records per training batch.
        window_s: length (seconds) of the random window cut from each record
            per epoch; shorter records are padded and masked. Unused for a
            fixed input length (`PreprocessConfig.fixed_length_s`): each
            training example is then the whole input.
        learning_rate: initial Adam learning rate, decayed on a cosine to 2% of it
            over `epochs`.
        patience: epochs without a better validation score before stopping, or `None` (the default) to
            train every epoch and keep the best. Cross-validation chose `None`: with the cosine decay the
            best epochs come late, and a patience of 12 ended one fold at epoch 20 (its best was 8) for
            0.024 less than training on (docs/results/crossval).
        val_fraction: share of records held out (stratified) for validation, or 0 to train on
            every record for all `epochs` and keep the last epoch (no validation, no early
            stopping: choose `epochs` by cross-validation).
        class_weighting: `"balanced"` (inverse class frequency) or `"none"`.
        seed: seed of the split, the weights and the windows.
        augment: augmentations of the training windows, names from
            `ecgrhythm.preprocessing.augmentation.AUGMENTATIONS` (default none).

    Raises:
        ValueError: a value out of range, naming the argument and the value received.

    Example:
        >>> import ecgrhythm
        >>> config = ecgrhythm.TrainConfig(epochs=10, augment=("flip", "noise"))
        >>> config.to_dict()                                         # as config.json and checkpoints keep it
        {'epochs': 10, 'batch_size': 32, 'window_s': 20.0, 'learning_rate': 0.001, 'patience': None, 'val_fraction': 0.15, 'class_weighting': 'balanced', 'seed': 0, 'augment': ('flip', 'noise')}
        >>> ecgrhythm.TrainConfig.from_dict(config.to_dict()) == config
        True
        >>> ecgrhythm.TrainConfig(val_fraction=1.0)
        Traceback (most recent call last):
        ...
        ValueError: Invalid argument `val_fraction`: expected a fraction in [0, 1). Received: val_fraction=1.0
    """

    epochs: int = 40
    batch_size: int = 32
    window_s: float = 20.0
    learning_rate: float = 1e-3
    patience: int | None = None
    val_fraction: float = 0.15
    class_weighting: str = "balanced"
    seed: int = 0
    augment: tuple[str, ...] = ()

    def __post_init__(self):
        check_argument(self.epochs >= 1, "epochs", "a positive integer", self.epochs)
        check_argument(self.batch_size >= 1, "batch_size", "a positive integer", self.batch_size)
        check_argument(self.window_s >= 2, "window_s", "at least 2 seconds", self.window_s)
        check_argument(self.learning_rate > 0, "learning_rate", "a positive number", self.learning_rate)
        check_argument(
            self.patience is None or (isinstance(self.patience, int) and self.patience >= 1), "patience", "None or a positive integer", self.patience
        )
        check_argument(0 <= self.val_fraction < 1, "val_fraction", "a fraction in [0, 1)", self.val_fraction)
        check_argument(self.class_weighting in CLASS_WEIGHTINGS, "class_weighting", f"one of {CLASS_WEIGHTINGS}", self.class_weighting)
        check_argument(isinstance(self.seed, int), "seed", "an integer", self.seed)
        check_argument(set(self.augment) <= set(AUGMENTATIONS), "augment", f"names from {AUGMENTATIONS}", self.augment)


def default_data_dir() -> Path | None:
    """The default data folder: `$ECGRHYTHM_DATA`, else a `shared/data` beside the checkout.

    Returns:
        The folder, or `None` when neither exists.
    """
    env = os.environ.get("ECGRHYTHM_DATA")
    if env:
        return Path(env)
    for start in (Path.cwd(), Path(__file__).resolve()):
        for parent in (start, *start.parents):
            candidate = parent.parent / "shared" / "data"
            if candidate.is_dir():
                return candidate
    return None


def checkout_root() -> Path | None:
    """The source checkout this package runs from (the folder with its `pyproject.toml`), or `None` when installed."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def portable_path(path) -> str:
    """`path` as a model folder records it: relative to the checkout when inside it (`data/cinc2017`), else absolute.

    A relative form stays true when the checkout moves to another machine; read it back with :func:`resolve_portable`.
    """
    path = Path(path).resolve()
    root = checkout_root()
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return str(path)


def resolve_portable(text: str) -> Path:
    """The absolute path a :func:`portable_path` string stands for on this machine."""
    path = Path(text)
    root = checkout_root()
    return (root / path).resolve() if not path.is_absolute() and root is not None else path.resolve()
