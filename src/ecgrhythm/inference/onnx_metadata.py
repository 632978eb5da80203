"""The metadata an exported `.onnx` file carries (written by `ecgrhythm export`): its keys, how they are made from a
model folder's `config.json`, and how they are decoded and checked before anything is built from them.
"""

from __future__ import annotations

import json
from pathlib import Path

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.networks.family import check_whole
from ecgrhythm.networks.limits import MAX_MEMBERS, checked_model_config
from ecgrhythm.networks.registry import config_from_dict
from ecgrhythm.preprocessing.batching import bucket_lengths

__all__ = [
    "OnnxModelError",
    "metadata_from_config",
    "decode_metadata",
    "graph_outputs",
    "folder_weights",
    "METADATA_KEYS",
    "FORMAT",
    "INPUT_SIGNAL",
    "INPUT_MASK",
    "OUTPUT",
    "FIRST_OUTPUT",
]

FORMAT = 1
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


def graph_outputs(n_networks: int) -> dict[str, int]:
    """The outputs of the graph of `n_networks` networks, each with how many of the first networks it averages."""
    return {OUTPUT: int(n_networks), **({FIRST_OUTPUT: 1} if n_networks > 1 else {})}


def decode_metadata(raw: dict, path) -> dict:
    """The metadata of the file `path` (its raw `custom_metadata_map`), values decoded from JSON and checked.

    Raises:
        OnnxModelError: a key is missing, a value is not JSON, the format is unknown, or the numbers are out of bounds
            or disagree with its config.json.
    """
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
