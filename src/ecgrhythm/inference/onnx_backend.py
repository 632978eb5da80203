"""The ONNX Runtime backend of a classifier: an exported `.onnx` file and onnxruntime alone, no Keras, no JAX.

:class:`OnnxBackend` runs the file's graph; records are read, preprocessed, cut, padded into buckets and
averaged by :class:`~ecgrhythm.inference.classifier.RhythmClassifier` exactly as with a model folder, from the
configuration stored in the file (see :func:`read_onnx_metadata`). Importing this module, or loading a file,
imports neither Keras nor JAX.

Example:
>>> clf = RhythmClassifier.load("cinc2017.onnx")        # doctest: +SKIP
>>> clf.predict_records(["A00001.hea"]).labels           # doctest: +SKIP
['N']
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from pathlib import Path

import numpy as np

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.inference.interruptible import run_session
from ecgrhythm.inference.onnx_metadata import INPUT_MASK, INPUT_SIGNAL, OUTPUT, OnnxModelError, decode_metadata, folder_weights
from ecgrhythm.networks.limits import checked_model_config
from ecgrhythm.networks.registry import config_from_dict
from ecgrhythm.scoring.calibration import CALIBRATION_KEYS, checked_calibration
from ecgrhythm.utils.machine import cpu_count
from ecgrhythm.utils.validation import checked_split

__all__ = [
    "OnnxBackend",
    "OnnxModelError",
    "read_onnx_metadata",
    "open_session",
    "intra_op_threads",
    "EXTRA",
    "GRAPH_FILE",
    "FIRST_GRAPH_FILE",
]

EXTRA = "onnx"  # the optional dependency group of the graph builder: pip install "ecgrhythm[onnx]"
GRAPH_FILE = "model.onnx"  # a model folder's ONNX graph of its networks, written by `ecgrhythm export` (see `OnnxBackend.load_folder`)
FIRST_GRAPH_FILE = "first_network.onnx"  # optional: the graph of a folder's first network alone (`ecgrhythm export --networks 1`),


# which runs when the first network alone is asked for (episode windows): onnxruntime runs every node of a graph whatever outputs are fetched
def require(module: str):
    """Import `onnx` (the graph builder, of the ONNX extra) or `onnxruntime` (a dependency), or raise an ImportError that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        how = (
            f"install the ONNX extra: pip install 'ecgrhythm[{EXTRA}]'"
            if module == "onnx"
            else f"reinstall ecgrhythm's dependencies: pip install {module}"
        )
        raise ImportError(f"{module} is not installed; {how}") from None


