"""`classify`'s engines (this process, or a Ray cluster) and its output tables (CSV to a file or standard output, or Parquet for `.parquet`).

A record longer than the networks' training length is answered from its AF episodes on either engine
(:mod:`ecgrhythm.episodes.answers`: its label follows them, and the table gives its AF burden and CPSC 2021 class).
"""

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

    `progress(done_s, total_s)` hears how far a long record read in pieces is (this process only). On both engines,
    records longer than the networks' training length are answered from their episodes
    (:class:`~ecgrhythm.episodes.answers.LongRecordAnswer`).

    Raises:
        common.UsageError: `--address`/`--workers` without `--engine ray`, or Ray is not installed.
    """
    if args.engine != "ray":
        if args.address or args.workers:
            raise common.UsageError("--address and --workers apply to --engine ray only: add --engine ray, or drop them")
        from ecgrhythm.episodes.answers import LongRecordAnswer
        from ecgrhythm.inference.streaming import iter_classify_files

        yield iter_classify_files(
            classifier, paths, fs=args.fs, lead=args.lead, progress=progress, long_records=LongRecordAnswer(classifier, common.episode_params(args))
        )
        return
    from ecgrhythm.episodes.answers import LongRecordAnswer
    from ecgrhythm.inference.ray_engine import iter_classify_ray, ray_cluster, require_ray

    try:
        require_ray()
    except ImportError as exc:
        raise common.UsageError(str(exc)) from None
    if not args.verbose:  # Ray Data reports each job's start and end at INFO, and that its progress bars are off
        os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    with ray_cluster(args.address, args.workers):
        load = functools.partial(common.load_classifier, args.model, args.backend)
        yield iter_classify_ray(
            load,
            paths,
            classifier.classes_,
            fs=args.fs,
            lead=args.lead,
            workers=args.workers,
            long_records=functools.partial(LongRecordAnswer, params=common.episode_params(args)),
        )


def is_parquet(out) -> bool:
    return str(out).lower().endswith(".parquet")


ANSWER_COLUMNS = ("af_burden", "record_class")  # of a record answered from its episodes; empty for the others


def write_csv(f, prediction, *, header: bool = True, classes=None) -> None:
    """CSV rows `record,label,lead,<one probability per class>,af_burden,record_class` of a prediction (or only the header).

    The first columns are :func:`common.write_rows`'; `af_burden` (4 decimals, as `episodes --summary` writes it)
    and `record_class` are those of a record answered from its episodes, empty for the others.
    """
    from ecgrhythm.utils.io import csv_writer

    classes = prediction.classes if prediction is not None else classes
    if header:
        csv_writer(f).writerow(["record", "label", "lead", *classes, *ANSWER_COLUMNS])
    if prediction is None:
        return
    rows = zip(prediction.names, prediction.labels, prediction.leads, prediction.probabilities, prediction.af_burden, prediction.record_class)
    csv_writer(f).writerows(
        [name, label, lead or "", *(f"{p:.6f}" for p in row), "" if burden is None else f"{burden:.4f}", kind or ""]
        for name, label, lead, row, burden, kind in rows
    )


@contextlib.contextmanager
def prediction_table(out, classes):
    """Write predictions to `out` atomically: CSV rows as :func:`write_csv`, or a Parquet table for a `.parquet` name;
    `out` None: CSV rows to standard output, as they come.

    Both have the columns `record`, `label`, `lead`, one probability per class (Parquet: float64, unrounded), then
    `af_burden` and `record_class`, empty (Parquet: null) for a record at or under the networks' training length.
    The header (schema) is written even when no record was classified.

    Yields:
        `write(prediction)`, to call once per chunk.

    Raises:
        common.UsageError: Parquet is asked for and pyarrow is not installed.
    """
    from ecgrhythm.utils.io import atomic_write

    classes = list(classes)
    if out is None:
        write_csv(sys.stdout, None, classes=classes)
        yield functools.partial(write_csv, sys.stdout, header=False)
        sys.stdout.flush()
        return
    if not is_parquet(out):
        with atomic_write(out, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
            write_csv(f, None, classes=classes)
            yield functools.partial(write_csv, f, header=False)
        return
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise common.UsageError(f"--output {out}: Parquet needs pyarrow (pip install 'ecgrhythm[ray]'), or write a .csv file") from None
    schema = pa.schema(
        [
            ("record", pa.string()),
            ("label", pa.string()),
            ("lead", pa.string()),
            *((c, pa.float64()) for c in classes),
            ("af_burden", pa.float64()),
            ("record_class", pa.string()),
        ]
    )

    def write(prediction):
        probs = prediction.probabilities.reshape(-1, len(classes))
        columns = [
            pa.array(prediction.names, pa.string()),
            pa.array(prediction.labels, pa.string()),
            pa.array([v or "" for v in prediction.leads], pa.string()),
        ]
        columns += [pa.array(probs[:, k], pa.float64()) for k in range(len(classes))]
        columns += [pa.array(prediction.af_burden, pa.float64()), pa.array(prediction.record_class, pa.string())]
        writer.write_table(pa.Table.from_arrays(columns, schema=schema))

    with atomic_write(out, "wb") as f, pq.ParquetWriter(f, schema) as writer:
        yield write
