"""`classify`'s engines (this process, or a Ray cluster) and its output tables (CSV to a file or standard output, or Parquet for `.parquet`)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys

import ecgrhythm.cli.common as common

ENGINES = ("local", "ray")


def add_arguments(p) -> None:
    """`--engine`, `--address` and `--workers` of `classify`."""
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="classify in this process (default), or on a Ray cluster with Ray Data (needs the ray extra: pip install 'ecgrhythm[ray]')",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="--engine ray: the cluster to join (HOST:PORT from 'ray start --head', or auto); default: start a local cluster in this process",
    )
    p.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="--engine ray: actors classifying in parallel, each with the model loaded once (default: the cluster's CPUs)",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


@contextlib.contextmanager
def batches(args, classifier, paths, progress=None):
    """Yield the iterator of `(prediction, failures)` per chunk of `args.engine` over `paths`.

    `progress(done_s, total_s)` hears how far a long record read in pieces is (this process only).

    Raises:
        common.UsageError: `--address`/`--workers` without `--engine ray`, or Ray is not installed.
    """
    if args.engine != "ray":
        if args.address or args.workers:
            raise common.UsageError("--address and --workers apply to --engine ray only: add --engine ray, or drop them")
        from ecgrhythm.inference.streaming import iter_classify_files

        yield iter_classify_files(classifier, paths, fs=args.fs, lead=args.lead, progress=progress)
        return
    from ecgrhythm.inference.ray_engine import iter_classify_ray, ray_cluster, require_ray

    try:
        require_ray()
    except ImportError as exc:
        raise common.UsageError(str(exc)) from None
    if not args.verbose:  # Ray Data reports each job's start and end at INFO, and that its progress bars are off
        os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    with ray_cluster(args.address, args.workers):
        load = functools.partial(common.load_classifier, args.model)
        yield iter_classify_ray(load, paths, classifier.classes_, fs=args.fs, lead=args.lead, workers=args.workers)


def is_parquet(out) -> bool:
    return str(out).lower().endswith(".parquet")


@contextlib.contextmanager
def prediction_table(out, classes):
    """Write predictions to `out` atomically: CSV rows as :func:`common.write_rows`, or a Parquet table for a `.parquet` name;
    `out` None: CSV rows to standard output, as they come.

    Both have the columns `record`, `label`, `lead` and one probability per class
    (Parquet: float64, unrounded). The header (schema) is written even when no
    record was classified.

    Yields:
        `write(prediction)`, to call once per chunk.

    Raises:
        common.UsageError: Parquet is asked for and pyarrow is not installed.
    """
    from ecgrhythm.utils.io import atomic_write

    classes = list(classes)
    if out is None:
        common.write_rows(sys.stdout, None, classes=classes)
        yield functools.partial(common.write_rows, sys.stdout, header=False)
        sys.stdout.flush()
        return
    if not is_parquet(out):
        with atomic_write(out, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
            common.write_rows(f, None, classes=classes)
            yield functools.partial(common.write_rows, f, header=False)
        return
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise common.UsageError(f"--output {out}: Parquet needs pyarrow (pip install 'ecgrhythm[ray]'), or write a .csv file") from None
    schema = pa.schema([("record", pa.string()), ("label", pa.string()), ("lead", pa.string()), *((c, pa.float64()) for c in classes)])

    def write(prediction):
        probs = prediction.probabilities.reshape(-1, len(classes))
        columns = [
            pa.array(prediction.names, pa.string()),
            pa.array(prediction.labels, pa.string()),
            pa.array([v or "" for v in prediction.leads], pa.string()),
        ]
        columns += [pa.array(probs[:, k], pa.float64()) for k in range(len(classes))]
        writer.write_table(pa.Table.from_arrays(columns, schema=schema))

    with atomic_write(out, "wb") as f, pq.ParquetWriter(f, schema) as writer:
        yield write