def intra_op_threads() -> int:
    """Threads onnxruntime runs one operator on: `$OMP_NUM_THREADS` when set (Ray sets it to an actor's CPUs), else
    the cores this process may run on (:func:`~ecgrhythm.utils.machine.cpu_count`)."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        return cpu_count()


def read_onnx_metadata(path) -> dict:
    """The metadata of an `.onnx` file written by `ecgrhythm export`, values decoded from JSON.

    Raises:
        OnnxModelError: the file is missing, unreadable or lacks ecgrhythm's metadata.
    """
    return decode_metadata(open_session(path).get_modelmeta().custom_metadata_map, path)


def open_session(path):
    """An onnxruntime session of the `.onnx` file `path` on the CPU: one operator over :func:`intra_op_threads` threads, the
    nodes in sequence, threads that sleep between operators; :class:`OnnxModelError` if it is missing or cannot load."""
    ort = require("onnxruntime")
    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"{path}: ONNX model file not found; write one by exporting a model folder (`export_onnx`)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads()  # one operator over every core: a batch of records is one big call
    options.inter_op_num_threads = 1  # the graph's nodes run in sequence
    # Threads sleep between operators instead of spinning: the reader thread that prepares the next records (and, on a
    # shared machine, other processes) get the cores back; on this 2-core machine spinning cost up to 1.6 times the time.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 (onnxruntime raises its own exception classes)
        raise OnnxModelError(f"{path}: cannot load the ONNX model ({type(exc).__name__}: {exc})") from None


class OnnxBackend:
    """An exported `.onnx` file, or a model folder's graph, on onnxruntime (see :class:`~ecgrhythm.inference.backend.Backend`).

    Create one with :meth:`load` (a file) or :meth:`load_folder` (a folder). The graph averages its networks in the
    output `probabilities`; a graph of several networks has `first_probabilities` too, the first network's own (AF
    episodes use it). Sessions run one operator on :func:`intra_op_threads` threads, the graph's nodes in sequence.

    Args:
        path: the `.onnx` file, or the model folder.
        session: its onnxruntime session.
        metadata: its decoded metadata (:func:`read_onnx_metadata`).
        config: the model's configuration, from the metadata's `config.json` (a folder's graph: the folder's own).

    Attributes:
        path, session, metadata, config: as given.
        first_network: None, or the session of a folder's :data:`FIRST_GRAPH_FILE` (the first network alone, which
            :meth:`batch_functions` runs for `networks=1` instead of the whole graph), or a function that loads and checks
            it, called when it is first needed (classifying records never needs it).
        classes: the model's class names.
        n_networks: networks averaged by the graph (metadata "networks").
        networks: None (the file holds no Keras networks).
        split_source: where :meth:`training_split` reads the split, for messages.
        any_batch: True: the graph's batch axis is dynamic.
    """

    networks = None
    split_source = "split in its metadata"
    any_batch = True

    def __init__(self, path: Path, session, metadata: dict, config: dict, first_network=None):
        self.path = path
        self.session = session
        self.metadata = metadata
        self.config = config
        self.first_network = first_network
        self._outputs = self._graph_outputs()

    @property
    def first_network(self):
        """The session of the first network alone, or None (loaded and checked on first use)."""
        if callable(self._first_network):
            self._first_network = self._first_network()
        return self._first_network

    @first_network.setter
    def first_network(self, session) -> None:
        self._first_network = session

    @classmethod
    def load(cls, path) -> OnnxBackend:
        """Open the `.onnx` file `path` written by `ecgrhythm export`.

        Raises:
            OnnxModelError: the file is missing, unreadable, not written by `ecgrhythm export`, or its metadata is
                inconsistent (naming the file and the fix).
            ImportError: onnxruntime is not installed.
        """
        path = Path(path)
        session = open_session(path)
        meta = decode_metadata(session.get_modelmeta().custom_metadata_map, path)
        config = dict(meta["config.json"])
        try:
            config["preprocess"] = PreprocessConfig.from_dict(config["preprocess"])
            config["model"] = config_from_dict(config["model"])
        except (KeyError, TypeError, ValueError) as exc:
            raise OnnxModelError(f"{path}: invalid model configuration in its metadata: {exc}") from None
        try:  # applied by the classifier, as for a model folder
            config.update(checked_calibration(config, "its metadata"))
        except (KeyError, ValueError) as exc:
            raise OnnxModelError(f"{path}: {exc}; export the model again") from None
        differ = [key for key in CALIBRATION_KEYS if meta[key] != config[key]]  # other tools read the top-level keys
        if differ:
            raise OnnxModelError(f"{path}: its metadata's {differ} differ from its config.json's; export the model again")
        return cls(path, session, meta, config)

    @classmethod
    def load_folder(cls, path) -> OnnxBackend:
        """Open the graph a model folder carries (its :data:`GRAPH_FILE`), checked to be the graph of the folder's networks.

        The folder's `config.json` and weights are checked against its `checksums.json` as Keras loading checks them,
        then the weights files' SHA-256 recorded in the graph's metadata ("weights") against the folder's, and the
        architecture, preprocessing and classes against its `config.json` (no network is built). The configuration,
        calibration included (`ecgrhythm calibrate` may run after the export), is the folder's own.

        Raises:
            ModelFolderError: the folder is missing, incomplete or altered.
            OnnxModelError: the folder has no graph, or its graph is not of these networks (the message says how to export it again).
            ImportError: onnxruntime is not installed.
        """
        from ecgrhythm.networks.saving import read_config  # the one check of a folder against its checksums

        path = Path(path)
        config, graph = read_config(path), path / GRAPH_FILE
        export = f"ecgrhythm export --model {path} --output {graph}"
        if not graph.is_file():
            raise OnnxModelError(f"{path}: the model folder has no ONNX graph ({GRAPH_FILE}); write one: {export}, or run it on Keras")
        session = open_session(graph)
        meta = decode_metadata(session.get_modelmeta().custom_metadata_map, graph)
        built = meta["config.json"]
        same_model = all(built.get(key) == config.get(key) for key in ("classes", "n_leads", "preprocess", "model"))
        if meta["weights"] != folder_weights(path, config) or not same_model:
            raise OnnxModelError(
                f"{graph}: not the graph of this folder's networks (it was exported from other weights or another model); export it again: {export}"
            )
        first = functools.partial(_first_network, path, meta, dict(config)) if meta["networks"] > 1 and (path / FIRST_GRAPH_FILE).is_file() else None
        config["preprocess"], config["model"] = checked_model_config(config)  # as Keras loading parses it
        return cls(path, session, meta, config, first)

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    @property
    def n_networks(self) -> int:
        return self.metadata["networks"]

    def training_split(self) -> dict[str, list[str]] | None:
        """The split its folder had when exported (metadata "split"), or None when unknown (a folder without
        `split.json`, or a file exported before the metadata carried it).

        Raises:
            OnnxModelError: the metadata's split is not such a mapping (naming the file).
        """
        split = self.metadata["split"]
        if split is None:
            return None
        try:
            return checked_split(split)
        except ValueError as exc:
            raise OnnxModelError(
                f"{self.path}: invalid split in its metadata ({exc}); export the model again from its folder, "
                "or score every record, the training records too (`exclude_training=False`)"
            ) from None

    @contextlib.contextmanager
    def batch_functions(self, networks: int):
        """Within the block, `[run]`: the graph output that averages the file's first `networks` networks; for the first
        network alone, the folder's :data:`FIRST_GRAPH_FILE` when it has one (the same probabilities in about 0.4 of
        the time of a graph of three: onnxruntime runs a whole graph whatever outputs are fetched).

        All-padding rows (a batch filled up to its fixed size) are not run: onnxruntime has no compiled
        shapes to keep, and their rows are zeros.

        Raises:
            ValueError: the graph has no such output (an ensemble's first network alone, in files exported
                before `first_probabilities`).
        """
        alone = networks == 1 and self.first_network is not None
        session, name = (self.first_network, OUTPUT) if alone else (self.session, self._outputs.get(networks))
        if name is None:
            raise ValueError(
                f"{self.path}: this ONNX file's graph gives the mean of its {self.n_networks} networks only, not that of "
                f"its first {networks}; export it again with 'ecgrhythm export' (its graph then has the first network's output too)"
            )
        n_classes = len(self.classes)

        def run(x, mask):
            rows = int(np.count_nonzero(mask.any(axis=1)))
            out = np.zeros((len(x), n_classes), dtype=np.float32)
            out[:rows] = run_session(session, [name], {INPUT_SIGNAL: x[:rows], INPUT_MASK: mask[:rows]})[0]  # SIGTERM stops it
            return out

        yield [run]

    def _graph_outputs(self) -> dict[int, str]:
        """`{k: output name}` of the graph outputs averaging its first `k` networks (metadata "networks" and "outputs";
        older files: the mean only), checked against the graph."""
        count, outputs = self.metadata["networks"], self.metadata["outputs"]
        outputs = outputs if outputs is not None else {OUTPUT: count}
        names = {o.name for o in self.session.get_outputs()}
        valid = isinstance(count, int) and count >= 1 and isinstance(outputs, dict) and outputs.get(OUTPUT) == count
        if not valid or any(name not in names or not isinstance(n, int) or not 1 <= n <= count for name, n in outputs.items()):
            raise OnnxModelError(
                f"{self.path}: metadata networks={count!r} and outputs={outputs!r} do not match the graph's outputs "
                f"{sorted(names)}; export the model again"
            )
        return {n: name for name, n in outputs.items()}


def _first_network(path: Path, meta: dict, config: dict):
    """The session of the folder `path`'s :data:`FIRST_GRAPH_FILE`, checked to be the graph of its first network alone.
    `meta` is the metadata of its whole graph, `config` its `config.json`.

    Raises:
        OnnxModelError: the file is not the graph of the folder's first network (naming the command that writes it).
    """
    graph = path / FIRST_GRAPH_FILE
    session = open_session(graph)
    first = decode_metadata(session.get_modelmeta().custom_metadata_map, graph)
    built = first["config.json"]
    same_model = all(built.get(key) == config.get(key) for key in ("classes", "n_leads", "preprocess", "model"))
    if first["networks"] != 1 or first["weights"] != dict(list(meta["weights"].items())[:1]) or not same_model:
        raise OnnxModelError(
            f"{graph}: not the graph of this folder's first network; export it again: ecgrhythm export --model {path} --networks 1 "
            f"--output {graph}, or delete it (the whole graph then runs for the first network too)"
        )
    return session
