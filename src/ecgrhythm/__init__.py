"""ecgrhythm: classify ECG recordings of any length into rhythm classes with Keras LSTM networks.

The package face: the names most users need, loaded on first use, so that
`import ecgrhythm` (and `ecgrhythm --help`) stays fast and imports neither
Keras nor JAX.

- :class:`RhythmClassifier`: `RhythmClassifier.load()` gives the shipped CinC 2017 model (or any model
  folder or `.onnx` file); `predict` and `predict_proba` take one signal (a NumPy array `(n_samples,)`
  or `(n_samples, n_leads)` in mV, with `fs=`, or a record) or a list of signals; `predict_records`
  takes files; the results are :class:`Prediction` objects.
- :func:`read_record` reads a record (WFDB `.hea` or a bare record name, `.mat`, `.csv` and `.npy`
  with `fs=`) as an :class:`EcgRecord`; :func:`find_records` lists a folder's; problems are a :class:`RecordError`.
- :func:`record_episodes` and :func:`stream_episodes` find AF episodes and the AF burden of a record
  (:class:`RecordEpisodes`), with the settings of :class:`EpisodeParams`; :func:`plot_episodes` draws them
  (the rhythm over the whole record, and a few seconds of ECG at the longest AF episode's onset) into a PNG.
- :func:`train` trains a model folder, with :class:`PreprocessConfig`, :class:`ModelConfig` and :class:`TrainConfig`.

Example:
    >>> import ecgrhythm
    >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A00004.hea")   # the data folder beside a checkout
    >>> record.signal.shape, record.fs
    ((9000, 1), 300.0)
    >>> clf = ecgrhythm.RhythmClassifier.load()                             # the shipped model
    >>> clf.predict(record.signal[:, 0], fs=300)                            # one signal's label
    'A'
    >>> clf.predict_records(["../shared/data/cinc2017/A00001.hea", record]).labels
    ['N', 'A']
    >>> ecgrhythm.record_episodes(clf, record).af_burden
    1.0

Keras runs on the JAX backend unless `KERAS_BACKEND` says otherwise; the code
uses `keras.ops` only, so TensorFlow and PyTorch users can run it too.
"""

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"  # the one copy of the version: pyproject.toml reads it, `ecgrhythm --version` prints it

# Public name -> the module that defines it (imported on first use).
_FACE = {
    "RhythmClassifier": "ecgrhythm.inference.classifier",
    "Prediction": "ecgrhythm.inference.classifier",
    "default_model_dir": "ecgrhythm.inference.classifier",
    "read_record": "ecgrhythm.records",
    "find_records": "ecgrhythm.records",
    "EcgRecord": "ecgrhythm.records",
    "RecordError": "ecgrhythm.records",
    "ImplausibleRecordWarning": "ecgrhythm.preprocessing.plausibility",
    "record_episodes": "ecgrhythm.episodes.finder",
    "stream_episodes": "ecgrhythm.episodes.finder",
    "EpisodeParams": "ecgrhythm.episodes.finder",
    "RecordEpisodes": "ecgrhythm.episodes.finder",
    "plot_episodes": "ecgrhythm.episodes.plot",
    "train": "ecgrhythm.training.trainer",
    "PreprocessConfig": "ecgrhythm.config",
    "ModelConfig": "ecgrhythm.networks.cnn_lstm",
    "TrainConfig": "ecgrhythm.config",
}

__all__ = ["__version__", *_FACE]


def __getattr__(name: str):
    module = _FACE.get(name)
    if module is None:
        raise AttributeError(f"module 'ecgrhythm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__():
    return sorted({*globals(), *_FACE})
