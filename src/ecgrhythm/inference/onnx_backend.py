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
import importlib
import json
import os
from pathlib import Path

import numpy as np

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.inference.interruptible import run_session
from ecgrhythm.networks.family import check_whole
from ecgrhythm.networks.limits import MAX_MEMBERS, checked_model_config
from ecgrhythm.networks.registry import config_from_dict
from ecgrhythm.preprocessing.batching import bucket_lengths
from ecgrhythm.scoring.calibration import CALIBRATION_KEYS, checked_calibration
from ecgrhythm.utils.validation import checked_split

__all__ = [
    "OnnxBackend",
    "OnnxModelError",
    "read_onnx_metadata",
    "metadata_from_config",
    "graph_outputs",
    "folder_weights",
    "intra_op_threads",
    "METADATA_KEYS",
    "EXTRA",
    "GRAPH_FILE",
]

FORMAT = 1
EXTRA = "onnx"  # the optional dependency group of the graph builder: pip install "ecgrhythm[onnx]"
GRAPH_FILE = "model.onnx"  # a model folder's ONNX graph of its networks, written by `ecgrhythm export` (see `OnnxBackend.load_folder`)
INPUT_SIGNAL, INPUT_MASK, OUTPUT = "signal", "mask", "probabilities"
FIRST_OUTPUT = "first_probabilities"  # a file of several networks: the first one's own probabilities (AF episodes use it)
METADATA_KEYS = (
    "ecgrhythm_format",  # 1
    "classes",  # class names, the columns of `probabilities`
    "n_leads",  # leads: the graph's input channels, plus one with rr_channel
    "rr_channel",  # true: one more input channel after the leads, the RR intervals (s) of the first lead (preprocessing.rr_intervals)
    "leads",  # lead names the model expects, or null (take the record's single lead)
    "fs",  # sampling rate (Hz) of the input
    "bandpass",  # [low_hz, high_hz] of a 3rd-order Butterworth band-pass run forwards and backwards (sosfiltfilt), or null
    "normalization",  # "zscore" | "minmax" | "robust" | "none", per record and lead, after the band-pass
    "decision",  # "argmax" (one label) or "threshold" (every class >= its threshold)
    "thresholds",  # per-class thresholds of a multi-label model
    "temperature",  # calibration temperature of the probabilities (1: none; one, or one per class); applied after the graph
    "temperature_by",  # null: one temperature, or each class's column by its own; "predicted_class": each row by its argmax's
    "class_prior",  # null, or per-class factors the probabilities are multiplied by (then renormalised) before the temperature
    "downsampling",  # input steps must be a multiple of it
    "buckets",  # padded lengths (samples) the classifier uses; longer records are cut into near-equal chunks
    "networks",  # networks averaged in the graph
    "outputs",  # each graph output -> how many of the first networks it averages: {"probabilities": networks[, "first_probabilities": 1]}
    "config.json",  # the model folder's config.json
    "split",  # the folder's split.json, {"train": [names], "val": [names]} (the records it was trained and validated on), or null
    "weights",  # {weights file: SHA-256} of the folder's networks (its checksums.json's), or null: the weights the graph was built from
)
OPTIONAL_METADATA = {
    "temperature_by": None,
    "class_prior": None,
    "rr_channel": False,
    "outputs": None,
    "split": None,
    "weights": None,
}  # keys added after format 1 was first written, and their value in older files


class OnnxModelError(ValueError):
    """An `.onnx` file that is missing, unreadable, or not written by `ecgrhythm export`."""


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


