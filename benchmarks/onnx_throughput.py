"""The default backend (a model folder's ONNX graph on onnxruntime) against `--backend keras`: records per second, parity.

Both run the same model folder (it must carry its graph, `model.onnx`) over the same first N records:

(a) network only: the records are read and preprocessed once; `predict_prepared`
    is timed over all of them (after one warm-up pass that compiles every
    bucket shape on JAX);
(b) in process: `classify_files` (reading, preprocessing, inference) timed
    after the same warm-up;
(c) end to end: `ecgrhythm classify` subprocesses, the default command against
    `--backend keras` (start-up, imports and loading included), of one record and
    of the N records, the two backends alternating `--repeats` times so that a
    change in the machine's load hits both (`--skip-cli` to leave out); the CPU
    seconds of each one-record run too, which that load changes less.

Parity on these records: the largest probability difference and the number
of records whose labels differ. The machine's load average is recorded before
and after: other work on the machine slows both, so compare their ratio.

Prints one JSON line; `--output FILE.json` also writes it to a file.

Example:
    python benchmarks/onnx_throughput.py --data ../shared/data/cinc2017 --model models/cinc2017 --n 1279
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import data_and_model, emit, fail, machine, records_parser
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


def side_by_side(folder: Path, one: Path, model: Path, n: int, repeats: int) -> dict:
    """End-to-end `ecgrhythm classify` of one record and of the folder, default against `--backend keras`, alternating."""
    runs = {"default": [], "keras": []}
    for _ in range(repeats):
        for name, extra in (("default", []), ("keras", ["--backend", "keras"])):
            runs[name].append({"one_record": end_to_end(one, model, 1, extra), "records": end_to_end(folder, model, n, extra)})
    result = {}
    for name, done in runs.items():
        one_s, all_s = [r["one_record"]["seconds"] for r in done], [r["records"]["seconds"] for r in done]
        one_cpu = [r["one_record"]["cpu_seconds"] for r in done]
        result[name] = {
            "command": done[0]["records"]["command"],
            "one_record_seconds": one_s,
            "one_record_median_s": round(statistics.median(one_s), 3),
            "one_record_cpu_seconds": one_cpu,
            "one_record_cpu_median_s": round(statistics.median(one_cpu), 3),
            "records_seconds": all_s,
            "records_per_s": round(n / statistics.median(all_s), 2),
        }
    result["speedup_one_record"] = round(result["keras"]["one_record_median_s"] / result["default"]["one_record_median_s"], 2)
    result["speedup_records"] = round(result["default"]["records_per_s"] / result["keras"]["records_per_s"], 2)
    return result


def main(argv=None) -> int:
    parser = records_parser(
        __doc__,
        model_help="model folder carrying its ONNX graph (model.onnx, from 'ecgrhythm export')",
        repeats=2,
        repeats_help="timed passes after the warm-up, and end-to-end runs of each backend",
    )
    parser.add_argument("--skip-cli", action="store_true", help="skip the end-to-end subprocess measurements")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        fail("--n and --repeats must be positive integers")
    data, model = data_and_model(args.data, args.model)

    import numpy as np
    import onnxruntime

    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.inference.onnx_backend import GRAPH_FILE, OnnxBackend, intra_op_threads
    from ecgrhythm.records import find_records, read_record

    onnx_clf, keras_clf = RhythmClassifier.load(model), RhythmClassifier.load(model, backend="keras")
    if not isinstance(onnx_clf.backend_, OnnxBackend):
        fail(
            f"{model} runs on Keras by default: it carries no ONNX graph of its weights; write one with 'ecgrhythm export --model {model} --output {model / GRAPH_FILE}'"
        )
    records = find_records([data])[: args.n]
    tmp = Path(tempfile.mkdtemp(prefix="ecgrhythm-bench-onnx-"))
    try:
        folder, one = tmp / "records", tmp / "one"
        folder.mkdir()
        one.mkdir()
        link_records(records, folder)
        link_records(records[:1], one)
        warm_page_cache(folder)
        weights = onnx_clf.backend_.metadata["weights"]  # the loaded graph's metadata: no second session
        result = {
            "benchmark": "onnx_throughput",
            "data": str(data.resolve()),
            "model": str(model),
            "n_records": len(records),
            "onnx_bytes": (model / GRAPH_FILE).stat().st_size,
            "keras_weights_bytes": sum((model / name).stat().st_size for name in weights),
            "intra_op_threads": intra_op_threads(),
            "load_average_1m_before": round(os.getloadavg()[0], 2),
        }
        paths = find_records([folder])
        signals = [keras_clf.prepare(read_record(p)) for p in paths]
        result["keras"], keras_probs = measure(keras_clf, paths, signals, args.repeats)
        result["onnx"], onnx_probs = measure(onnx_clf, paths, signals, args.repeats)
        result["speedup_network"] = round(result["onnx"]["network_records_per_s"] / result["keras"]["network_records_per_s"], 2)
        result["parity"] = {
            "max_abs_probability_difference": float(np.max(np.abs(onnx_probs - keras_probs))),
            "labels_differing": int(sum(a != b for a, b in zip(keras_clf.labels_from_proba(keras_probs), onnx_clf.labels_from_proba(onnx_probs)))),
        }
        if not args.skip_cli:
            result["end_to_end"] = side_by_side(folder, one, model.resolve(), len(paths), args.repeats)
        result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
        result["machine"] = {**machine(), "onnxruntime": onnxruntime.__version__}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.exit(main())
