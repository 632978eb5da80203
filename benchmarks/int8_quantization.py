"""onnxruntime's dynamic int8 quantisation of a model folder's graph against the float graph: size, speed, agreement.

The folder's `model.onnx` is quantised with `onnxruntime.quantization.quantize_dynamic` (weights int8, activations
quantised at run time) into a temporary folder, two ways: every operator it can quantise (`Conv` becomes
`ConvInteger`, the LSTMs `DynamicQuantizeLSTM`, the head's `MatMul` `MatMulInteger`), and the recurrent and dense
operators only (`LSTM`, `MatMul`), convolutions kept in float. Each variant and the float graph classify the same
first N records of `--data` (read and preprocessed once); timed is `predict_prepared` over all of them (network only,
after one warm-up pass), `--repeats` times. Agreement with the float graph: records whose labels differ, the largest
probability difference, and the CinC 2017 score (mean F1 of N, A, O) of each against the folder's `REFERENCE.csv`.

The shipped model was trained on all 7,249 CinC 2017 records, so on them its score is in-sample: only the
difference between the variants means anything, not the score itself.

Prints one JSON line; `--output FILE.json` also writes it to a file.

Example:
    python benchmarks/int8_quantization.py --data ../shared/data/cinc2017 --model models/cinc2017 --n 1279
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import data_and_model, emit, fail, machine

VARIANTS = {"int8_all": None, "int8_lstm_matmul": ["LSTM", "MatMul"]}  # name -> op_types_to_quantize (None: all it can)


def quantise(source: Path, target: Path, op_types) -> Path:
    """`source` quantised dynamically to int8 weights, written to `target` (its metadata kept)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # its advice to run shape inference first, once per call
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, **({} if op_types is None else {"op_types_to_quantize": op_types}))
    return target


def measure(path: Path, signals, repeats: int) -> tuple[dict, object, list]:
    """Load `path` as an `.onnx` file, warm up, then time `predict_prepared` over `signals`."""
    from ecgrhythm.inference.classifier import RhythmClassifier

    clf = RhythmClassifier.load(path)
    probs = clf.predict_prepared(signals)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        probs = clf.predict_prepared(signals)
        times.append(time.perf_counter() - start)
    return (
        {
            "bytes": path.stat().st_size,
            "network_seconds": [round(t, 3) for t in times],
            "network_records_per_s": round(len(signals) / statistics.median(times), 2),
        },
        probs,
        clf.labels_from_proba(probs),
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Prints one JSON line of results.")
    parser.add_argument("--data", required=True, help="CinC 2017 folder (records and REFERENCE.csv)")
    parser.add_argument("--model", required=True, help="model folder carrying its ONNX graph (model.onnx)")
    parser.add_argument("--n", type=int, default=1279, help="number of records, the first N of --data (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes after the warm-up (default %(default)s)")
    parser.add_argument("--output", help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        fail("--n and --repeats must be positive integers")
    data, model = data_and_model(args.data, args.model)

    import numpy as np
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
        "benchmark": "int8_quantization",
        "data": str(data.resolve()),
        "model": str(model),
        "n_records": len(paths),
        "in_sample": "the shipped model was trained on all CinC 2017 records: only score differences mean anything",
        "intra_op_threads": intra_op_threads(),
        "load_average_1m_before": round(os.getloadavg()[0], 2),
    }
    with tempfile.TemporaryDirectory(prefix="ecgrhythm-int8-") as tmp:
        files = {"float": graph, **{name: quantise(graph, Path(tmp) / f"{name}.onnx", ops) for name, ops in VARIANTS.items()}}
        runs = {name: measure(path, signals, args.repeats) for name, path in files.items()}
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
