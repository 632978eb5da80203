"""The ONNX nodes network families share, written from trained Keras layers with `onnx.helper`.

A family's graph writer (:attr:`ecgrhythm.networks.family.NetworkFamily.write_onnx`) maps each of its
layers onto the ONNX operators that compute the same thing, with these helpers: the inputs in channels-first
layout, `Conv` (Keras "same" padding, strided or not) and `BatchNormalization` (inference statistics), the
mask shortened by `MaxPool`, recurrent operators (`LSTM`, `GRU`) reading `sequence_lens` = the kept steps,
and masked mean and max pooling with the dense head (:func:`ecgrhythm.networks.layers.classification_head`).

Layouts: channels-first with a height of one, `(batch, ch, 1, steps)` with the float mask `(batch, 1, 1, steps)`, for
convolutions, then time-major `(steps, batch, ch)` with the mask `(steps, batch, 1)` for recurrent layers and pooling.
A Keras `Conv1D` is written as a 2-D `Conv` with a `(1, k)` kernel: onnxruntime runs 2-D convolutions in its
blocked-channel layout (NCHWc), which it does not apply to 1-D ones; the shipped graph runs 1.19 times as fast so on
this project's 2-core machine, to the same probabilities within 3e-7 (`python benchmarks/graph_variants.py`). Only
`numpy` is imported here; the exporter (:mod:`ecgrhythm.export.onnx`) hands :class:`OnnxGraph` the `onnx`
helpers.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "OnnxGraph",
    "same_pads",
    "conv",
    "conv_bn",
    "batch_norm",
    "max_pool",
    "conv_block",
    "channels_first",
    "downsample_mask",
    "time_major",
    "recurrent",
    "pooled_head",
]

INT32 = 6  # onnx.TensorProto.INT32


class OnnxGraph:
    """Nodes and initialisers of an ONNX graph under construction, with unique names.

    Args:
        helper: the `onnx.helper` module.
        numpy_helper: the `onnx.numpy_helper` module.
    """

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers, self._count = [], [], 0

    def name(self, hint: str) -> str:
        """A new tensor name, `{hint}_{n}`."""
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint: str, dtype=np.float32) -> str:
        """Add `value` as an initialiser of `dtype`; returns its name."""
        name = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs, hint: str | None = None, **attrs) -> str:
        """Add one node of `op_type` with one output; returns the output's name."""
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def same_pads(kernel: int, stride: int = 1) -> list[int]:
    """Keras "same" padding `(left, right)` of a 1-D convolution over a multiple of `stride` steps, the extra step on the right."""
    total = max(kernel - stride, 0)
    left = total // 2
    return [left, total - left]


def conv(g: OnnxGraph, x: str, layer, stride: int = 1) -> str:
    """A Keras `Conv1D` (with its bias, if any) on `(batch, ch, 1, steps)`: a 2-D `Conv` with a `(1, k)` kernel."""
    kernel = np.asarray(layer.kernel)  # (k, in, out) -> ONNX (out, in, 1, k)
    k = kernel.shape[0]
    inputs = [x, g.const(kernel.transpose(2, 1, 0)[:, :, None, :], "conv_w")]
    if layer.use_bias:
        inputs.append(g.const(np.asarray(layer.bias), "conv_b"))
    left, right = same_pads(k, stride)
    return g.op("Conv", inputs, "conv", kernel_shape=[1, k], pads=[0, left, 0, right], strides=[1, stride])


def conv_bn(g: OnnxGraph, x: str, conv_layer, bn) -> str:
    """A Keras `Conv1D` then `BatchNormalization` (`bn`, or None for none) in inference mode, on `(batch, ch, 1, steps)`."""
    y = conv(g, x, conv_layer)
    return y if bn is None else batch_norm(g, y, bn)


def batch_norm(g: OnnxGraph, x: str, bn) -> str:
    """A Keras `BatchNormalization` in inference mode on `(batch, ch, 1, steps)`."""
    params = [np.asarray(v) for v in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)]
    return g.op("BatchNormalization", [x, *(g.const(p, "bn") for p in params)], "bn", epsilon=float(bn.epsilon))


def max_pool(g: OnnxGraph, x: str, factor: int, hint: str = "pool") -> str:
    """`MaxPool` by `factor` along the steps of `(batch, ch, 1, steps)` (a Keras `MaxPooling1D` with stride `factor`)."""
    return g.op("MaxPool", [x], hint, kernel_shape=[1, factor], strides=[1, factor])


