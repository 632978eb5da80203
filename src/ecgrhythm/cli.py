"""The `ecgrhythm` command: train, evaluate, classify, download, serve, study.

The CLI only parses arguments, builds configs and calls the library; errors
reach the user as one line, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import time

__all__ = ["main"]

logger = logging.getLogger("ecgrhythm")


def _add_train(sub):
    from .config import ModelConfig, PreprocessConfig, TrainConfig

    p = sub.add_parser("train", help="train a model on a labelled folder")
    p.add_argument("--data", help="folder of labelled records: REFERENCE.csv (one label each) or SNOMED-CT 'Dx:' codes in the headers (several); default: the shared CinC 2017 data")
    p.add_argument("--output", required=True, help="model folder to write")
    p.add_argument("--labels", choices=["auto", "reference", "header"], default="auto", help="label source (default: REFERENCE.csv if the folder has one, else header codes)")
    p.add_argument("--classes", default=None, help="header codes: 'all' (default), 'scored', or a comma-separated list of abbreviations or codes; REFERENCE.csv: the label set (default N,A,O,~)")
    p.add_argument("--unlabelled", choices=["drop", "keep"], default="drop", help="header codes: leave out records with none of the classes (default) or keep them as all-negative")
    p.add_argument("--leads", default=None, help="comma-separated lead names to use (default: every lead of the first record)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUTPUT/checkpoint")
    p.add_argument("--limit", type=int, help="use only the first N labelled records (quick runs)")
    t, m, q = TrainConfig(), ModelConfig(), PreprocessConfig()
    p.add_argument("--epochs", type=int, default=t.epochs)
    p.add_argument("--batch-size", type=int, default=t.batch_size)
    p.add_argument("--window", type=float, default=t.window_s, help="training window in seconds (default %(default)s)")
    p.add_argument("--learning-rate", type=float, default=t.learning_rate)
    p.add_argument("--patience", type=int, default=t.patience)
    p.add_argument("--val-fraction", type=float, default=t.val_fraction)
    p.add_argument("--class-weighting", choices=["balanced", "none"], default=t.class_weighting)
    p.add_argument("--seed", type=int, default=t.seed)
    p.add_argument("--fs", type=float, default=q.fs, help="model sampling rate in Hz (default %(default)s)")
    p.add_argument("--normalization", choices=["zscore", "minmax", "robust", "none"], default=q.normalization)
    band = p.add_mutually_exclusive_group()
    band.add_argument("--bandpass", type=float, nargs=2, metavar=("LOW", "HIGH"), default=q.bandpass,
                      help="band-pass filter in Hz (default: %(default)s)")
    band.add_argument("--no-bandpass", dest="bandpass", action="store_const", const=None, help="no band-pass filter")
    p.add_argument("--conv-filters", default=",".join(map(str, m.conv_filters)), help="filters per conv block, comma-separated")
    p.add_argument("--conv-kernel", type=int, default=m.conv_kernel)
    p.add_argument("--lstm-layers", type=int, default=m.lstm_layers)
    p.add_argument("--lstm-units", type=int, default=m.lstm_units)
    p.add_argument("--unidirectional", action="store_true", help="one-directional LSTM layers")
    p.add_argument("--dropout", type=float, default=m.dropout)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_train(args):
    from .config import ModelConfig, PreprocessConfig, TrainConfig
    from .training import train

    leads = tuple(v.strip() for v in args.leads.split(",") if v.strip()) if args.leads else None
    pre = PreprocessConfig(fs=args.fs, normalization=args.normalization, bandpass=tuple(args.bandpass) if args.bandpass else None, leads=leads)
    classes = args.classes if args.classes in (None, "all", "scored") else tuple(v.strip() for v in args.classes.split(",") if v.strip())
    arch = ModelConfig(
        conv_filters=tuple(int(v) for v in args.conv_filters.split(",")),
        conv_kernel=args.conv_kernel,
        lstm_layers=args.lstm_layers,
        lstm_units=args.lstm_units,
        bidirectional=not args.unidirectional,
        dropout=args.dropout,
    )
    tc = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, window_s=args.window, learning_rate=args.learning_rate,
        patience=args.patience, val_fraction=args.val_fraction, class_weighting=args.class_weighting, seed=args.seed,
    )
    result = train(_data_dir(args.data), args.output, preprocess_config=pre, model_config=arch, train_config=tc,
                   resume=args.resume, limit=args.limit, labels=args.labels, classes=classes, unlabelled=args.unlabelled,
                   verbose=0 if args.quiet else 1)
    print(f"best validation score {result.best_score:.4f} at epoch {result.best_epoch}; model written to {result.model_dir}")
    return 0


def _add_study(sub):
    from .studies import DEFAULT_STORE, STUDIES, Budget

    b = Budget()
    p = sub.add_parser(
        "study",
        help="run a controlled experiment: normalisation, variable-length strategy or depth",
        description="Train every variant of a study once per seed on one fixed split, record each run in an Optuna store as it "
        "finishes (rerunning resumes), and write OUTPUT/STUDY.csv, .md and .png.",
    )
    p.add_argument("name", choices=sorted(STUDIES), help="the study")
    p.add_argument("--data", metavar="DIR", help="folder with records and REFERENCE.csv (default: the shared CinC 2017 data)")
    p.add_argument("--store", default=str(DEFAULT_STORE), help="Optuna storage: a SQLite file or a database URL (default %(default)s)")
    p.add_argument("--output", default=os.path.join("docs", "studies"), metavar="DIR", help="folder for the report (default %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="run seeds (default 0 1 2)")
    p.add_argument("--epochs", type=int, default=b.epochs, help="epochs per run (default %(default)s)")
    p.add_argument("--train-records", type=int, default=b.train_records, help="training records per run: a fixed stratified subset (default %(default)s)")
    p.add_argument("--margin", type=float, default=0.01, help="smallest gain in mean CinC score that counts (default %(default)s)")
    p.add_argument("--variants", help="comma-separated variant names to run (default: all)")
    p.add_argument("--max-runs", type=int, help="stop after N runs (the rest run next time)")
    p.add_argument("--device", help="label for the rows' machine column (default: this machine's description)")
    p.add_argument("--report-only", action="store_true", help="only write the report from the runs already recorded")
    p.add_argument("--note", help="keep this note with the study in the store (its reports list the notes), then write the report")
    p.add_argument("--import-csv", metavar="FILE", help="record the runs of a published STUDY.csv in the store (the setup is worked out from "
                   "--data, --epochs, --train-records and --margin as for a run); rows that conflict with recorded runs are refused")


def _run_study(args):
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise _UsageError("the study command records runs with Optuna, which is not installed: pip install 'ecgrhythm[study]'") from None
    from .studies import Budget, run_study, write_report

    budget = Budget(epochs=args.epochs, train_records=args.train_records)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None

    def report():
        return write_report(args.name, args.output, args.store)["md"]

    def on_run(variant, seed, measured):
        print(f"{args.name}: {variant.name}, seed {seed}: CinC {measured['val_cinc_score']:.4f}, {measured['train_seconds']:.0f} s; report {report()}", flush=True)

    if args.import_csv:
        from .studies import import_runs

        if not os.path.isfile(args.import_csv):
            raise _UsageError(f"--import-csv {args.import_csv}: no such file; give a study CSV such as docs/studies/{args.name}.csv")
        made = import_runs(args.name, args.import_csv, _data_dir(args.data), storage=args.store, budget=budget, margin=args.margin)
        print(f"{args.name}: {made} runs imported into {args.store}; write the report with --report-only")
        return 0
    if args.note:
        from .studies import add_note

        add_note(args.name, args.note, args.store)
    if not args.report_only and not args.note:
        _enable_compilation_cache()
        made = run_study(args.name, _data_dir(args.data), storage=args.store, budget=budget, seeds=args.seeds, margin=args.margin,
                         variants=variants, max_runs=args.max_runs, device=args.device, on_run=on_run)
        print(f"{args.name}: {made} runs made now")
    print(f"report written to {report()}")
    return 0


def _add_download(sub):
    p = sub.add_parser("download", help="fetch a public data set (PhysioNet) into a folder")
    p.add_argument("name", choices=["cinc2017"], help="data set")
    p.add_argument("dest", metavar="DIR", help="folder to write (an interrupted download continues where it stopped)")
    p.add_argument("--limit", type=int, help="fetch only the first N records")
    p.add_argument("--base-url", help="mirror URL of the folder holding RECORDS (default: PhysioNet)")


def _run_download(args):
    from .datasets import download

    result = download(args.name, args.dest, base_url=args.base_url, limit=args.limit)
    print(f"{len(result.records)} records in {result.folder} ({result.fetched} files fetched, {result.skipped} already there)")
    return 0


def _add_serve(sub):
    p = sub.add_parser("serve", help="run the web service and its page")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder (default: the shipped models/cinc2017)")
    p.add_argument("--token", help="bearer token the API requires (default: $ECGRHYTHM_TOKEN; prefer the variable, since arguments show in ps)")


def _run_serve(args):
    from .service import serve

    _enable_compilation_cache()
    serve(args.host, args.port, args.model, args.token)
    return 0


def _sampling_rate(text: str) -> float:
    from .records import RecordError, check_fs

    try:
        return check_fs(float(text), "--fs", fix="pass the rate of the files in Hz")
    except ValueError as exc:  # RecordError is a ValueError
        raise argparse.ArgumentTypeError(exc.reason if isinstance(exc, RecordError) else f"expected a number, got {text!r}") from None


def _add_evaluate(sub):
    p = sub.add_parser(
        "evaluate",
        help="score a model on a labelled folder (CinC 2017 score)",
        description="Classify the labelled records of a folder (REFERENCE.csv) and report the CinC 2017 score, "
        "per-class F1 and the confusion matrix. Records the model was trained on (split.json in the model folder) "
        "are left out unless --all-records is given, so the default score is a held-out score.",
    )
    p.add_argument("--data", metavar="DIR", help="folder with records and REFERENCE.csv (default: the shared CinC 2017 data)")
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder (default: the shipped models/cinc2017)")
    p.add_argument("--output", metavar="DIR", default=os.path.join("runs", "evaluate"), help="folder for evaluation.json, evaluation.png and predictions.csv (default: %(default)s)")
    p.add_argument("--all-records", action="store_true", help="also score the records the model was trained on (the score is then not a held-out score)")


def _run_evaluate(args):
    from pathlib import Path

    from ._io import atomic_write
    from .evaluation import evaluate_folder, format_report, write_report

    data = _data_dir(args.data)
    clf = _load_classifier(args.model)
    report, prediction, truth = evaluate_folder(
        clf, data, exclude_training=not args.all_records, on_failure=lambda path, reason: _failure("evaluate", path, reason)
    )
    info = report.info
    print(f"model: {info['model']}")
    print(f"data: {info['data']} ({info['labelled_records']} labelled records)")
    if info["held_out"]:
        print(f"excluded {info['excluded_training_records']} records the model was trained on (split.json); "
              f"scored {report.n_records} held-out records ({info['failed_records']} could not be scored)")
    else:
        why = "--all-records" if args.all_records else "the model folder has no split.json"
        print(f"scored {report.n_records} records, including any the model was trained on ({why}): NOT a held-out score "
              f"({info['failed_records']} could not be scored)")
    print()
    print(format_report(report))
    print()
    paths = write_report(report, args.output)
    csv_path = Path(args.output) / "predictions.csv"
    with atomic_write(csv_path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        _write_rows(f, prediction, truth=truth)
    print(f"wrote {paths['json']}, {paths['figure']} and {csv_path}")
    return 0


def _add_classify(sub):
    p = sub.add_parser(
        "classify",
        help="classify record files or folders into a CSV",
        description="Classify ECG records into rhythm classes. Writes one CSV row per readable record: "
        "record, label, then one probability column per class. A bad file is reported on stderr and skipped; "
        "the exit status is 1 if any record failed, 0 if none did.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="a record file (.hea, .mat, .csv, .npy) or a folder of records")
    p.add_argument("--output", "-o", required=True, metavar="FILE.csv", help="CSV file to write (replaced atomically)")
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder (default: the shipped models/cinc2017)")
    p.add_argument("--fs", type=_sampling_rate, metavar="HZ", help="sampling rate of files without a header (.mat, .csv, .npy)")


def _run_classify(args):
    from pathlib import Path

    from ._io import atomic_write
    from .records import RecordError, find_records

    out = Path(args.output)
    if out.is_dir():
        raise _UsageError(f"--output {out} is a folder; pass a CSV file name such as {out / 'predictions.csv'}")
    paths, failed = [], 0
    for given in args.paths:
        try:
            paths += find_records([given])
        except RecordError as exc:
            _failure("classify", given, exc.reason)
            failed += 1
    paths = [p for p in paths if p.resolve() != out.resolve()]  # an earlier output in an input folder is not a record
    if not paths and not failed:
        raise _UsageError(f"no records found in {', '.join(args.paths)}: expected .hea, .mat, .csv or .npy files")
    clf = _load_classifier(args.model)
    done = 0
    with atomic_write(out, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        for i, (prediction, bad) in enumerate(clf.iter_classify_files(paths, fs=args.fs)):
            for path, reason in bad:
                _failure("classify", path, reason)
            failed += len(bad)
            _write_rows(f, prediction, header=i == 0)
            done += len(prediction.names)
        if not paths:
            _write_rows(f, None, classes=clf.classes_)
    seconds = time.perf_counter() - args.started
    print(f"classified {done} records in {seconds:.1f} s ({done / seconds:.1f} records/s); {failed} failed; wrote {out}")
    return 1 if failed else 0


def _write_rows(f, prediction, *, header=True, classes=None, truth=None):
    """CSV rows `record,label[,true_label],<one probability column per class>` of a prediction (or only the header)."""
    import csv

    writer = csv.writer(f)
    classes = prediction.classes if prediction is not None else classes
    if header:
        writer.writerow(["record", "label", *(["true_label"] if truth is not None else []), *classes])
    if prediction is None:
        return
    for i, (name, label, row) in enumerate(zip(prediction.names, prediction.labels, prediction.probabilities)):
        writer.writerow([name, label, *([truth[i]] if truth is not None else []), *(f"{p:.6f}" for p in row)])


def _load_classifier(model_dir):
    from .inference import RhythmClassifier

    _enable_compilation_cache()
    return RhythmClassifier.load(model_dir)


CACHE_ENV = "ECGRHYTHM_JAX_CACHE"


def _compilation_cache_dir(environ=os.environ):
    """Where JAX keeps compiled networks between runs: `$ECGRHYTHM_JAX_CACHE`, else
    `$XDG_CACHE_HOME/ecgrhythm/jax` (`~/.cache/ecgrhythm/jax`); `None` when set to `off`."""
    from pathlib import Path

    setting = environ.get(CACHE_ENV)
    if setting is not None:
        return None if setting.strip().lower() in ("", "0", "off", "false", "no") else Path(setting).expanduser()
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ecgrhythm" / "jax"


def _enable_compilation_cache():
    """Reuse compiled networks across runs (saves seconds of start-up per bucket shape on a CPU)."""
    import keras

    folder = _compilation_cache_dir()
    if folder is None or keras.backend.backend() != "jax":
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        import jax

        jax.config.update("jax_compilation_cache_dir", str(folder))
    except Exception as exc:  # a cache is an optimisation, never a reason to fail
        logger.info("not caching compiled networks in %s: %s", folder, exc)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _one_line(text, limit: int = 500) -> str:
    """`text` on one printable line: control characters escaped, at most `limit` characters."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _failure(command: str, path, reason: str) -> None:
    verb = "cannot score" if command == "evaluate" else "cannot classify"
    print(_one_line(f"ecgrhythm {command}: {verb} {path}: {reason}"), file=sys.stderr)


