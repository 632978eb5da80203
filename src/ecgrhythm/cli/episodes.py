"""`ecgrhythm episodes`: AF episodes, AF burden and record class of long records."""

from __future__ import annotations

import time

import ecgrhythm.cli.common as common


def add_parser(sub):
    p = sub.add_parser(
        "episodes",
        help="AF episodes, AF burden and record class of long records into CSVs",
        description="Find the rhythm episodes of ECG records with overlapping windows, a hidden Markov model and R peaks. "
        "Writes one row per episode (record, lead, start_s, end_s, label, probability); the episodes of a record cover it "
        "from start to end. --summary adds one row per record: duration, AF burden, AF episodes, the longest, and the "
        "CPSC 2021 record class (non-AF, paroxysmal, persistent). WFDB records over an hour are read in pieces "
        "(up to 14 days). A bad file is reported on stderr and skipped; the exit status is 1 if any record failed, 0 if none did.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="a record file (.hea, .mat, .csv, .npy) or a folder of records")
    p.add_argument("--output", "-o", required=True, metavar="FILE.csv", help="episode CSV to write (replaced atomically)")
    p.add_argument("--summary", metavar="FILE.csv", help="per-record summary CSV to write (replaced atomically)")
    p.add_argument("--model", metavar="MODEL_DIR", help="single-lead model folder with an A class (default: the shipped models/cinc2017)")
    common.add_lead_argument(p)
    p.add_argument("--fs", type=common.sampling_rate, metavar="HZ", help="sampling rate of files without a header (.mat, .csv, .npy)")


def run(args):
    from pathlib import Path

    from ecgrhythm.episodes.files import iter_file_episodes, write_episodes, write_summary

    outputs = [Path(f) for f in (args.output, args.summary) if f]
    for out in outputs:
        if out.is_dir():
            raise common.UsageError(f"{out} is a folder; pass a CSV file name such as {out / 'episodes.csv'}")
    if len(outputs) == 2 and outputs[0].resolve() == outputs[1].resolve():
        raise common.UsageError(f"--output and --summary are both {outputs[0]}: give them two different file names")
    paths, failed = common.gather_records("episodes", args.paths)
    for out, flag in zip(outputs, ("--output", "--summary")):
        paths = common.refuse_inputs_as_output(out, args.paths, paths, flag)
    if not paths and not failed:
        raise common.no_records(args.paths)
    clf = common.load_classifier(args.model)
    clf.require_whole_records("ecgrhythm episodes")
    bad = []

    def report(path, reason):
        common.failure("episodes", path, reason)
        bad.append(path)

    results = list(iter_file_episodes(clf, paths, fs=args.fs, lead=args.lead, on_failure=report))
    failed += len(bad)
    write_episodes(results, args.output)
    if args.summary:
        write_summary(results, args.summary)
    seconds = time.perf_counter() - args.started
    wrote = " and ".join(str(o) for o in outputs)
    print(f"found the episodes of {len(results)} records in {seconds:.1f} s; {failed} failed; wrote {wrote}")
    return 1 if failed else 0
