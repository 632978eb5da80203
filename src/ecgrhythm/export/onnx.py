"""Export a model folder to one ONNX file that carries everything needed to use it.

Route: the ONNX graph is written node by node from the trained weights with
`onnx.helper`, mapping each layer of :func:`ecgrhythm.networks.cnn_lstm.build_lstm_classifier`
onto the ONNX operator that computes the same thing: `Conv` (NCW layout,
Keras "same" padding), `BatchNormalization` (inference statistics),
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
end padding :func:`ecgrhythm.preprocessing.batching.pad_batch` builds): the LSTM reads
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
:data:`ecgrhythm.inference.onnx_backend.METADATA_KEYS`. They include the folder's
`split.json` (record names only, about 73 KB for all of CinC 2017), so that
`ecgrhythm evaluate --model FILE.onnx` leaves out the records the model was
trained on, as it does for the folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ecgrhythm.config import ModelConfig, PreprocessConfig
from ecgrhythm.inference.onnx_backend import FIRST_OUTPUT, INPUT_MASK, INPUT_SIGNAL, OUTPUT, graph_outputs, metadata_from_config, require
from ecgrhythm.preprocessing.batching import bucket_lengths, pad_batch
from ecgrhythm.utils.io import atomic_write

__all__ = ["export_onnx", "onnx_graph", "OPSET"]

OPSET = 17
PARITY_TOLERANCE = 1e-4


class _Graph:
    """Nodes and initialisers of an ONNX graph under construction, with unique names."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers, self._count = [], [], 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint: str, dtype=np.float32) -> str:
        name = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs, hint: str | None = None, **attrs) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def _same_pads(kernel: int) -> list[int]:
    """Keras "same" padding of a 1-D convolution: `(left, right)`, the extra step (even kernels) on the right."""
    left = (kernel - 1) // 2
    return [left, kernel - 1 - left]


def _conv_bn(g: _Graph, x: str, conv, bn) -> str:
    """A Keras `Conv1D` (no bias) then `BatchNormalization` in inference mode, on `(batch, ch, steps)`."""
    kernel = np.asarray(conv.kernel)  # (k, in, out) -> ONNX (out, in, k)
    k = kernel.shape[0]
    y = g.op("Conv", [x, g.const(kernel.transpose(2, 1, 0), "conv_w")], "conv", kernel_shape=[k], pads=_same_pads(k))
    if bn is None:
        return y
    params = [np.asarray(v) for v in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)]
    return g.op("BatchNormalization", [y, *(g.const(p, "bn") for p in params)], "bn", epsilon=float(bn.epsilon))


def _lstm_weights(layer):
    """ONNX `W (4h, in)`, `R (4h, h)`, `B (8h,)` of a Keras LSTM (gates i, f, c, o -> ONNX i, o, f, c)."""
    cell = layer.cell
    if cell.activation.__name__ != "tanh" or cell.recurrent_activation.__name__ != "sigmoid":
        raise ValueError(f"LSTM {layer.name}: only tanh/sigmoid activations map onto the ONNX LSTM operator")
    h = cell.units
    order = np.concatenate([np.arange(0, h), np.arange(3 * h, 4 * h), np.arange(h, 2 * h), np.arange(2 * h, 3 * h)])
    w = np.asarray(cell.kernel)[:, order].T
    r = np.asarray(cell.recurrent_kernel)[:, order].T
    b = np.asarray(cell.bias)[order] if cell.use_bias else np.zeros(4 * h, np.float32)
    return w, r, np.concatenate([b, np.zeros_like(b)])


def _network(g: _Graph, model, architecture, signal: str, keep: str) -> str:
    """Append one network's nodes; returns the name of its `(batch, n_classes)` probabilities."""
    x = g.op("Transpose", [signal], "ncw", perm=[0, 2, 1])  # (batch, n_leads, steps)
    m = g.op("Unsqueeze", [keep, g.const([1], "axis", np.int64)], "mask_ncw")  # (batch, 1, steps)
    for i in range(len(architecture.conv_filters)):
        block = model.get_layer(f"conv_block_{i}")
        h = g.op("Mul", [g.op("Relu", [_conv_bn(g, x, block.conv1, block.bn1)]), m])
        h = g.op("Add", [_conv_bn(g, h, block.conv2, block.bn2), _conv_bn(g, x, block.skip, None)])
        h = g.op("Mul", [g.op("Relu", [h]), m])
        x = g.op("MaxPool", [h], "pool", kernel_shape=[2], strides=[2])
        m = g.op("MaxPool", [m], "mask_down", kernel_shape=[2], strides=[2])  # DownsampleMask
    x = g.op("Transpose", [x], "tnc", perm=[2, 0, 1])  # (steps', batch, ch)
    m = g.op("Transpose", [m], "mask_tn1", perm=[2, 0, 1])  # (steps', batch, 1)
    lengths = g.op("Cast", [g.op("ReduceSum", [m, g.const([0, 2], "axes", np.int64)], keepdims=0)], "seq_lens", to=6)  # int32
    for i in range(architecture.lstm_layers):
        if architecture.bidirectional:
            wrapper = model.get_layer(f"bilstm_{i}")
            layers_, direction = [wrapper.forward_layer, wrapper.backward_layer], "bidirectional"
        else:
            layers_, direction = [model.get_layer(f"lstm_{i}")], "forward"
        w, r, b = (np.stack(a) for a in zip(*(_lstm_weights(layer) for layer in layers_)))
        y = g.name("lstm")
        g.nodes.append(
            g.helper.make_node(
                "LSTM",
                [x, g.const(w, "lstm_w"), g.const(r, "lstm_r"), g.const(b, "lstm_b"), lengths],
                [y],
                direction=direction,
                hidden_size=int(w.shape[1] // 4),
            )
        )
        y = g.op("Transpose", [y], "lstm_tnd", perm=[0, 2, 1, 3])  # (steps', dirs, batch, h) -> (steps', batch, dirs, h)
        x = g.op("Reshape", [y, g.const([0, 0, -1], "shape", np.int64)], "lstm_out")  # forward then backward, as Keras concatenates
    axis0 = g.const([0], "axes", np.int64)
    total = g.op("ReduceSum", [g.op("Mul", [x, m]), axis0], keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [m, axis0], keepdims=0), g.const(1.0, "one")])
    mean = g.op("Div", [total, count], "mean")
    masked = g.op("Where", [g.op("Greater", [m, g.const(0.0, "zero")]), x, g.const(-1e9, "very_negative")])
    maximum = g.op("ReduceMax", [masked], "max", axes=[0], keepdims=0)
    pooled = g.op("Concat", [mean, maximum], "pooled", axis=1)
    dense = model.get_layer("probabilities")
    logits = g.op(
        "Add", [g.op("MatMul", [pooled, g.const(np.asarray(dense.kernel), "dense_w")]), g.const(np.asarray(dense.bias), "dense_b")], "logits"
    )
    return g.op("Sigmoid" if architecture.multilabel else "Softmax", [logits], "probs", **({} if architecture.multilabel else {"axis": -1}))


