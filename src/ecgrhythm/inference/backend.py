"""What runs a classifier's networks: the backend interface, and the choice of backend for a model path.

A :class:`~ecgrhythm.inference.classifier.RhythmClassifier` composes one backend: the model's
configuration and classes, its number of networks, and for the first `k` networks a list of
functions of a padded, masked batch whose mean is their probabilities. The classifier does the
rest (preprocessing, batching, averaging, calibration, labels) the same way for every backend:

- :class:`~ecgrhythm.inference.onnx_backend.OnnxBackend`: the ONNX graph a model folder carries (`model.onnx`,
  written by `ecgrhythm export` and checked to be of the folder's weights), or an `.onnx` file, on onnxruntime alone
  (loading one imports neither Keras nor JAX): the default wherever the graph is there;
- :class:`~ecgrhythm.inference.keras_backend.KerasBackend`: a model folder's networks on Keras, as training writes
  them: a folder without a graph, and what training, calibration and export use (`backend="keras"`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

__all__ = [
    "Backend",
    "BatchFunction",
    "load_backend",
    "is_onnx_file",
    "default_model_dir",
    "SHIPPED_MODEL",
    "ONNX_SUFFIX",
    "BACKENDS",
    "folder_has_graph",
]

logger = logging.getLogger(__name__)

SHIPPED_MODEL = "cinc2017"  # the name of the shipped model folder
ONNX_SUFFIX = ".onnx"  # a model path ending in it (any case) is an exported file, anything else a model folder
BACKENDS = ("auto", "onnx", "keras")  # auto: a folder's ONNX graph when onnxruntime and a matching graph are there, else Keras

BatchFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""`run(x, mask)`: probabilities `(batch, n_classes)` of `x` float32 `(batch, steps, n_channels)` padded at the end
and its mask bool `(batch, steps)` (True: a real sample); rows of padding alone may give anything."""


class Backend(Protocol):
    """The interface of a classifier's backend.

    Attributes:
        path: the model folder or file it was loaded from.
        config: the model's configuration, as :func:`ecgrhythm.networks.saving.load_networks` gives it:
            `classes`, `n_leads`, `preprocess` (a :class:`~ecgrhythm.config.PreprocessConfig`), `model` (its
            network family's config), `temperature`, `temperature_by`, `class_prior`, and optionally
            `thresholds` and `metadata`.
        classes: class names, the columns of every probability array.
        n_networks: networks whose probabilities the model averages.
        networks: the Keras networks, or None for a backend without them (an ONNX file).
        split_source: where :meth:`training_split` reads the split, for messages.
        any_batch: True when a batch of any size runs without compiling anything for it (onnxruntime), so a caller
            with many signals of one length may pass larger batches; False when each batch shape is compiled (Keras on
            JAX), where the classifier's own batch size keeps the shapes few.
    """

    path: Path
    config: dict
    classes: list[str]
    n_networks: int
    networks: list | None
    split_source: str
    any_batch: bool

    def batch_functions(self, networks: int) -> contextlib.AbstractContextManager[list[BatchFunction]]:
        """Within the block, functions of a padded, masked batch whose mean is the probabilities of the first `networks` networks.

        Each function should run over all batches before the next is called (a Keras ensemble loads each
        network's weights into one compiled network in turn).

        Raises:
            ValueError: the backend cannot give the mean of exactly `networks` networks.
        """

    def training_split(self) -> dict[str, list[str]] | None:
        """`{"train": [names], "val": [names]}` the model was trained and validated on, or None when unknown."""