class _UsageError(Exception):
    """A problem with the command line: reported as one line, exit status 2."""


def _data_dir(given, subset="cinc2017"):
    from pathlib import Path

    from .config import default_data_dir

    if given:
        return Path(given)
    root = default_data_dir()
    if root is None:
        raise _UsageError(f"no data folder given and no default found: pass --data, or fetch the data with 'ecgrhythm download {subset} DIR'")
    return root / subset


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgrhythm", description="Classify ECG recordings into rhythm classes with Keras LSTM networks.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (and show tracebacks of unexpected errors)")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_classify(sub)
    _add_download(sub)
    _add_serve(sub)
    _add_study(sub)
    return parser


def main(argv=None) -> int:
    started = time.perf_counter()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.started = started
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    import ecgrhythm  # noqa: F401  (selects the Keras backend)

    runners = {"train": _run_train, "evaluate": _run_evaluate, "classify": _run_classify, "download": _run_download, "serve": _run_serve, "study": _run_study}
    try:
        return runners[args.command](args)
    except KeyboardInterrupt:
        print("ecgrhythm: interrupted", file=sys.stderr)
        return 130
    except (_UsageError, ValueError, OSError) as exc:
        print(_one_line(f"ecgrhythm {args.command}: error: {exc}"), file=sys.stderr)
        return 2
    except Exception as exc:  # no traceback reaches the user unless asked for
        if args.verbose:
            logger.exception("unexpected error")
        hint = "" if args.verbose else " (run with -v for the traceback)"
        print(_one_line(f"ecgrhythm {args.command}: unexpected error: {type(exc).__name__}: {exc}{hint}"), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
