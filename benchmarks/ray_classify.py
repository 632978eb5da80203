"""Classification throughput (records per second) of `--engine ray` against the local engine, 1 to W workers.

For the local engine and for Ray with each worker count:
(a) end to end: one `ecgrhythm classify TMP [--engine ray --workers W]`
    subprocess over a temporary folder linking the first N records: start-up
    (interpreter, imports, model loading, compilation; for Ray the cluster
    and its actors too), reading and classifying, all included.
(b) start-up excluded. Local: the model loaded and every bucket shape
    compiled by a first pass, then one timed pass. Ray: the cluster started
    (`cluster_start_s`), one job run to fill the compilation cache, then a
    job of one record per worker (`job_overhead_s`: each job's actors start
    and load the model) and a job of all N records in the running cluster
    (`job_s`); `records_per_s_without_overhead` is N / (`job_s` - `job_overhead_s`).

Prints one JSON line; `--output FILE.json` also writes it to a file.

Example:
    python benchmarks/ray_classify.py --data ../shared/data/cinc2017 --model models/cinc2017 --n 300 --workers 1 2
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import data_and_model, emit, fail, machine, records_parser
from classify_throughput import end_to_end, in_process, link_records, warm_page_cache


def _load_as_the_command_does(model: str):
    """What each Ray actor of `ecgrhythm classify --engine ray` loads: the compilation cache on for Keras, then the model."""
    from ecgrhythm.inference.backend import is_onnx_file
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.inference.compile_cache import enable_compilation_cache

    if not is_onnx_file(model):
        enable_compilation_cache()
    return RhythmClassifier.load(model)


def ray_in_process(folder: Path, model: Path, workers: int, batch_records: int | None) -> dict:
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.inference.ray_engine import iter_classify_ray, ray_cluster
    from ecgrhythm.records import find_records

    paths = find_records([folder])
    classes = RhythmClassifier.load(model).classes_
    load = functools.partial(_load_as_the_command_does, str(model))
    batch = {} if batch_records is None else {"batch_records": batch_records}

    def job(some):
        return sum(len(p.names) for p, _ in iter_classify_ray(load, some, classes, workers=workers, **batch))

    t0 = time.perf_counter()
    with ray_cluster(workers=workers):
        t1 = time.perf_counter()
        job(paths)  # fills the compilation cache
        t2 = time.perf_counter()
        job(paths[:workers])
        t3 = time.perf_counter()
        done = job(paths)
        t4 = time.perf_counter()
    work = (t4 - t3) - (t3 - t2)
    return {
        "cluster_start_s": round(t1 - t0, 3),
        "first_job_s": round(t2 - t1, 3),
        "job_overhead_s": round(t3 - t2, 3),
        "job_s": round(t4 - t3, 3),
        "records_per_s": round(len(paths) / (t4 - t3), 2),
        "records_per_s_without_overhead": round(len(paths) / work, 2) if work > 0 else None,
        "classified": done,
    }


def main(argv=None) -> int:
    parser = records_parser(__doc__, n=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to measure (default: 1 2)")
    parser.add_argument("--batch-records", type=int, help="records per actor call in the in-process Ray runs (default: the engine's, as the command)")
    args = parser.parse_args(argv)
    if args.n < 1 or (args.batch_records or 1) < 1 or min(args.workers) < 1:
        fail("--n, --batch-records and --workers must be positive integers")
    data, model = data_and_model(args.data, args.model)

    from ecgrhythm.records import find_records

    records = find_records([data])[: args.n]
    tmp = Path(tempfile.mkdtemp(prefix="ecgrhythm-bench-"))
    try:
        link_records(records, tmp)
        warm_page_cache(tmp)
        result = {"benchmark": "ray_classify", "data": str(data.resolve()), "model": str(model), "n_records": len(records)}
        result["local"] = {"end_to_end": end_to_end(tmp, model, len(records), []), "in_process": in_process(tmp, model, 1)}
        result["ray"] = {
            str(w): {
                "end_to_end": end_to_end(tmp, model, len(records), ["--engine", "ray", "--workers", str(w)]),
                "in_process": ray_in_process(tmp, model, w, args.batch_records),
            }
            for w in args.workers
        }
        result["machine"] = machine()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.exit(main())
