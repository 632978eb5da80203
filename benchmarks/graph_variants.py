"""Variants of a model folder's ONNX graph against the graph itself: size, speed, agreement.

The variants: the same graph with its convolutions and pooling written 1-D (`(batch, ch, steps)`, as `ecgrhythm export`
wrote them before it wrote them 2-D with a height of one, a layout onnxruntime runs in blocked channels), and
onnxruntime's dynamic int8 quantisation of the graph. The folder's `model.onnx` is quantised with `onnxruntime.quantization.quantize_dynamic` (weights int8, activations
quantised at run time) into a temporary folder, two ways: every operator it can quantise (`Conv` becomes
`ConvInteger`, the LSTMs `DynamicQuantizeLSTM`, the head's `MatMul` `MatMulInteger`), and the recurrent and dense
operators only (`LSTM`, `MatMul`), convolutions kept in float. Each variant and the graph (`float`) classify the same
first N records of `--data` (read and preprocessed once); timed is `predict_prepared` over all of them (network only,
after one warm-up pass), `--repeats` times, the variants taking turns. Agreement with the graph: records whose labels differ, the largest
probability difference, and the CinC 2017 score (mean F1 of N, A, O) of each against the folder's `REFERENCE.csv`.

The shipped model was trained on all 7,249 CinC 2017 records, so on them its score is in-sample: only the
difference between the variants means anything, not the score itself.

Prints one JSON line; `--output FILE.json` also writes it to a file.

Example:
    python benchmarks/graph_variants.py --data ../shared/data/cinc2017 --model models/cinc2017 --n 1279
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import data_and_model, emit, fail, machine, records_parser

INT8 = {"int8_all": None, "int8_lstm_matmul": ["LSTM", "MatMul"]}  # name -> op_types_to_quantize (None: all it can)
VARIANTS = ("conv1d_layout", *INT8)


def conv1d_layout(source: Path, target: Path) -> Path:
    """`source` with its convolutions and pooling written 1-D, written to `target`: kernels `(out, in, k)`, the
    input `(batch, ch, steps)`, the mask `(batch, 1, steps)`, no height axis to squeeze before the recurrent layers."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    graph.initializer.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axes_1d"))
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            kernel = weights[node.input[1]]
            kernel.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(kernel)[:, :, 0, :], kernel.name))
            attrs.update(kernel_shape=attrs["kernel_shape"][1:], pads=attrs["pads"][1::2], strides=attrs["strides"][1:])
        elif node.op_type == "MaxPool":
            attrs.update(kernel_shape=attrs["kernel_shape"][1:], strides=attrs["strides"][1:])
        elif node.op_type == "Transpose" and attrs["perm"] == [0, 3, 1, 2]:
            attrs.update(perm=[0, 2, 1])
        elif node.op_type == "Unsqueeze" and node.input[0] == "signal" or node.op_type == "Squeeze":
            node.op_type = "Identity"  # no height axis to add or remove
            del node.input[1:]
        elif node.op_type == "Unsqueeze":  # the mask: (batch, 1, steps)
            node.input[1] = "axes_1d"
        del node.attribute[:]
        node.attribute.extend(helper.make_attribute(name, value) for name, value in attrs.items())
    used = {name for node in graph.node for name in node.input}
    kept = [tensor for tensor in graph.initializer if tensor.name in used]  # the height axes' constants are left over
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.save(model, str(target))
    return target


def quantise(source: Path, target: Path, op_types) -> Path:
    """`source` quantised dynamically to int8 weights, written to `target` (its metadata kept)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its advice to run shape inference first, once per call
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, **({} if op_types is None else {"op_types_to_quantize": op_types}))
    return target


def measure(files: dict, signals, repeats: int) -> dict:
    """`{name: (timing, probabilities, labels)}`: each `.onnx` file of `files` loaded, warmed up, then `predict_prepared`
    over `signals` timed `repeats` times, the files taking turns (so that a change in the machine's load hits them alike)."""
    from ecgrhythm.inference.classifier import RhythmClassifier

    classifiers = {name: RhythmClassifier.load(path) for name, path in files.items()}
    probs = {name: clf.predict_prepared(signals) for name, clf in classifiers.items()}  # warm-up
    times = {name: [] for name in files}
    for _ in range(repeats):
        for name, clf in classifiers.items():
            start = time.perf_counter()
            probs[name] = clf.predict_prepared(signals)
            times[name].append(time.perf_counter() - start)
    return {
        name: (
            {
                "bytes": path.stat().st_size,
                "network_seconds": [round(t, 3) for t in times[name]],
                "network_records_per_s": round(len(signals) / statistics.median(times[name]), 2),
            },
            probs[name],
            classifiers[name].labels_from_proba(probs[name]),
        )
        for name, path in files.items()
    }


def main(argv=None) -> int:
    parser = records_parser(
        __doc__,
        data_help="CinC 2017 folder (records and REFERENCE.csv)",
        model_help="model folder carrying its ONNX graph (model.onnx)",
        repeats=2,
        repeats_help="timed passes after the warm-up",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        fail("--n and --repeats must be positive integers")
    data, model = data_and_model(args.data, args.model)

    import onnxruntime

    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.inference.onnx_backend import GRAPH_FILE, intra_op_threads
    from ecgrhythm.records import find_records, read_record
    from ecgrhythm.records.reference import read_reference
    from ecgrhythm.scoring.metrics import cinc2017_score, confusion_matrix

    graph = model / GRAPH_FILE
    if not graph.is_file():
        fail(f"--model {model}: no {GRAPH_FILE}; write it with 'ecgrhythm export --model {model} --output {graph}'")
    reference = read_reference(data / "REFERENCE.csv")
    paths = find_records([data])[: args.n]
    clf = RhythmClassifier.load(graph)
    signals, truth = [], []
    for path in paths:
        record = clf.choose_lead(read_record(path))[0]
        signals.append(clf.prepare(record))
        truth.append(reference[record.record_name])
    result = {
        "benchmark": "graph_variants",
        "data": str(data.resolve()),
        "model": str(model),
        "n_records": len(paths),
        "in_sample": "the shipped model was trained on all CinC 2017 records: only score differences mean anything",
        "intra_op_threads": intra_op_threads(),
        "load_average_1m_before": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory(prefix="ecgrhythm-variants-") as tmp:
        files = {"float": graph, "conv1d_layout": conv1d_layout(graph, Path(tmp) / "conv1d_layout.onnx")}
        files.update({name: quantise(graph, Path(tmp) / f"{name}.onnx", ops) for name, ops in INT8.items()})
        runs = measure(files, signals, args.repeats)
    float_probs, float_labels = runs["float"][1], runs["float"][2]
    for name, (timing, probs, labels) in runs.items():
        score = cinc2017_score(confusion_matrix(truth, labels, clf.classes_), clf.classes_)
        result[name] = {
            **timing,
            "cinc2017_score_in_sample": round(score, 4),
            "labels_differing_from_float": int(sum(a != b for a, b in zip(labels, float_labels))),
            "max_abs_probability_difference_from_float": float(np.max(np.abs(probs - float_probs))),
        }
    for name in VARIANTS:
        result[name]["score_difference_from_float"] = round(result[name]["cinc2017_score_in_sample"] - result["float"]["cinc2017_score_in_sample"], 4)
        result[name]["speedup_over_float"] = round(result[name]["network_records_per_s"] / result["float"]["network_records_per_s"], 2)
    result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    result["machine"] = {**machine(), "onnxruntime": onnxruntime.__version__}
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.exit(main())
