"""The `ecgrhythm` command: train, evaluate, classify, episodes, download, serve, study, export.

The CLI only parses arguments, builds configs and calls the library; errors
reach the user as one line, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys
import threading
import time

__all__ = ["main"]

logger = logging.getLogger("ecgrhythm")
_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def _add_train(sub):
    from .config import CLASS_WEIGHTINGS, MAX_MODEL_FS, NORMALIZATIONS, ModelConfig, PreprocessConfig, TrainConfig
    from .labels import LABEL_SOURCES

    p = sub.add_parser("train", help="train a model on a labelled folder")
    p.add_argument("--data", help="folder of labelled records: REFERENCE.csv (one label each) or SNOMED-CT 'Dx:' codes in the headers (several); default: the shared CinC 2017 data")
    p.add_argument("--output", required=True, help="model folder to write: a new or empty folder, or a model folder (its other files are kept)")
    p.add_argument("--labels", choices=LABEL_SOURCES, default="auto", help="label source (default: REFERENCE.csv if the folder has one, else header codes)")
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
    p.add_argument("--class-weighting", choices=CLASS_WEIGHTINGS, default=t.class_weighting)
    p.add_argument("--seed", type=int, default=t.seed)
    p.add_argument("--fs", type=float, default=q.fs, help=f"model sampling rate in Hz, at most {MAX_MODEL_FS:,.0f} (default %(default)s)")
    p.add_argument("--normalization", choices=NORMALIZATIONS, default=q.normalization)
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
    p.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")


def _show_progress(logger_name: str) -> None:
    """Print the INFO lines of `logger_name` (a run's per-epoch progress) on stdout without a prefix; its warnings stay on stderr."""
    progress = logging.getLogger(logger_name)
    lines = logging.StreamHandler(sys.stdout)
    lines.setFormatter(logging.Formatter("%(message)s"))
    lines.addFilter(lambda record: record.levelno < logging.WARNING)
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setFormatter(logging.Formatter(_LOG_FORMAT))
    warnings.setLevel(logging.WARNING)
    progress.handlers = [lines, warnings]  # replaces those of an earlier main() in the same process
    progress.setLevel(logging.INFO)
    progress.propagate = False


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
    if not args.quiet:
        _show_progress(train.__module__)
    result = train(_data_dir(args.data), args.output, preprocess_config=pre, model_config=arch, train_config=tc,
                   resume=args.resume, limit=args.limit, labels=args.labels, classes=classes, unlabelled=args.unlabelled,
                   verbose=0 if args.quiet else 1)
    print(f"best validation score {result.best_score:.4f} at epoch {result.best_epoch}; model written to {result.model_dir}")
    return 0


def _add_study(sub):
    from .studies import DEFAULT_STORE, Budget

    b = Budget()
    p = sub.add_parser(
        "study",
        help="run a controlled experiment: normalisation, variable-length strategy or depth",
        description="Train every variant of a study once per seed on one fixed split, record each run in an Optuna store as it "
        "finishes (rerunning resumes), and write OUTPUT/STUDY.csv, .md and .png.",
    )
    p.add_argument("name", choices=["normalization", "length", "depth"], help="the study")
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
    from ._service_guard import Limits

    p = sub.add_parser("serve", help="run the web service and its page")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder (default: the shipped models/cinc2017)")
    p.add_argument("--token", help="bearer token the API requires (default: $ECGRHYTHM_TOKEN; prefer the variable, since arguments show in ps)")
    p.add_argument("--allowed-hosts", metavar="NAMES", type=lambda t: [h.strip() for h in t.split(",") if h.strip()],
                   help="comma-separated names the Host header may give, '*' for any (default: the names of the --host address)")
    p.add_argument("--max-concurrent", type=int, default=Limits.max_concurrent, metavar="N", help="requests classified at once; more get 503 (default %(default)s)")
    p.add_argument("--header-timeout", type=float, default=Limits.header_timeout_s, metavar="S", help="seconds for a request's head to arrive (default %(default)s)")
    p.add_argument("--body-timeout", type=float, default=Limits.body_timeout_s, metavar="S", help="seconds for a request's body to arrive (default %(default)s)")
    p.add_argument("--keep-alive", type=float, default=Limits.keep_alive_s, metavar="S", help="seconds an idle connection stays open (default %(default)s)")


def _run_serve(args):
    from .service import serve

    _enable_compilation_cache()
    serve(args.host, args.port, args.model, args.token, allowed_hosts=args.allowed_hosts, max_concurrent=args.max_concurrent,
          header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout, keep_alive_s=args.keep_alive)
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
        "per-class F1, the confusion matrix and the top-class calibration error (ECE, 15 bins, with a reliability diagram). "
        "Records the model was trained on (split.json in the model folder) are left out unless --all-records is given, "
        "so the default score is a held-out score. The exit status is 1 if some labelled records could not be scored "
        "(the outputs are still written, without them), 2 if none could.",
    )
    p.add_argument("--data", metavar="DIR", help="folder with records and REFERENCE.csv (default: the shared CinC 2017 data)")
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder (default: the shipped models/cinc2017)")
    p.add_argument("--output", metavar="DIR", default=os.path.join("runs", "evaluate"), help="folder for evaluation.json, evaluation.png and predictions.csv (default: %(default)s)")
    p.add_argument("--all-records", action="store_true", help="also score the records the model was trained on (the score is then not a held-out score)")
    p.add_argument("--task", choices=["rhythm", "episodes"], default="rhythm",
                   help="rhythm: one label per record (default); episodes: AF episodes against .atr rhythm annotations "
                   "(CPSC 2021 score, AF burden error, episode sensitivity and precision; default data: the cpsc2021 sample)")