def onnx_graph(networks, config: dict, split: dict | None = None):
    """The ONNX model of one or more networks of the same model folder.

    Args:
        networks: Keras models from :func:`ecgrhythm.networks.saving.load_model_dir`
            (several networks: one graph whose output is their mean).
        config: the folder's `config.json`, as parsed JSON.
        split: the folder's split (:func:`ecgrhythm.networks.saving.load_split`), kept in the metadata, or None.

    Returns:
        An `onnx.ModelProto` with inputs `signal` float32 `(batch, steps, n_channels)` (`PreprocessConfig.n_channels(n_leads)`)
        and `mask` bool `(batch, steps)`, output `probabilities` `(batch, n_classes)` (the networks' mean) and, with
        several networks, `first_probabilities` `(batch, n_classes)` (the first network's own, which AF episodes use),
        and the metadata of :func:`ecgrhythm.inference.onnx_backend.metadata_from_config`.
    """
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    architecture, n_channels, n_classes = ModelConfig.from_dict(config["model"]), _n_channels(config), len(config["classes"])
    g = _Graph(helper, numpy_helper)
    keep = g.op("Cast", [INPUT_MASK], "keep", to=TensorProto.FLOAT)
    outputs = [_network(g, model, architecture, INPUT_SIGNAL, keep) for model in networks]
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ecgrhythm")
    model.ir_version = min(model.ir_version, 8)  # readable by onnxruntime 1.14 and later
    helper.set_model_props(model, {k: json.dumps(v) for k, v in metadata_from_config(config, n_networks=len(networks), split=split).items()})
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
    downsampling = ModelConfig.from_dict(config["model"]).downsampling
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


def export_onnx(model_dir=None, output=None, *, verify: bool = True, tolerance: float = PARITY_TOLERANCE) -> tuple[Path, float | None]:
    """Write a model folder as one `.onnx` file (atomically), with its `split.json` (if any) in the metadata.

    Args:
        model_dir: model folder (default: the shipped `models/cinc2017`).
        output: `.onnx` file to write.
        verify: compare the graph with the Keras network on one batch before writing.
        tolerance: largest probability difference `verify` accepts.

    Returns:
        `(path, difference)`: the file written and the largest probability
        difference `verify` measured (`None` without `verify`).

    Raises:
        ModelFolderError: the folder is missing, incomplete or altered.
        ValueError: the model has a fixed input length (`PreprocessConfig.fixed_length_s`), or its `split.json` is invalid.
        ImportError: `onnx` (or, to verify, `onnxruntime`) is not installed.
        RuntimeError: the graph does not reproduce the network within `tolerance`.
    """
    from ecgrhythm.inference.classifier import RhythmClassifier, default_model_dir
    from ecgrhythm.networks.saving import CONFIG_FILE, load_split

    if output is None or Path(output).suffix != ".onnx":
        raise ValueError(f"Invalid argument `output`: expected a file name ending in .onnx. Received: output={output!r}")
    path = Path(model_dir) if model_dir is not None else default_model_dir()
    classifier = RhythmClassifier.load(path)  # checks the folder and its checksums
    classifier.require_whole_records("ONNX export (the graph's documented preprocessing has no fixed length)")
    networks = classifier.networks_
    config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    split = load_split(path, fix="repair or delete it, then export again")  # kept so that evaluate leaves out its training records
    model_bytes = onnx_graph(networks, config, split).SerializeToString()
    worst = _check_parity(networks, model_bytes, config, tolerance) if verify else None
    with atomic_write(output, "wb") as f:
        f.write(model_bytes)
    return Path(output), worst