def metadata_from_config(config: dict, n_networks: int = 1, split: dict | None = None, weights: dict | None = None) -> dict:
    """The metadata of an exported model, from its folder's `config.json` (as parsed JSON).

    Args:
        config: the folder's `config.json`.
        n_networks: networks averaged in the graph.
        split: the folder's split (:func:`ecgrhythm.networks.split.load_split`), or None when it has none.
        weights: `{weights file: SHA-256}` of the networks (:func:`folder_weights`), or None when unknown.

    Returns:
        A dict keyed by :data:`METADATA_KEYS`; the exporter stores each value as JSON text.
    """
    preprocess = PreprocessConfig.from_dict(config["preprocess"])
    architecture = config_from_dict(config["model"])
    classes = list(config["classes"])
    return {
        "ecgrhythm_format": FORMAT,
        "classes": classes,
        "n_leads": int(config["n_leads"]),
        "rr_channel": preprocess.rr_channel,
        "leads": None if preprocess.leads is None else list(preprocess.leads),
        "fs": float(preprocess.fs),
        "bandpass": None if preprocess.bandpass is None else list(preprocess.bandpass),
        "normalization": preprocess.normalization,
        "decision": "threshold" if architecture.multilabel else "argmax",
        "thresholds": [float(t) for t in config.get("thresholds") or [0.5] * len(classes)],
        "temperature": config.get("temperature", 1.0),
        "temperature_by": config.get("temperature_by"),
        "class_prior": config.get("class_prior"),
        "downsampling": architecture.downsampling,
        "buckets": list(bucket_lengths(preprocess.fs, architecture.downsampling)),
        "networks": int(n_networks),
        "outputs": graph_outputs(n_networks),
        "config.json": config,
        "split": split,
        "weights": weights,
    }


def folder_weights(path, config: dict) -> dict[str, str]:
    """`{weights file: SHA-256}` of the networks of the model folder `path`, from its `checksums.json`, in network order.

    Args:
        path: the model folder, whose files were checked against `checksums.json` (by loading it).
        config: its `config.json`, as parsed JSON (`members` names the weights files).
    """
    from ecgrhythm.networks.saving import CHECKSUM_FILE, WEIGHTS_FILE

    sums = json.loads((Path(path) / CHECKSUM_FILE).read_text(encoding="utf-8"))
    return {name: sums.get(name) for name in config.get("members", [WEIGHTS_FILE])}


def intra_op_threads() -> int:
    """Threads onnxruntime runs one operator on: `$OMP_NUM_THREADS` when set (Ray sets it to an actor's CPUs), else
    the cores this process may run on (`os.sched_getaffinity`, which a container's or `taskset`'s limit narrows)."""
    try:
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    except (KeyError, ValueError):
        pass
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def graph_outputs(n_networks: int) -> dict[str, int]:
    """The outputs of the graph of `n_networks` networks, each with how many of the first networks it averages."""
    return {OUTPUT: int(n_networks), **({FIRST_OUTPUT: 1} if n_networks > 1 else {})}


def read_onnx_metadata(path) -> dict:
    """The metadata of an `.onnx` file written by `ecgrhythm export`, values decoded from JSON.

    Raises:
        OnnxModelError: the file is missing, unreadable or lacks ecgrhythm's metadata.
    """
    return _decode(_session(path).get_modelmeta().custom_metadata_map, path)


def _session(path):
    ort = require("onnxruntime")
    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"{path}: ONNX model file not found; write one by exporting a model folder (`export_onnx`)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads()  # one operator over every core: a batch of records is one big call
    options.inter_op_num_threads = 1  # the graph's nodes run in sequence
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 (onnxruntime raises its own exception classes)
        raise OnnxModelError(f"{path}: cannot load the ONNX model ({type(exc).__name__}: {exc})") from None


def _decode(raw: dict, path) -> dict:
    missing = [k for k in METADATA_KEYS if k not in raw and k not in OPTIONAL_METADATA]
    if missing:
        raise OnnxModelError(f"{path}: not an ecgrhythm ONNX model (metadata {', '.join(missing)} missing); export one with 'ecgrhythm export'")
    try:
        meta = {k: json.loads(raw[k]) if k in raw else OPTIONAL_METADATA[k] for k in METADATA_KEYS}
    except ValueError as exc:
        raise OnnxModelError(f"{path}: damaged metadata ({exc}); export the model again") from None
    if meta["ecgrhythm_format"] != FORMAT:
        raise OnnxModelError(f"{path}: unknown ecgrhythm ONNX format {meta['ecgrhythm_format']!r}; expected {FORMAT}")
    _check_numbers(meta, path)
    return meta