def _run_evaluate_episodes(args):
    from .episode_evaluation import evaluate_episodes_folder, format_episode_report, write_episode_report

    data = _data_dir(args.data, "cpsc2021-sample")
    clf = _load_classifier(args.model)
    report = evaluate_episodes_folder(clf, data, on_failure=lambda path, reason: _failure("evaluate", path, reason))
    print(f"model: {report.info['model']}")
    print(f"data: {data} ({report.overall['n_records']} annotated records scored, {report.info['failed_records']} could not be scored)")
    print()
    print(format_episode_report(report))
    print()
    paths = write_episode_report(report, args.output)
    print(f"wrote {paths['json']} and {paths['figure']}")
    return 0


def _run_evaluate(args):
    from pathlib import Path

    from ._io import atomic_write
    from .evaluation import evaluate_folder
    from .reports import format_report, write_report

    if args.task == "episodes":
        return _run_evaluate_episodes(args)
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
    if info["failed_records"]:
        print(f"ecgrhythm evaluate: {info['failed_records']} labelled records could not be scored (reasons above); the score leaves them out",
              file=sys.stderr)
        return 1
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
    p.add_argument("--model", metavar="MODEL", help="model folder, or a .onnx file from 'ecgrhythm export' (runs with onnxruntime alone); "
                   "default: the shipped models/cinc2017")
    p.add_argument("--fs", type=_sampling_rate, metavar="HZ", help="sampling rate of files without a header (.mat, .csv, .npy)")