def default_model_dir() -> Path:
    """The shipped CinC 2017 model folder, wherever ecgrhythm runs from.

    In a source checkout (run from `src/`, or installed editable) that is
    `models/cinc2017` at the repository root, where the model is documented.
    An installed wheel carries the same files as the package data
    `ecgrhythm/pretrained/cinc2017` (`setup.py` maps the package
    `ecgrhythm.pretrained` onto `models/`). Every default model folder of the
    library and its commands comes from here.

    Example:
        >>> import ecgrhythm
        >>> folder = ecgrhythm.default_model_dir()
        >>> folder.name, (folder / "config.json").is_file()
        ('cinc2017', True)
        >>> ecgrhythm.RhythmClassifier.load().model_dir_ == folder      # what load() takes when given no folder
        True
    """
    package = Path(__file__).resolve().parents[1]
    if package.parent.name == "src":  # src/ecgrhythm/ in a checkout
        return package.parent.parent / "models" / SHIPPED_MODEL
    return package / "pretrained" / SHIPPED_MODEL


def is_onnx_file(model) -> bool:
    """Whether the model path `model` names an exported `.onnx` file (else it is a model folder)."""
    return model is not None and str(model).lower().endswith(ONNX_SUFFIX)


def load_backend(model=None, backend: str = "auto") -> Backend:
    """The backend of a model path (default: the shipped model folder).

    An `.onnx` file runs on onnxruntime. A model folder runs on onnxruntime from the graph it carries
    (:data:`~ecgrhythm.inference.onnx_backend.GRAPH_FILE`, checked to be of its weights) with `backend="auto"` when
    onnxruntime is installed and the folder holds that graph, else on Keras; `"onnx"` requires the graph, `"keras"` the networks.

    Args:
        model: a model folder or an `.onnx` file; None: :func:`default_model_dir`.
        backend: one of :data:`BACKENDS`.

    Raises:
        ValueError: `backend` is none of :data:`BACKENDS`, or `"keras"` for an `.onnx` file.
        ModelFolderError: the model folder is missing, incomplete, altered or cannot be loaded.
        OnnxModelError: the `.onnx` file is missing, unreadable or not written by `ecgrhythm export`; with `backend="onnx"`,
            a folder without a graph of its networks.
        ImportError: onnxruntime is not installed (for an `.onnx` file, or `backend="onnx"`; the message says how to install it).
    """
    if backend not in BACKENDS:
        raise ValueError(f"Invalid argument `backend`: expected one of {', '.join(map(repr, BACKENDS))}. Received: backend={backend!r}")
    if is_onnx_file(model):
        if backend == "keras":
            raise ValueError(
                f"Invalid argument `backend`: an .onnx file holds no Keras networks; pass its model folder, or backend='auto'. "
                f"Received: backend='keras', model_dir={str(model)!r}"
            )
        from ecgrhythm.inference.onnx_backend import OnnxBackend

        return OnnxBackend.load(model)
    path = Path(model) if model is not None else default_model_dir()
    graph = _folder_graph(path, required=backend == "onnx") if backend != "keras" else None
    if graph is not None:
        return graph
    from ecgrhythm.inference.keras_backend import KerasBackend

    return KerasBackend.load(path)


def folder_has_graph(path) -> bool:
    """Whether onnxruntime is installed and the model folder `path` holds an ONNX graph, which :func:`load_backend`
    then checks against the folder's weights and runs (`backend="auto"`); cheap: onnxruntime is not imported."""
    from ecgrhythm.inference.onnx_backend import GRAPH_FILE

    return importlib.util.find_spec("onnxruntime") is not None and (Path(path) / GRAPH_FILE).is_file()


def _folder_graph(path: Path, *, required: bool) -> Backend | None:
    """The folder's graph on onnxruntime; unless `required`, None (Keras then) without onnxruntime or a graph of its networks."""
    from ecgrhythm.inference.onnx_backend import OnnxBackend, OnnxModelError

    if not required and not folder_has_graph(path):
        logger.debug("%s: no onnxruntime or no ONNX graph; running the networks on Keras", path)
        return None
    try:
        return OnnxBackend.load_folder(path)
    except OnnxModelError as exc:
        if required:
            raise
        warnings.warn(f"{exc}; running the networks on Keras meanwhile", stacklevel=4)
        return None
