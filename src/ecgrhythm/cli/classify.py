"""`ecgrhythm classify`: classify record files or folders into a CSV (standard output, a file, or Parquet), here or on a Ray cluster, never replacing an input."""

from __future__ import annotations

import time

import ecgrhythm.cli._engines as engines
import ecgrhythm.cli.common as common
import ecgrhythm.cli.outputs as outputs


def add_parser(sub):
    p = sub.add_parser(
        "classify",
        help="classify record files or folders into a CSV",
        description="Classify ECG records into rhythm classes. Writes one CSV row per readable record, to standard output "
        "or to --output: record, label, lead (the lead a single-lead model took), one probability column per class, then "
        "af_burden and record_class (non-AF, paroxysmal or persistent) for records longer than the networks' training length, "
        "whose label then follows their AF episodes (A when they hold AF), as 'ecgrhythm episodes' finds them. "
        "Status lines, warnings and, on a terminal, a progress bar go to standard error. "
        "WFDB records over an hour are read in pieces (up to 14 days). A bad file is reported on stderr and skipped; "
        "the exit status is 1 if any record failed, 0 if none did. @FILE reads arguments from FILE, one per line (a list of record paths).",
        fromfile_prefix_chars="@",
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a record file (.hea, .edf, .bdf, .mat, .csv, .npy), a WFDB record name (DIR/A00005 for DIR/A00005.hea), a folder of records, "
        "or @FILE: a text file of such paths, one a line",
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE.csv",
        help="CSV file to write (replaced atomically); a name ending in .parquet writes a Parquet table with the same columns "
        "(needs pyarrow); '-' or none: the CSV to standard output",
    )
    p.add_argument(
        "--model",
        metavar="MODEL",
        help="model folder, or a .onnx file from 'ecgrhythm export' (runs with onnxruntime alone); default: the shipped models/cinc2017",
    )
    p.add_argument("--fs", type=common.sampling_rate, metavar="HZ", help="sampling rate of files without a header (.mat, .csv, .npy)")
    engines.add_arguments(p)
    common.add_backend_argument(p)
    common.add_lead_argument(p)
    common.add_episode_method_argument(p)
    common.add_strict_checks_argument(p)


def run(args):
    from ecgrhythm.cli.progress import Bars

    common.check_model(args.model)
    out = common.output_file(args.output)
    if out is not None and out.is_dir():
        raise common.UsageError(f"--output {out} is a folder; pass a CSV file name such as {out / 'predictions.csv'}")
    paths, failed = common.gather_records("classify", args.paths)
    if out is not None:
        paths = outputs.refuse_inputs_as_output(out, args.paths, paths)
    if not paths:
        if not failed:
            raise common.no_records(args.paths)
        common.status(f"classified no records; {failed} failed; nothing written")
        return 1
    clf = common.load_classifier(args.model, args.backend)
    common.check_lead(clf, args.lead)
    done = 0
    with (
        common.record_checks("classify", args.strict_checks),  # first in, last out: the reader thread warns until it stops
        Bars(len(paths), "classify") as bars,
        engines.prediction_table(out, clf.classes_) as write,
        engines.batches(args, clf, paths, progress=bars.signal_done) as chunks,
    ):
        for prediction, bad in chunks:
            for path, reason in bad:
                common.failure("classify", path, reason)
            failed += len(bad)
            write(prediction)
            done += len(prediction.names)
            bars.records_done(len(prediction.names) + len(bad))
    seconds = time.perf_counter() - args.started
    wrote = "the CSV to standard output" if out is None else out
    common.status(
        f"classified {done} record{'' if done == 1 else 's'} in {seconds:.1f} s ({done / seconds:.1f} records/s); {failed} failed; wrote {wrote}"
    )
    return 1 if failed else 0
