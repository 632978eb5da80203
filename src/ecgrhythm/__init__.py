"""ecgrhythm: classify ECG recordings of any length into rhythm classes with Keras LSTM networks.

The package face: the names most users need, loaded on first use, so that
`import ecgrhythm` (and `ecgrhythm --help`) stays fast and imports neither
Keras nor JAX.

Example:
>>> import ecgrhythm                                                    # doctest: +SKIP
>>> record = ecgrhythm.read_record("A00001.hea")
>>> clf = ecgrhythm.RhythmClassifier.load()                             # the shipped model
>>> clf.predict_records([record]).labels
['N']
>>> ecgrhythm.record_episodes(clf, record).af_burden
0.0

Keras runs on the JAX backend unless `KERAS_BACKEND` says otherwise; the code
uses `keras.ops` only, so TensorFlow and PyTorch users can run it too.
"""

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

__version__ = "0.1.0"

# Public name -> the module that defines it (imported on first use).
_FACE = {
    "RhythmClassifier": "ecgrhythm.inference.classifier",
    "Prediction": "ecgrhythm.inference.classifier",
    "default_model_dir": "ecgrhythm.inference.classifier",
    "read_record": "ecgrhythm.records",
    "find_records": "ecgrhythm.records",
    "EcgRecord": "ecgrhythm.records",
    "RecordError": "ecgrhythm.records",
    "record_episodes": "ecgrhythm.episodes.finder",
    "stream_episodes": "ecgrhythm.episodes.finder",
    "EpisodeParams": "ecgrhythm.episodes.finder",
    "RecordEpisodes": "ecgrhythm.episodes.finder",
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
