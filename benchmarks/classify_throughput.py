"""Classification throughput (records per second), with and without start-up.

(a) end to end: one `ecgrhythm classify TMP --model MODEL` subprocess over a
    temporary folder linking the first N records: interpreter start, imports,
    model loading, compilation, reading and classifying, all included; with the
    CPU seconds the command used (user + system over its threads and the processes
    it waited for: not a Ray cluster's workers), which other work on a shared
    machine changes less than the wall time.
(b) in process: the model is loaded once and `classify_files` is run once over
    the same records to compile every bucket shape, then timed over them again
    (`--repeats` times): reading, preprocessing and inference only.

Prints one JSON line; `--output FILE.json` also writes it to a file.

Example:
    python benchmarks/classify_throughput.py --data ../shared/data/cinc2017 --model models/cinc2017 --n 1279
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import data_and_model, emit, fail, machine, records_parser

SIDECAR_SUFFIXES = (".hea", ".mat", ".dat")


def link_records(records: list[Path], folder: Path) -> None:
    """Symlink each record file (and the signal files beside a header) into `folder`."""
    for record in records:
        for path in {record, *(record.with_suffix(s) for s in SIDECAR_SUFFIXES)}:
            if path.is_file():
                (folder / path.name).symlink_to(path.resolve())


def warm_page_cache(folder: Path) -> None:
    """Read every file once so that neither measurement pays for a cold disk."""
    for path in folder.iterdir():
        path.read_bytes()


def cli_command() -> list[str]:
    """The installed `ecgrhythm` command beside this interpreter, else `python -m ecgrhythm.cli`."""
    script = Path(sys.executable).with_name("ecgrhythm")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "ecgrhythm.cli"]


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes of this one, so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def end_to_end(folder: Path, model: Path, n: int, extra: list[str]) -> dict:
    output = folder.with_name(folder.name + ".csv")
    command = [*cli_command(), "classify", str(folder), "--model", str(model), "--output", str(output), *extra]
    t0, cpu0 = time.perf_counter(), _children_cpu_s()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds, cpu_seconds = time.perf_counter() - t0, _children_cpu_s() - cpu0
    output.unlink(missing_ok=True)
    if done.returncode != 0:
        fail(f"{' '.join(command)} exited with {done.returncode}: {done.stderr.strip()[-2000:]} (use --skip-cli to measure in process only)")
    command[command.index(str(folder))] = "TMP"
    command[command.index(str(output))] = "TMP.csv"
    return {"command": command, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3), "records_per_s": round(n / seconds, 2)}


def in_process(folder: Path, model: Path, repeats: int) -> dict:
    t0 = time.perf_counter()
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.inference.streaming import classify_files
    from ecgrhythm.records import find_records

    t1 = time.perf_counter()
    clf = RhythmClassifier.load(model)
    t2 = time.perf_counter()
    paths = find_records([folder])
    prediction, failures = classify_files(clf, paths)  # warm-up: compiles every bucket shape these records use
    t3 = time.perf_counter()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        classify_files(clf, paths)
        times.append(time.perf_counter() - start)
    best, median = min(times), statistics.median(times)
    return {
        "import_s": round(t1 - t0, 3),
        "load_s": round(t2 - t1, 3),
        "warmup_s": round(t3 - t2, 3),
        "seconds": [round(t, 3) for t in times],
        "records_per_s": round(len(paths) / median, 2),
        "records_per_s_best": round(len(paths) / best, 2),
        "classified": len(prediction.names),
        "failures": len(failures),
        "model_fs": clf.preprocess_.fs,
        "buckets": [int(b) for b in clf.buckets_],
    }


def main(argv=None) -> int:
    parser = records_parser(__doc__, repeats=3, repeats_help="timed in-process passes after the warm-up")
    parser.add_argument("--skip-cli", action="store_true", help="skip the end-to-end subprocess measurement")
    parser.add_argument("--cli-arg", action="append", default=[], metavar="ARG", help="extra argument for `ecgrhythm classify` (repeatable)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        fail("--n and --repeats must be positive integers")
    data, model = data_and_model(args.data, args.model)

    from ecgrhythm.records import find_records

    records = find_records([data])[: args.n]
    tmp = Path(tempfile.mkdtemp(prefix="ecgrhythm-bench-"))
    try:
        link_records(records, tmp)
        warm_page_cache(tmp)
        result = {"benchmark": "classify_throughput", "data": str(data.resolve()), "model": str(model.resolve()), "n_records": len(records)}
        result["end_to_end"] = None if args.skip_cli else end_to_end(tmp, model.resolve(), len(records), args.cli_arg)
        result["in_process"] = in_process(tmp, model.resolve(), args.repeats)
        result["machine"] = machine()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.exit(main())