def _run_classify(args):
    from pathlib import Path

    from ._io import atomic_write
    from .records import RecordError, describe_suffixes, find_records
    from .streaming import iter_classify_files

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
    paths = _refuse_inputs_as_output(out, args.paths, paths)
    if not paths and not failed:
        raise _UsageError(f"no records found in {', '.join(args.paths)}: expected {describe_suffixes()} files")
    clf = _load_classifier(args.model)
    done = 0
    with atomic_write(out, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        for i, (prediction, bad) in enumerate(iter_classify_files(clf, paths, fs=args.fs)):
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


def _refuse_inputs_as_output(out, given, records):
    """The records to read, less an earlier output of ours at `out`; refuses an `out` the run reads.

    Protected: every file directly in a given folder (records, their signal
    files, `RECORDS`, label tables) and, for records elsewhere, the record
    file, the header beside a signal file, and the signal files a header
    names. Files are compared by identity (device and inode), so a link to an
    input or a second name of it is refused too. An `out` that does not exist
    yet, or is not a regular file (`/dev/null`), replaces nothing read.

    Raises:
        _UsageError: `out` is one of those files.
    """
    import stat
    from pathlib import Path

    from .records import record_files

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
            raise _UsageError(f"--output {out} would replace a file of the input folder {folder} (records, signal files, RECORDS, labels): "
                              "write the CSV to a new file or outside the folder")
    for record in (r for r in kept if r.parent not in folders):
        read = record_files(record)
        if any(map(is_out, read)):
            raise _UsageError(f"--output {out} would replace {next(filter(is_out, read))}, a file this run reads (record {record}): "
                              "write the CSV elsewhere")
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


def _add_episodes(sub):
    p = sub.add_parser(
        "episodes",
        help="AF episodes, AF burden and record class of long records into CSVs",
        description="Find the rhythm episodes of ECG records with overlapping windows, a hidden Markov model and R peaks. "
        "Writes one row per episode (record, lead, start_s, end_s, label, probability); the episodes of a record cover it "
        "from start to end. --summary adds one row per record: duration, AF burden, AF episodes, the longest, and the "
        "CPSC 2021 record class (non-AF, paroxysmal, persistent). A bad file is reported on stderr and skipped; "
        "the exit status is 1 if any record failed, 0 if none did.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="a record file (.hea, .mat, .csv, .npy) or a folder of records")
    p.add_argument("--output", "-o", required=True, metavar="FILE.csv", help="episode CSV to write (replaced atomically)")
    p.add_argument("--summary", metavar="FILE.csv", help="per-record summary CSV to write (replaced atomically)")
    p.add_argument("--model", metavar="MODEL_DIR", help="single-lead model folder with an A class (default: the shipped models/cinc2017)")
    p.add_argument("--lead", help="lead name or 0-based index of multi-lead records (default: lead I, else the first lead)")
    p.add_argument("--fs", type=_sampling_rate, metavar="HZ", help="sampling rate of files without a header (.mat, .csv, .npy)")


def _run_episodes(args):
    import csv
    from pathlib import Path

    from ._io import atomic_write
    from .episodes import record_episodes
    from .records import RecordError, find_records, read_record

    outputs = [Path(f) for f in (args.output, args.summary) if f]
    for out in outputs:
        if out.is_dir():
            raise _UsageError(f"{out} is a folder; pass a CSV file name such as {out / 'episodes.csv'}")
    paths, failed = [], 0
    for given in args.paths:
        try:
            paths += find_records([given])
        except RecordError as exc:
            _failure("episodes", given, exc.reason)
            failed += 1
    paths = [p for p in paths if p.resolve() not in {o.resolve() for o in outputs}]
    if not paths and not failed:
        raise _UsageError(f"no records found in {', '.join(args.paths)}: expected .hea, .mat, .csv or .npy files")
    clf = _load_classifier(args.model)
    results = []
    for path in paths:
        try:
            results.append(record_episodes(clf, read_record(path, fs=args.fs), args.lead))
        except RecordError as exc:
            _failure("episodes", path, exc.reason)
            failed += 1
    with atomic_write(args.output, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        writer = csv.writer(f)
        writer.writerow(["record", "lead", "start_s", "end_s", "label", "probability"])
        for r in results:
            writer.writerows([r.record_name, r.lead, f"{e.start_s:.3f}", f"{e.end_s:.3f}", e.label, f"{e.probability:.4f}"] for e in r.episodes)
    if args.summary:
        with atomic_write(args.summary, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
            writer = csv.writer(f)
            writer.writerow(["record", "lead", "duration_s", "af_burden", "af_episodes", "longest_af_s", "record_class"])
            writer.writerows([r.record_name, r.lead, f"{r.duration_s:.3f}", f"{r.af_burden:.4f}", len(r.af_episodes()), f"{r.longest_af_s:.3f}", r.record_class]
                             for r in results)
    seconds = time.perf_counter() - args.started
    wrote = " and ".join(str(o) for o in outputs)
    print(f"found the episodes of {len(results)} records in {seconds:.1f} s; {failed} failed; wrote {wrote}")
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


def _load_classifier(model):
    """The classifier of `--model`: onnxruntime alone (no Keras, no JAX) for a `.onnx` file, else Keras on a model folder."""
    if model is not None and str(model).lower().endswith(".onnx"):
        from .onnx_model import OnnxClassifier

        try:
            return OnnxClassifier.load(model)
        except ImportError as exc:
            raise _UsageError(str(exc)) from None
    from .inference import RhythmClassifier

    _enable_compilation_cache()
    return RhythmClassifier.load(model)


def _add_export(sub):
    p = sub.add_parser(
        "export",
        help="write a model as one .onnx file for onnxruntime",
        description="Write a model folder as one ONNX file (dynamic length; class names, preprocessing, thresholds and buckets in "
        "its metadata). The export is checked against the Keras network before the file is written.",
    )
    p.add_argument("--model", metavar="MODEL_DIR", help="model folder (default: the shipped models/cinc2017)")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="output format (default: %(default)s)")
    p.add_argument("--output", "-o", required=True, metavar="FILE.onnx", help="file to write (replaced atomically)")


def _run_export(args):
    from .export import export_onnx

    _enable_compilation_cache()
    try:
        path, difference = export_onnx(args.model, args.output)
    except ImportError as exc:
        raise _UsageError(str(exc)) from None
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); largest probability difference from the Keras network "
          f"on a check batch: {difference:.1e}")
    return 0


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


class _Terminated(KeyboardInterrupt):
    """SIGTERM (from `timeout`, `kill`, a service manager): unwinds as Ctrl-C does, so atomic
    writes remove their temporary files and leave the old output; exit status 143."""


def _raise_terminated(signum, frame):
    raise _Terminated


@contextlib.contextmanager
def _sigterm_unwinds():
    """Within the block, SIGTERM raises `_Terminated` in the main thread (elsewhere signals cannot be caught)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    _add_episodes(sub)
    _add_download(sub)
    _add_serve(sub)
    _add_study(sub)
    _add_export(sub)
    return parser


def main(argv=None) -> int:
    started = time.perf_counter()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.started = started
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format=_LOG_FORMAT)
    logging.captureWarnings(True)
    import ecgrhythm  # noqa: F401  (selects the Keras backend)

    runners = {"train": _run_train, "evaluate": _run_evaluate, "classify": _run_classify, "download": _run_download, "serve": _run_serve, "study": _run_study,
               "export": _run_export}


    runners = {"train": _run_train, "evaluate": _run_evaluate, "classify": _run_classify, "episodes": _run_episodes, "download": _run_download, "serve": _run_serve, "study": _run_study}
    try:
        with contextlib.nullcontext() if args.command == "serve" else _sigterm_unwinds():  # the server stops itself on SIGTERM
            return runners[args.command](args)
    except _Terminated:
        print("ecgrhythm: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
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