def conv_block(g: OnnxGraph, x: str, m: str, block) -> tuple[str, str]:
    """:class:`ecgrhythm.networks.layers.MaskedConvBlock` `block` on `x` `(batch, ch, 1, steps)` with its float mask `m`
    `(batch, 1, 1, steps)`; returns the output and its mask, both shortened by the block's `pool_size`."""
    h = g.op("Mul", [g.op("Relu", [conv_bn(g, x, block.conv1, block.bn1)]), m])
    h = g.op("Add", [conv_bn(g, h, block.conv2, block.bn2), conv_bn(g, x, block.skip, None)])
    h = g.op("Mul", [g.op("Relu", [h]), m])
    if block.pool_size == 1:
        return h, m
    return max_pool(g, h, block.pool_size), downsample_mask(g, m, block.pool_size)


def channels_first(g: OnnxGraph, signal: str, keep: str) -> tuple[str, str]:
    """`(x, m)`: the input `(batch, steps, ch)` as `(batch, ch, 1, steps)` and the float mask `(batch, steps)` as `(batch, 1, 1, steps)`."""
    x = g.op("Transpose", [g.op("Unsqueeze", [signal, g.const([1], "axis", np.int64)], "nhwc")], "nchw", perm=[0, 3, 1, 2])
    m = g.op("Unsqueeze", [keep, g.const([1, 2], "axes", np.int64)], "mask_nchw")
    return x, m


def downsample_mask(g: OnnxGraph, m: str, factor: int) -> str:
    """:class:`ecgrhythm.networks.layers.DownsampleMask`: `MaxPool` by `factor` of the mask `(batch, 1, 1, steps)`."""
    return max_pool(g, m, factor, "mask_down")


def time_major(g: OnnxGraph, x: str, m: str) -> tuple[str, str, str]:
    """`(x, m, lengths)`: channels-first features and mask as `(steps, batch, ch)` and `(steps, batch, 1)`, and the kept steps int32 `(batch,)`."""
    height = g.const([2], "axis", np.int64)
    x = g.op("Transpose", [g.op("Squeeze", [x, height])], "tnc", perm=[2, 0, 1])
    m = g.op("Transpose", [g.op("Squeeze", [m, height])], "mask_tn1", perm=[2, 0, 1])
    lengths = g.op("Cast", [g.op("ReduceSum", [m, g.const([0, 2], "axes", np.int64)], keepdims=0)], "seq_lens", to=INT32)
    return x, m, lengths


def recurrent(g: OnnxGraph, op_type: str, x: str, weights, lengths: str, direction: str, **attrs) -> str:
    """An ONNX recurrent operator (`"LSTM"` or `"GRU"`) over time-major `x`, reading `lengths` steps of each row.

    Args:
        g: the graph.
        op_type: the operator.
        x: input `(steps, batch, ch)`.
        weights: `(W, R, B)` in the operator's layout, each stacked over directions.
        lengths: int32 `(batch,)` kept steps.
        direction: `"forward"` or `"bidirectional"`.
        **attrs: further attributes of the operator.

    Returns:
        The output `(steps, batch, dirs * hidden)`, forward then backward as Keras concatenates them; zero past each row's length.
    """
    w, r, b = weights
    hint = op_type.lower()
    y = g.name(hint)
    consts = [g.const(w, f"{hint}_w"), g.const(r, f"{hint}_r"), g.const(b, f"{hint}_b")]
    g.nodes.append(g.helper.make_node(op_type, [x, *consts, lengths], [y], direction=direction, hidden_size=int(r.shape[-1]), **attrs))
    y = g.op("Transpose", [y], f"{hint}_tnd", perm=[0, 2, 1, 3])  # (steps, dirs, batch, h) -> (steps, batch, dirs, h)
    return g.op("Reshape", [y, g.const([0, 0, -1], "shape", np.int64)], f"{hint}_out")


def pooled_head(g: OnnxGraph, x: str, m: str, dense, multilabel: bool) -> str:
    """Masked mean and max pooling over time-major `x` `(steps, batch, ch)`, then the Keras `Dense` layer `dense`.

    Returns:
        The name of the probabilities `(batch, n_classes)`: sigmoid for `multilabel`, else softmax.
    """
    axis0 = g.const([0], "axes", np.int64)
    total = g.op("ReduceSum", [g.op("Mul", [x, m]), axis0], keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [m, axis0], keepdims=0), g.const(1.0, "one")])
    mean = g.op("Div", [total, count], "mean")
    masked = g.op("Where", [g.op("Greater", [m, g.const(0.0, "zero")]), x, g.const(-1e9, "very_negative")])
    maximum = g.op("ReduceMax", [masked], "max", axes=[0], keepdims=0)
    pooled = g.op("Concat", [mean, maximum], "pooled", axis=1)
    logits = g.op(
        "Add", [g.op("MatMul", [pooled, g.const(np.asarray(dense.kernel), "dense_w")]), g.const(np.asarray(dense.bias), "dense_b")], "logits"
    )
    return g.op("Sigmoid" if multilabel else "Softmax", [logits], "probs", **({} if multilabel else {"axis": -1}))
