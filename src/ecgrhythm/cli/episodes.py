"""`ecgrhythm episodes`: AF episodes, AF burden and record class of long records."""

from __future__ import annotations

import time

import ecgrhythm.cli.common as common
import ecgrhythm.cli.outputs as outputs


def add_parser(sub):
    p = sub.add_parser(
        "episodes",
        help="AF episodes, AF burden and record class of long records into CSVs",
        description="Find the rhythm episodes of ECG records with overlapping windows, a hidden Markov model and R peaks. "
        "Writes one row per episode (record, lead, start_s, end_s, label, probability), to standard output or to --output; "
        "the episodes of a record cover it from start to end, and agree with the label 'ecgrhythm classify' gives it; a record over 65 s "
        "with several leads and no --lead has its lead chosen per 10-minute stretch by signal quality, and each episode names its lead. --summary adds one row per record: duration, AF burden, "
        "AF episodes, the longest, and the CPSC 2021 record class (non-AF, paroxysmal, persistent). Status lines, warnings "
        "and, on a terminal, progress bars (records, and hours of signal of a long record) go to standard error. "
        "WFDB records over an hour are read in pieces "
        "(up to 14 days). A bad file is reported on stderr and skipped; the exit status is 1 if any record failed, 0 if none did.",
    )
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="a record file (.hea, .edf, .bdf, .mat, .csv, .npy), a WFDB record name (DIR/data_101_6 for DIR/data_101_6.hea) or a folder of records",
    )
    p.add_argument("--output", "-o", metavar="FILE.csv", help="episode CSV to write (replaced atomically); '-' or none: to standard output")
    p.add_argument(
        "--summary",
        metavar="FILE.csv",
        help="per-record summary CSV to write (replaced atomically); '-': to standard output, when --output names a file",
    )
    p.add_argument("--model", metavar="MODEL_DIR", help="single-lead model folder with an A class (default: the shipped models/cinc2017)")
    common.add_backend_argument(p)
    common.add_lead_argument(p)
    common.add_episode_method_argument(p)
    common.add_strict_checks_argument(p)
    p.add_argument("--fs", type=common.sampling_rate, metavar="HZ", help="sampling rate of files without a header (.mat, .csv, .npy)")
    p.add_argument(
        "--plot",
        metavar="DIR",
        help="draw one picture per record into DIR (made if missing) as RECORD.png: the rhythm over the whole recording "
        "(clock times when the file gives its start), AF burden and episodes, the lead, the noisy stretches, and 8 s of ECG "
        "at the start of the longest AF episode; a PNG of that name that ecgrhythm did not draw is never replaced",
    )


def run(args):
    import sys

    from ecgrhythm.cli.progress import Bars
    from ecgrhythm.episodes.files import iter_file_episodes, write_episodes, write_summary

    common.check_model(args.model)
    episodes_out, summary_out = _outputs(args)
    targets = {flag: out for flag, out in (("--output", episodes_out), ("--summary", summary_out)) if out is not None}
    paths, failed = common.gather_records("episodes", args.paths)
    for flag, out in targets.items():
        paths = outputs.refuse_inputs_as_output(out, args.paths, paths, flag)
    if not paths:
        if not failed:
            raise common.no_records(args.paths)
        common.status(f"found the episodes of no records; {failed} failed; nothing written")
        return 1
    plot_dir = _plot_folder(args.plot)
    clf = common.load_classifier(args.model, args.backend)
    clf.require_whole_records("ecgrhythm episodes")
    bad = []
    with Bars(len(paths), "episodes") as bars, common.record_checks("episodes", args.strict_checks):

        def report(path, reason):
            common.failure("episodes", path, reason)
            bad.append(path)
            bars.records_done()

        results, drawn = [], []
        for path, found in iter_file_episodes(
            clf, paths, fs=args.fs, lead=args.lead, params=common.episode_params(args), on_failure=report, progress=bars.signal_done, paired=True
        ):
            results.append(found)
            if plot_dir is not None and not _draw(found, path, plot_dir, args.fs, drawn):
                bad.append(path)
            bars.records_done()
    failed += len(bad)
    write_episodes(results, episodes_out or sys.stdout)
    wrote = [str(episodes_out or "the episodes to standard output")]
    if args.summary:
        write_summary(results, summary_out or sys.stdout)
        wrote.append(str(summary_out or "the summary to standard output"))
    if plot_dir is not None:
        wrote.append(f"{len(drawn)} picture{'' if len(drawn) == 1 else 's'} into {plot_dir}")
    seconds = time.perf_counter() - args.started
    common.status(
        f"found the episodes of {len(results)} record{'' if len(results) == 1 else 's'} in {seconds:.1f} s; {failed} failed; wrote {' and '.join(wrote)}"
    )
    return 1 if failed else 0


def _plot_folder(given):
    """The folder of `--plot` (made now, before the model loads), or None without the option.

    Raises:
        common.UsageError: it is a file, or cannot be made.
    """
    from pathlib import Path

    if given is None:
        return None
    folder = Path(given)
    if folder.exists() and not folder.is_dir():
        raise common.UsageError(f"--plot {folder} is a file: give a folder for the pictures (made if missing)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise common.UsageError(f"--plot {folder}: cannot make the folder ({exc.strerror or exc})") from None
    return folder


def _draw(found, path, folder, fs, drawn) -> bool:
    """Draw the picture of one record into `folder`, adding its file to `drawn`; a failure is reported and fails alone."""
    from ecgrhythm.cli.progress import write
    from ecgrhythm.episodes.plot import write_plot
    from ecgrhythm.records import failure_reason

    try:
        drawn.append(write_plot(found, path, folder, fs=fs, taken={p.name for p in drawn}))
    except Exception as exc:  # a picture that fails fails alone: the episodes are written still
        write(common.one_line(f"ecgrhythm episodes: cannot draw {path}: {failure_reason(exc)}"))
        return False
    return True


def _outputs(args):
    """`(episodes file, summary file)` of `--output` and `--summary`, None for standard output (and for no --summary).

    Raises:
        common.UsageError: both go to standard output, one is a folder, or they are the same file.
    """
    episodes_out = common.output_file(args.output)
    summary_out = None if args.summary is None else common.output_file(args.summary)
    if episodes_out is None and args.summary == common.STDOUT:
        raise common.UsageError("--output and --summary both go to standard output: give one of them a file name (--output FILE.csv)")
    for out in (episodes_out, summary_out):
        if out is not None and out.is_dir():
            raise common.UsageError(f"{out} is a folder; pass a CSV file name such as {out / 'episodes.csv'}")
    if episodes_out is not None and summary_out is not None and episodes_out.resolve() == summary_out.resolve():
        raise common.UsageError(f"--output and --summary are both {episodes_out}: give them two different file names")
    return episodes_out, summary_out
