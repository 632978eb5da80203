"""ONNX against Keras: records per second on the same folder, file sizes, and parity.

The model folder is exported to a temporary `.onnx` file (timed), then both
classifiers run over the same first N records:

(a) network only: the records are read and preprocessed once; `predict_prepared`
    is timed over all of them (after one warm-up pass that compiles every
    bucket shape on JAX);
(b) in process: `classify_files` (reading, preprocessing, inference) timed
    after the same warm-up;
(c) end to end: one `ecgrhythm classify TMP --model ...` subprocess each
    (start-up, imports and loading included; `--skip-cli` to leave out).

Parity on these records: the largest probability difference and the number
of records whose labels differ.

Prints one JSON line; `--output FILE.json` also writes it to a file.

Example:
    python benchmarks/onnx_throughput.py --data ../shared/data/cinc2017 --model models/cinc2017 --n 300
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import data_and_model, emit, fail, machine
from classify_throughput import end_to_end, link_records, warm_page_cache


def _timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def measure(clf, paths, signals, repeats: int) -> tuple[dict, object]:
    """Warm up, then time `predict_prepared` on prepared signals and `classify_files` on the files."""
    from ecgrhythm.inference.streaming import classify_files

    t0 = time.perf_counter()
    probs = clf.predict_prepared(signals)  # warm-up: compiles every bucket shape (JAX); nothing to compile for onnxruntime
    warmup = time.perf_counter() - t0
    network = _timed(lambda: clf.predict_prepared(signals), repeats)
    files = _timed(lambda: classify_files(clf, paths), repeats)
    return {
        "warmup_s": round(warmup, 3),
        "network_seconds": [round(t, 3) for t in network],
        "network_records_per_s": round(len(signals) / statistics.median(network), 2),
        "classify_files_seconds": [round(t, 3) for t in files],
        "classify_files_records_per_s": round(len(paths) / statistics.median(files), 2),
    }, probs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Prints one JSON line of results.")
    parser.add_argument("--data", required=True, help="folder of records (its RECORDS index, if any, gives the order)")
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--n", type=int, default=300, help="number of records, the first N of --data (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes after the warm-up (default %(default)s)")
    parser.add_argument("--skip-cli", action="store_true", help="skip the end-to-end subprocess measurements")
    parser.add_argument("--output", help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        fail("--n and --repeats must be positive integers")
    data, model = data_and_model(args.data, args.model)

    import numpy as np
    import onnxruntime

    from ecgrhythm.export.onnx import export_onnx
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.networks.saving import WEIGHTS_FILE
    from ecgrhythm.records import find_records, read_record

    records = find_records([data])[: args.n]
    tmp = Path(tempfile.mkdtemp(prefix="ecgrhythm-bench-onnx-"))
    try:
        folder = tmp / "records"
        folder.mkdir()
        link_records(records, folder)
        warm_page_cache(folder)
        t0 = time.perf_counter()
        onnx_path, check = export_onnx(model, tmp / "model.onnx")
        export_s = time.perf_counter() - t0
        result = {
            "benchmark": "onnx_throughput",
            "data": str(data.resolve()),
            "model": str(model),
            "n_records": len(records),
            "export_s": round(export_s, 2),
            "export_check_difference": check,
            "onnx_bytes": onnx_path.stat().st_size,
            "keras_weights_bytes": (model / WEIGHTS_FILE).stat().st_size,
        }
        paths = find_records([folder])
        keras_clf, onnx_clf = RhythmClassifier.load(model), RhythmClassifier.load(onnx_path)  # a model folder on Keras, the .onnx file on onnxruntime
        signals = [keras_clf.prepare(read_record(p)) for p in paths]
        result["keras"], keras_probs = measure(keras_clf, paths, signals, args.repeats)
        result["onnx"], onnx_probs = measure(onnx_clf, paths, signals, args.repeats)
        result["speedup_network"] = round(result["onnx"]["network_records_per_s"] / result["keras"]["network_records_per_s"], 2)
        result["parity"] = {
            "max_abs_probability_difference": float(np.max(np.abs(onnx_probs - keras_probs))),
            "labels_differing": int(sum(a != b for a, b in zip(keras_clf.labels_from_proba(keras_probs), onnx_clf.labels_from_proba(onnx_probs)))),
        }
        if not args.skip_cli:
            result["end_to_end"] = {"keras": end_to_end(folder, model, len(paths), []), "onnx": end_to_end(folder, onnx_path, len(paths), [])}
        result["machine"] = {**machine(), "onnxruntime": onnxruntime.__version__}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.exit(main())