DERIVED_KEYS = ("classes", "n_leads", "rr_channel", "leads", "fs", "bandpass", "normalization", "decision", "thresholds", "downsampling", "buckets")
# metadata an exporter derives from config.json (metadata_from_config): other tools read them, so they must agree with it


def _check_numbers(meta: dict, path) -> None:
    """Refuse metadata whose config.json or network count is out of bounds (:mod:`ecgrhythm.networks.limits`, the
    families' configs), or whose other numbers differ from those config.json gives, before anything is built."""
    config = meta["config.json"]
    try:
        check_whole("networks", meta["networks"], 1, MAX_MEMBERS)
        if not isinstance(config, dict):
            raise ValueError(f"expected a mapping. Received: {type(config).__name__}")
        checked_model_config(config)
        expected = metadata_from_config(config, meta["networks"])
    except (KeyError, TypeError, ValueError) as exc:
        raise OnnxModelError(f"{path}: invalid metadata: {exc}; export the model again") from None
    differ = [key for key in DERIVED_KEYS if meta[key] != expected[key]]
    if differ:
        raise OnnxModelError(f"{path}: its metadata's {differ} differ from those its config.json gives; export the model again")


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
        classes: the model's class names.
        n_networks: networks averaged by the graph (metadata "networks").
        networks: None (the file holds no Keras networks).
        split_source: where :meth:`training_split` reads the split, for messages.
    """

    networks = None
    split_source = "split in its metadata"

    def __init__(self, path: Path, session, metadata: dict, config: dict):
        self.path = path
        self.session = session
        self.metadata = metadata
        self.config = config
        self._outputs = self._graph_outputs()

    @classmethod
    def load(cls, path) -> OnnxBackend:
        """Open the `.onnx` file `path` written by `ecgrhythm export`.

        Raises:
            OnnxModelError: the file is missing, unreadable, not written by `ecgrhythm export`, or its metadata is
                inconsistent (naming the file and the fix).
            ImportError: onnxruntime is not installed.
        """
        path = Path(path)
        session = _session(path)
        meta = _decode(session.get_modelmeta().custom_metadata_map, path)
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
        session = _session(graph)
        meta = _decode(session.get_modelmeta().custom_metadata_map, graph)
        built = meta["config.json"]
        same_model = all(built.get(key) == config.get(key) for key in ("classes", "n_leads", "preprocess", "model"))
        if meta["weights"] != folder_weights(path, config) or not same_model:
            raise OnnxModelError(
                f"{graph}: not the graph of this folder's networks (it was exported from other weights or another model); export it again: {export}"
            )
        config["preprocess"], config["model"] = checked_model_config(config)  # as Keras loading parses it
        return cls(path, session, meta, config)

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
        """Within the block, `[run]`: the graph output that averages the file's first `networks` networks.

        All-padding rows (a batch filled up to its fixed size) are not run: onnxruntime has no compiled
        shapes to keep, and their rows are zeros.

        Raises:
            ValueError: the graph has no such output (an ensemble's first network alone, in files exported
                before `first_probabilities`).
        """
        name = self._outputs.get(networks)
        if name is None:
            raise ValueError(
                f"{self.path}: this ONNX file's graph gives the mean of its {self.n_networks} networks only, not that of "
                f"its first {networks}; export it again with 'ecgrhythm export' (its graph then has the first network's output too)"
            )
        n_classes = len(self.classes)

        def run(x, mask):
            rows = int(np.count_nonzero(mask.any(axis=1)))
            out = np.zeros((len(x), n_classes), dtype=np.float32)
            out[:rows] = run_session(self.session, [name], {INPUT_SIGNAL: x[:rows], INPUT_MASK: mask[:rows]})[0]  # SIGTERM stops it
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
