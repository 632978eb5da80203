"""`ecgrhythm classify`: classify record files or folders into a CSV (or Parquet), here or on a Ray cluster, never replacing an input."""

from __future__ import annotations

import os
import time

from . import _common as common
from . import _engines as engines


def add_parser(sub):
    p = sub.add_parser(
        "classify",
        help="classify record files or folders into a CSV",
        description="Classify ECG records into rhythm classes. Writes one CSV row per readable record: "
        "record, label, lead (the lead a single-lead model took), then one probability column per class. "
        "WFDB records over an hour are read in pieces (up to 14 days). A bad file is reported on stderr and skipped; "
        "the exit status is 1 if any record failed, 0 if none did. @FILE reads arguments from FILE, one per line (a list of record paths).",
        fromfile_prefix_chars="@",
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a record file (.hea, .mat, .csv, .npy), a folder of records, or @FILE: a text file of such paths, one a line",
    )
    p.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="FILE.csv",
        help="CSV file to write (replaced atomically); a name ending in .parquet writes a Parquet table with the same columns (needs pyarrow)",
    )
    p.add_argument(
        "--model",
        metavar="MODEL",
        help="model folder, or a .onnx file from 'ecgrhythm export' (runs with onnxruntime alone); default: the shipped models/cinc2017",
    )
    p.add_argument("--fs", type=common.sampling_rate, metavar="HZ", help="sampling rate of files without a header (.mat, .csv, .npy)")
    engines.add_arguments(p)
    common.add_lead_argument(p)


def run(args):
    from pathlib import Path

    out = Path(args.output)
    if out.is_dir():
        raise common.UsageError(f"--output {out} is a folder; pass a CSV file name such as {out / 'predictions.csv'}")
    paths, failed = common.gather_records("classify", args.paths)
    paths = _refuse_inputs_as_output(out, args.paths, paths)
    if not paths and not failed:
        raise common.no_records(args.paths)
    clf = common.load_classifier(args.model)
    common.check_lead(clf, args.lead)
    done = 0
    with engines.prediction_table(out, clf.classes_) as write, engines.batches(args, clf, paths) as chunks:
        for prediction, bad in chunks:
            for path, reason in bad:
                common.failure("classify", path, reason)
            failed += len(bad)
            write(prediction)
            done += len(prediction.names)
    seconds = time.perf_counter() - args.started
    print(f"classified {done} records in {seconds:.1f} s ({done / seconds:.1f} records/s); {failed} failed; wrote {out}")
    return 1 if failed else 0


def _refuse_inputs_as_output(out, given, records):
    """The records to read, less an earlier output of ours at `out`; refuses an `out` the run reads.

    Protected: every file directly in a given folder (records, their signal
    files, `RECORDS`, label tables) and, for records elsewhere, the record
    file, the header beside a signal file, and the signal files a header
    names. Files are compared by identity (device and inode), so a link to an
    input or a second name of it is refused too. An `out` that does not exist
    yet, or is not a regular file (`/dev/null`), replaces nothing read.

    Raises:
        common.UsageError: `out` is one of those files.
    """
    import stat
    from pathlib import Path

    from ..records import record_files

    try:
        target = os.stat(out)
    except OSError:
        return records
    if not stat.S_ISREG(target.st_mode):
        return records

    def is_out(path):
        return _identity(path) == (target.st_dev, target.st_ino)

    ours = _is_our_csv(out)
    kept = [p for p in records if not (ours and is_out(p))]  # an earlier output is not a record
    folders = [Path(g) for g in given if Path(g).is_dir()]
    for folder in [] if ours else folders:
        if any(map(is_out, folder.iterdir())):
            raise common.UsageError(
                f"--output {out} would replace a file of the input folder {folder} (records, signal files, RECORDS, labels): "
                "write the CSV to a new file or outside the folder"
            )
    for record in (r for r in kept if r.parent not in folders):
        read = record_files(record)
        if any(map(is_out, read)):
            raise common.UsageError(
                f"--output {out} would replace {next(filter(is_out, read))}, a file this run reads (record {record}): write the CSV elsewhere"
            )
    return kept


def _identity(path):
    """`(device, inode)` of an existing file (through links), else None."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _is_our_csv(path) -> bool:
    """Whether `path` begins like a CSV that classify or evaluate writes."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline(100).startswith("record,label,")
    except OSError:
        return False
