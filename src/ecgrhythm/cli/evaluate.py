"""`ecgrhythm evaluate`: score a model on a labelled folder (rhythm labels or AF episodes)."""

from __future__ import annotations

import os
import sys

import ecgrhythm.cli.common as common
import ecgrhythm.cli.outputs as outputs


def add_parser(sub):
    p = sub.add_parser(
        "evaluate",
        help="score a model on a labelled folder (CinC 2017 score)",
        description="Classify the labelled records of a folder (REFERENCE.csv) and report the CinC 2017 score, "
        "per-class F1, the confusion matrix and the top-class calibration error (ECE, 15 bins, with a reliability diagram). "
        "Records the model was trained on (split.json in the model folder, or the split in an ONNX file's metadata) "
        "are left out unless --all-records is given, "
        "so the default score is a held-out score. The exit status is 1 if some labelled records could not be scored "
        "(the outputs are still written, without them), 2 if none could.",
    )
    p.add_argument("--data", metavar="DIR", help="folder with records and REFERENCE.csv (default: the shared CinC 2017 data)")
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder or .onnx file (default: the shipped models/cinc2017)")
    common.add_backend_argument(p)
    p.add_argument(
        "--output",
        metavar="DIR",
        default=os.path.join("runs", "evaluate"),
        help="folder for evaluation.json, evaluation.png and predictions.csv (default: %(default)s)",
    )
    p.add_argument(
        "--all-records", action="store_true", help="also score the records the model was trained on (the score is then not a held-out score)"
    )
    p.add_argument(
        "--task",
        choices=["rhythm", "episodes"],
        default="rhythm",
        help="rhythm: one label per record (default); episodes: AF episodes against .atr rhythm annotations "
        "(CPSC 2021 score, AF burden error, episode sensitivity and precision; default data: the cpsc2021 sample)",
    )
    common.add_lead_argument(p)
    common.add_episode_method_argument(p)


def _run_episodes_task(args):
    from ecgrhythm.evaluation.episodes import (
        evaluate_episodes_folder,
        format_episode_report,
        write_episode_report,
    )

    data = common.data_dir(args.data, "cpsc2021-sample", holding="WFDB records with .atr rhythm annotations")
    _check_output(args.output, data, args.model, [])
    clf = common.load_classifier(args.model, args.backend)
    common.check_lead(clf, args.lead)
    report = evaluate_episodes_folder(
        clf, data, lead=args.lead, params=common.episode_params(args), on_failure=lambda path, reason: common.failure("evaluate", path, reason)
    )
    print(f"model: {report.info['model']}")
    print(f"data: {data} ({report.overall['n_records']} annotated records scored, {report.info['failed_records']} could not be scored)")
    print()
    print(format_episode_report(report))
    print()
    paths = write_episode_report(report, args.output)
    common.status(f"wrote {paths['json']} and {paths['figure']}")
    if report.info["failed_records"]:
        print(f"ecgrhythm evaluate: {report.info['failed_records']} annotated records could not be scored (reasons above)", file=sys.stderr)
        return 1
    return 0


def _check_output(out, data, model, written):
    """Refuse an `--output` that is the data folder or the model's folder (`--model`, None for the shipped one), or whose
    files we would write are someone else's: checked before the model loads."""
    from ecgrhythm.inference.backend import default_model_dir

    common.check_model(model)
    outputs.refuse_input_folder_as_output(out, {"data folder": data, "model folder": model or default_model_dir()}, written)


def run(args):
    from pathlib import Path

    from ecgrhythm.evaluation.reports import format_report, write_report
    from ecgrhythm.evaluation.rhythm import evaluate_folder
    from ecgrhythm.utils.io import atomic_write

    if args.task == "episodes":
        return _run_episodes_task(args)
    data = common.data_dir(args.data)
    _check_output(args.output, data, args.model, ["predictions.csv"])
    clf = common.load_classifier(args.model, args.backend)
    common.check_lead(clf, args.lead)
    report, prediction, truth = evaluate_folder(
        clf, data, exclude_training=not args.all_records, lead=args.lead, on_failure=lambda path, reason: common.failure("evaluate", path, reason)
    )
    info = report.info
    print(f"model: {info['model']}")
    print(f"data: {info['data']} ({info['labelled_records']} labelled records)")
    print(_what_was_scored(report, clf.split_source, args.all_records))
    print()
    print(format_report(report))
    print()
    paths = write_report(report, args.output)
    csv_path = Path(args.output) / "predictions.csv"
    with atomic_write(csv_path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        common.write_rows(f, prediction, truth=truth)
    common.status(f"wrote {paths['json']}, {paths['figure']} and {csv_path}")
    if info["failed_records"]:
        print(
            f"ecgrhythm evaluate: {info['failed_records']} labelled records could not be scored (reasons above); the score leaves them out",
            file=sys.stderr,
        )
        return 1
    return 0


def _what_was_scored(report, split_source: str, all_records: bool) -> str:
    """The line that says which records were scored, and whether the score is a held-out score.

    Where the score is not held out without `--all-records` asking for it, :func:`~ecgrhythm.evaluation.rhythm.evaluate_folder`
    has already warned so (on standard error), and the line only says what was scored: the warning is given once.
    """
    info = report.info
    failed = f"({info['failed_records']} could not be scored)"
    if info["held_out"]:
        return (
            f"excluded {info['excluded_training_records']} records the model was trained on ({split_source}); "
            f"scored {report.n_records} held-out records {failed}"
        )
    if info["all_records_trained"]:
        return f"scored {report.n_records} records, every one of which the model was trained on {failed}"
    if all_records:
        return f"scored {report.n_records} records, including any the model was trained on (--all-records): NOT a held-out score {failed}"
    return f"scored {report.n_records} records, including any the model was trained on ({info['model']} has no {split_source}) {failed}"
