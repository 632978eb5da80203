"""Export a model folder to one ONNX file that carries everything needed to use it.

Route: the ONNX graph is written node by node from the trained weights with
`onnx.helper`, by the network's family (its `write_onnx`, see
:class:`ecgrhythm.networks.family.NetworkFamily`; shared nodes in
:mod:`ecgrhythm.networks.onnx_graph`), which maps each layer onto the ONNX
operators that compute the same thing: for the CNN + LSTM, `Conv` (2-D
with a height of one, Keras "same" padding), `BatchNormalization` (inference statistics),
`MaxPool` for the features and for the mask, ONNX's own `LSTM` operator with
`sequence_lens` for the masked (bi)directional LSTM, masked mean and max
pooling, and `MatMul`/`Softmax` for the head. Nothing is traced, so the time
axis stays dynamic, the file is as small as the weights, and the only
dependency at export time is `onnx` (plus `onnxruntime` to verify).

Variable length: one graph with a dynamic time axis, not one graph per
bucket. Its inputs are the Keras model's: `signal` float32
`(batch, steps, n_channels)` (the leads, then the RR channel of a model trained
with `--rr-channel`) and `mask` bool `(batch, steps)`, with `steps` a
multiple of the `downsampling` factor and each mask row a prefix of True (the
end padding :func:`ecgrhythm.preprocessing.batching.pad_batch` builds): recurrent layers read
`sequence_lens` = the number of kept steps after downsampling. One graph
serves every length, so a record longer than the largest bucket can be
classified whole or cut into bucket-sized chunks exactly as the Keras
classifier does (the ONNX classifier does the latter, for identical
probabilities).

What failed (tried on the shipped model, Keras 3.15.1, JAX 0.10.2, jax2onnx 0.17.1):

- `model.export(path, format="onnx")` under the JAX backend (Keras hands the
  traced function to jax2onnx) stops in the first convolutional block: Keras
  names every dynamic axis on its own (`dim_0_1` for the mask's time axis,
  `dim_1_1` for the signal's), so JAX cannot multiply the features by the
  mask ("mul got incompatible shapes for broadcasting").
- jax2onnx called directly, both inputs sharing one symbolic time axis `T`:
  the LSTM's scan needs `steps >= 1` decided for the downsampled symbolic
  length ("Symbolic dimension comparison ... >= '1' is inconclusive").
- jax2onnx with a fixed length (one graph per bucket): the backward LSTM is a
  reversed `lax.scan`, which it cannot lower ("Reverse scan is not supported
  in IR pipeline").
- Keras' torch backend + `torch.onnx` (not run: judged from Keras' source):
  Keras' fused torch LSTM refuses a mask (`NotImplementedError`), so a masked
  LSTM falls back to a Python loop over time steps, which the
  exporter would unroll at the traced length (one fixed-length graph per
  bucket, hundreds of LSTM cells each), for a ~2 GB torch install in CI.
- TensorFlow + tf2onnx (not run): TensorFlow beside JAX in CI, and a graph
  traced under another backend than the one trained.

Every export is checked number by number: :func:`export_onnx` runs the Keras
network and the ONNX graph (onnxruntime) on the same padded batch of
several lengths and refuses to write a file whose probabilities differ by
more than `tolerance` (every output: a folder of several networks gets
`first_probabilities`, its first network's own, beside their mean).

Metadata (`metadata_props`, every value a JSON text) is read back with
:func:`ecgrhythm.inference.onnx_backend.read_onnx_metadata`; keys are listed in
:data:`ecgrhythm.inference.onnx_metadata.METADATA_KEYS`. They include the folder's
`split.json` (record names only, about 73 KB for all of CinC 2017), so that
`ecgrhythm evaluate --model FILE.onnx` leaves out the records the model was
trained on, as it does for the folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.inference.onnx_backend import require
from ecgrhythm.inference.onnx_metadata import FIRST_OUTPUT, INPUT_MASK, INPUT_SIGNAL, OUTPUT, folder_weights, graph_outputs, metadata_from_config
from ecgrhythm.networks.onnx_graph import OnnxGraph
from ecgrhythm.networks.registry import config_from_dict, get_family
from ecgrhythm.networks.saving import CONFIG_FILE
from ecgrhythm.networks.split import load_split
from ecgrhythm.preprocessing.batching import bucket_lengths, pad_batch
from ecgrhythm.utils.io import atomic_write
from ecgrhythm.utils.validation import check_positive_int

__all__ = ["export_onnx", "onnx_graph", "checked_model", "OPSET", "PARITY_TOLERANCE"]

OPSET = 17
PARITY_TOLERANCE = 1e-5  # the shipped model's graph differs from Keras by about 1e-7


def onnx_graph(networks, config: dict, split: dict | None = None, weights: dict | None = None):
    """The ONNX model of one or more networks of the same model folder.

    Args:
        networks: Keras models from :func:`ecgrhythm.networks.saving.load_model_dir`
            (several networks: one graph whose output is their mean).
        config: the folder's `config.json`, as parsed JSON.
        split: the folder's split (:func:`ecgrhythm.networks.split.load_split`), kept in the metadata, or None.
        weights: `{weights file: SHA-256}` of the networks (:func:`ecgrhythm.inference.onnx_metadata.folder_weights`),
            kept in the metadata so that the folder's graph is known to be of its weights, or None.

    Returns:
        An `onnx.ModelProto` with inputs `signal` float32 `(batch, steps, n_channels)` (`PreprocessConfig.n_channels(n_leads)`)
        and `mask` bool `(batch, steps)`, output `probabilities` `(batch, n_classes)` (the networks' mean) and, with
        several networks, `first_probabilities` `(batch, n_classes)` (the first network's own, which AF episodes use),
        and the metadata of :func:`ecgrhythm.inference.onnx_metadata.metadata_from_config`.
    """
    require("onnx")  # a clear message when the ONNX extra is missing
    from onnx import TensorProto, helper, numpy_helper

    architecture, n_channels, n_classes = config_from_dict(config["model"]), _n_channels(config), len(config["classes"])
    write_onnx = get_family(architecture.network).write_onnx
    if write_onnx is None:
        raise ValueError(f"the network {architecture.network!r} cannot be exported to ONNX: its family has no graph writer")
    g = OnnxGraph(helper, numpy_helper)
    keep = g.op("Cast", [INPUT_MASK], "keep", to=TensorProto.FLOAT)
    outputs = [write_onnx(g, model, architecture, INPUT_SIGNAL, keep) for model in networks]
    last = outputs[0] if len(outputs) == 1 else g.op("Mean", outputs, "ensemble")
    g.nodes.append(helper.make_node("Identity", [last], [OUTPUT]))
    if len(outputs) > 1:
        g.nodes.append(helper.make_node("Identity", [outputs[0]], [FIRST_OUTPUT]))
    graph = helper.make_graph(
        g.nodes,
        "ecgrhythm",
        [
            helper.make_tensor_value_info(INPUT_SIGNAL, TensorProto.FLOAT, ["batch", "steps", n_channels]),
            helper.make_tensor_value_info(INPUT_MASK, TensorProto.BOOL, ["batch", "steps"]),
        ],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", n_classes]) for name in graph_outputs(len(networks))],
        g.initializers,
    )
    return checked_model(
        graph, {k: json.dumps(v) for k, v in metadata_from_config(config, n_networks=len(networks), split=split, weights=weights).items()}
    )


def checked_model(graph, properties: dict | None = None):
    """The `onnx.ModelProto` of an ONNX `graph` as the project writes its graphs: opset :data:`OPSET`, IR version at most
    8 (readable by onnxruntime 1.14 and later), `properties` as its metadata, checked by `onnx.checker` (full check)."""
    onnx = require("onnx")
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ecgrhythm")
    model.ir_version = min(model.ir_version, 8)
    if properties:
        helper.set_model_props(model, properties)
    onnx.checker.check_model(model, full_check=True)
    return model


def _n_channels(config: dict) -> int:
    """Input channels of the network of a `config.json` (parsed JSON): its leads, then any RR channel."""
    return PreprocessConfig.from_dict(config["preprocess"]).n_channels(int(config["n_leads"]))


def _check_parity(networks, model_bytes, config, tolerance):
    """Run the Keras networks and the ONNX graph on one padded batch of several lengths; raise if any output differs.

    Returns:
        The largest difference, over the mean output and (several networks) the first network's output.
    """
    ort = require("onnxruntime")
    downsampling = config_from_dict(config["model"]).downsampling
    length = bucket_lengths(PreprocessConfig.from_dict(config["preprocess"]).fs, downsampling)[0]
    rng = np.random.default_rng(0)
    sizes = [length, length // 2 + 1, downsampling - 1, 1]  # full, half, shorter than one downsampled step
    x, mask = pad_batch([rng.standard_normal((n, _n_channels(config))).astype(np.float32) for n in sizes], length)
    each = [np.asarray(m.predict_on_batch({"signal": x, "mask": mask})) for m in networks]
    expected = {OUTPUT: np.mean(each, axis=0), FIRST_OUTPUT: each[0]}
    names = list(graph_outputs(len(networks)))
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    got = dict(zip(names, session.run(names, {INPUT_SIGNAL: x, INPUT_MASK: mask})))
    differences = {name: float(np.max(np.abs(got[name] - expected[name]))) for name in names}
    for name, difference in differences.items():
        if not difference <= tolerance:
            raise RuntimeError(
                f"the ONNX graph's output {name} differs from the Keras network(s) by {difference:.2e} (more than {tolerance:.0e}); not written"
            )
    return max(differences.values())


def export_onnx(
    model_dir=None, output=None, *, networks: int | None = None, verify: bool = True, tolerance: float = PARITY_TOLERANCE
) -> tuple[Path, float | None]:
    """Write a model folder as one `.onnx` file (atomically), with its `split.json` (if any) and its weights files'
    SHA-256 in the metadata.

    Written into the folder as its :data:`~ecgrhythm.inference.onnx_backend.GRAPH_FILE` (`model.onnx`), the graph is
    what the folder runs on by default (:func:`ecgrhythm.inference.backend.load_backend`); the networks are always
    read from the Keras weights, never from an earlier graph. With `networks=1`, written into the folder as its
    :data:`~ecgrhythm.inference.onnx_backend.FIRST_GRAPH_FILE`, it is what runs when the first network alone is asked
    for (AF episode windows), since onnxruntime runs the whole graph whatever outputs are fetched.

    Args:
        model_dir: model folder (default: the shipped `models/cinc2017`).
        output: `.onnx` file to write.
        networks: export the folder's first `networks` networks only (None: all). Such a file keeps the folder's
            calibration, which was fitted on all of them.
        verify: compare the graph with the Keras network on one batch before writing.
        tolerance: largest probability difference `verify` accepts.

    Returns:
        `(path, difference)`: the file written and the largest probability
        difference `verify` measured (`None` without `verify`).

    Raises:
        ModelFolderError: the folder is missing, incomplete or altered.
        ValueError: the model has a fixed input length (`PreprocessConfig.fixed_length_s`), its `split.json` is invalid,
            or `networks` is not a whole number from 1 to the folder's networks.
        ImportError: `onnx` (or, to verify, `onnxruntime`) is not installed.
        RuntimeError: the graph does not reproduce the network within `tolerance`.
    """
    from ecgrhythm.inference.classifier import RhythmClassifier, default_model_dir

    if output is None or Path(output).suffix != ".onnx":
        raise ValueError(f"Invalid argument `output`: expected a file name ending in .onnx. Received: output={output!r}")
    check_positive_int("networks", networks, optional=True)
    path = Path(model_dir) if model_dir is not None else default_model_dir()
    classifier = RhythmClassifier.load(path, backend="keras")  # checks the folder and its checksums
    classifier.require_whole_records("ONNX export (the graph's documented preprocessing has no fixed length)")
    if networks is not None and networks > classifier.n_networks_:
        raise ValueError(f"Invalid argument `networks`: the folder has {classifier.n_networks_} network(s). Received: networks={networks!r}")
    networks = classifier.networks_[:networks]
    config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    split = load_split(path, fix="repair or delete it, then export again")  # kept so that evaluate leaves out its training records
    weights = dict(list(folder_weights(path, config).items())[: len(networks)])
    model_bytes = onnx_graph(networks, config, split, weights).SerializeToString()
    worst = _check_parity(networks, model_bytes, config, tolerance) if verify else None
    with atomic_write(output, "wb") as f:
        f.write(model_bytes)
    return Path(output), worst
