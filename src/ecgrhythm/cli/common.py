"""What the commands share: one-line errors, the default data folder, the classifier, the CSV rows and where they go, SIGTERM, the compile cache."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import re
import signal
import sys
import threading

from ecgrhythm.inference.compile_cache import CACHE_ENV, compilation_cache_dir, enable_compilation_cache  # noqa: F401  (the commands' names)

logger = logging.getLogger("ecgrhythm")
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def one_line(text, limit: int = 500) -> str:
    """`text` on one printable line: control characters escaped, at most `limit` characters."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def failure(command: str, path, reason: str) -> None:
    """Report on standard error (above any progress bars) that the record `path` failed, and why."""
    from ecgrhythm.cli.progress import write

    verb = "cannot score" if command == "evaluate" else "cannot classify"
    write(one_line(f"ecgrhythm {command}: {verb} {path}: {reason}"))


def status(line: str) -> None:
    """Print a status or summary line of a command on standard error, so that standard output holds only results."""
    print(line, file=sys.stderr)


STDOUT = "-"  # the --output that names standard output


def output_file(value):
    """The file an `--output` names, or None for standard output (no `--output`, or `-`)."""
    from pathlib import Path

    return None if value in (None, STDOUT) else Path(value)


class UsageError(Exception):
    """A problem with the command line: reported as one line, exit status 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (from `timeout`, `kill`, a service manager): unwinds as Ctrl-C does, so atomic
    writes remove their temporary files and leave the old output; exit status 143."""


_TERMINATED = threading.Event()  # SIGTERM arrived within `sigterm_unwinds`


def _raise_terminated(signum, frame):
    _TERMINATED.set()
    raise Terminated


def _raise_if_terminated():
    if _TERMINATED.is_set():
        raise Terminated


@contextlib.contextmanager
def sigterm_unwinds():
    """Within the block, SIGTERM raises `Terminated` in the main thread (elsewhere signals cannot be caught).

    Python drops an exception raised where it cannot pass it on (it prints "Exception ignored"): a signal that
    arrives during a garbage-collection callback (JAX has one). The signal is therefore also remembered, and raised
    again before any atomic write replaces its destination (:func:`~ecgrhythm.utils.io.commit_check`) and when the
    block ends, so the old output stays and the exit status is 143 either way; the dropped one is not printed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    from ecgrhythm.utils.io import commit_check

    previous_hook = sys.unraisablehook

    def unraisable(report):  # the dropped Terminated is raised again below: Python need not print its traceback
        if not isinstance(report.exc_value, Terminated):
            previous_hook(report)

    _TERMINATED.clear()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    sys.unraisablehook = unraisable
    try:
        with commit_check(_raise_if_terminated):
            yield
            _raise_if_terminated()
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook


LABELLED = "labelled records (REFERENCE.csv, or 'Dx:' codes in the headers)"


def data_dir(given, subset="cinc2017", holding: str = LABELLED):
    """The folder `--data` names (checked to be one, before anything loads), else the default data folder's `subset`.

    Raises:
        UsageError: `given` is no folder (the message says what it should hold), or there is no default.
    """
    from pathlib import Path

    from ecgrhythm.config import default_data_dir

    if given:
        if not Path(given).is_dir():
            raise UsageError(f"--data {given}: {'not a folder' if Path(given).exists() else 'no such folder'}; give a folder of {holding}")
        return Path(given)
    root = default_data_dir()
    if root is None:
        raise UsageError(f"no data folder given and no default found: pass --data, or fetch the data with 'ecgrhythm download {subset} DIR'")
    return root / subset


def sampling_rate(text: str) -> float:
    from ecgrhythm.records import RecordError, check_fs

    try:
        return check_fs(float(text), "--fs", fix="pass the rate of the files in Hz")
    except ValueError as exc:  # RecordError is a ValueError
        raise argparse.ArgumentTypeError(exc.reason if isinstance(exc, RecordError) else f"expected a number, got {text!r}") from None


def add_backend_argument(p):
    """`--backend {auto,onnx,keras}`: what runs a model folder's networks (see :func:`load_classifier`)."""
    from ecgrhythm.inference.backend import BACKENDS

    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="what runs the networks: onnx, the model folder's ONNX graph (model.onnx, from 'ecgrhythm export') on onnxruntime, "
        "without Keras or JAX; keras, its Keras networks; auto (default): onnx when the folder holds a graph of its weights, else keras",
    )


def load_classifier(model, backend: str = "auto"):
    """The classifier of `--model` and `--backend` (:meth:`RhythmClassifier.load`): onnxruntime alone (no Keras, no JAX) for
    a `.onnx` file or a model folder's ONNX graph, else Keras, with compiled networks cached across runs.

    Raises:
        UsageError: `--backend keras` with a `.onnx` file, `--backend onnx` with a folder without a graph of its
            networks, or onnxruntime is not installed where it is needed.
    """
    from ecgrhythm.inference.backend import is_onnx_file
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.inference.onnx_backend import OnnxModelError

    check_model(model)
    if backend == "keras" and is_onnx_file(model):
        raise UsageError(
            f"--backend keras: --model {model} is an .onnx file, which holds no Keras networks; give its model folder, or leave --backend out"
        )
    if runs_on_keras(model, backend):  # before loading: JAX compiles from then on
        enable_compilation_cache()
    try:
        clf = RhythmClassifier.load(model, backend=backend)
    except ImportError as exc:  # onnxruntime is not installed: the message says how to install it
        raise UsageError(str(exc)) from None
    except OnnxModelError as exc:
        if is_onnx_file(model):
            raise
        raise UsageError(f"--backend onnx: {exc}") from None
    return clf


def runs_on_keras(model, backend: str) -> bool:
    """Whether `--model` and `--backend` run on Keras (a folder without an ONNX graph, or `--backend keras`), whose
    compiled networks are then cached across runs (a graph that does not match its folder falls back uncached)."""
    from ecgrhythm.inference.backend import default_model_dir, folder_has_graph, is_onnx_file

    if is_onnx_file(model):
        return False
    return backend == "keras" or (backend == "auto" and not folder_has_graph(model if model is not None else default_model_dir()))


def check_model(model, flag: str = "--model") -> None:
    """Refuse a model folder or `.onnx` file that does not exist, before anything loads (None: the shipped model)."""
    from pathlib import Path

    if model is not None and not Path(model).exists():
        raise UsageError(f"{flag} {model}: no such model folder or .onnx file; give a folder written by 'ecgrhythm train', or leave {flag} out")


def write_rows(f, prediction, *, header=True, classes=None, truth=None):
    """CSV rows `record,label[,true_label],lead,<one probability column per class>` of a prediction (or only the header).

    `lead` is the lead a single-lead model took from the record, empty for a multi-lead model.
    """
    from ecgrhythm.utils.io import csv_writer

    writer = csv_writer(f)
    classes = prediction.classes if prediction is not None else classes
    if header:
        writer.writerow(["record", "label", *(["true_label"] if truth is not None else []), "lead", *classes])
    if prediction is None:
        return
    for i, (name, label, lead, row) in enumerate(zip(prediction.names, prediction.labels, prediction.leads, prediction.probabilities)):
        writer.writerow([name, label, *([truth[i]] if truth is not None else []), lead or "", *(f"{p:.6f}" for p in row)])


def gather_records(command: str, given) -> tuple[list, int]:
    """`(record paths, failures)` of the files, bare WFDB record names and folders on the command line.

    Checked before any model loads: a folder that cannot be listed, or a record that is not there, is reported at
    once and counted. A record named twice (`A.hea A.mat`, or a file and its folder) is kept once: the first time it is named.
    Another record of the same name (`A/x.hea B/x.hea`) fails, the message naming the first: rows, labels and the files
    written per record (`--plot`) are keyed by the record's name, so two of one name could not be told apart.
    """
    from ecgrhythm.records import RecordError, find_records, header_of, record_path

    paths, failed, seen, named = [], 0, set(), {}
    for path in given:
        try:
            found = find_records([path])
        except RecordError as exc:
            failure(command, path, exc.reason)
            failed += 1
            continue
        for record in found:
            try:
                name = record_path(record).stem
            except RecordError as exc:
                failure(command, record, exc.reason)
                failed += 1
                continue
            try:
                key = (header_of(record) or record).resolve()  # a signal file is the record of its header
            except (OSError, RuntimeError) as exc:  # a link that changed into a loop since it was found
                failure(command, record, f"cannot resolve its path ({type(exc).__name__}: {exc})")
                failed += 1
                continue
            if key in seen:
                continue
            if name in named:
                failure(
                    command,
                    record,
                    f"another record named {name!r} ({named[name]}) is already in this run, and rows are named by record: give it in a run of its own, or rename it",
                )
                failed += 1
                continue
            seen.add(key)
            named[name] = record
            paths.append(record)
    return paths, failed


def no_records(given) -> UsageError:
    """The error of a command line that names no record at all."""
    from ecgrhythm.records import describe_suffixes

    return UsageError(f"no records found in {', '.join(map(str, given))}: expected {describe_suffixes()} files")


def add_lead_argument(p):
    p.add_argument(
        "--lead",
        metavar="NAME|INDEX",
        help="lead a single-lead model takes from multi-lead records, by name or 0-based index (default: lead I, else the first lead, unless it is unusable and another is clean)",
    )


def add_episode_method_argument(p):
    from ecgrhythm.episodes.params import DEFAULT_PARAMS, METHODS

    p.add_argument(
        "--episode-method",
        choices=list(METHODS),
        default=DEFAULT_PARAMS.method,
        help="how AF episodes are decided: beats (default: each beat's R-R evidence from the R-R tagger and its P waves with "
        "the network's windows, Viterbi over the beats) or windows (a hidden Markov model over the network's windows, changes moved onto "
        "beats); beats scores higher in cross-validation on the cpsc2021 sample and on joined CinC 2017 records: see the "
        "episodes guide",
    )


def episode_params(args):
    """The episode finder's settings the command line asks for (`--episode-method`)."""
    from ecgrhythm.episodes.params import DEFAULT_PARAMS

    return dataclasses.replace(DEFAULT_PARAMS, method=args.episode_method)


def add_strict_checks_argument(p):
    p.add_argument(
        "--strict-checks",
        action="store_true",
        help="fail a record whose sampling rate or unit looks wrong from its signal (heart rate, R-wave width or amplitude "
        "not physiological) instead of warning and classifying it",
    )


@contextlib.contextmanager
def record_checks(command: str, strict: bool):
    """Within the block, each :class:`~ecgrhythm.preprocessing.plausibility.ImplausibleRecordWarning` is one line on
    standard error (`ecgrhythm COMMAND: warning: FILE: ...`, every time), or with `strict` an error that fails its record."""
    import warnings

    from ecgrhythm.cli.progress import write
    from ecgrhythm.preprocessing.plausibility import ImplausibleRecordWarning

    with warnings.catch_warnings():
        previous = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, ImplausibleRecordWarning):
                write(one_line(f"ecgrhythm {command}: warning: {message}"))
            else:
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        warnings.simplefilter("error" if strict else "always", ImplausibleRecordWarning)
        yield


def check_lead(clf, lead):
    """Refuse `--lead` for a multi-lead model before any record is read."""
    if lead is not None and clf.n_leads_ != 1:
        raise UsageError(f"--lead {lead}: the model takes {clf.n_leads_} leads, so no lead is chosen; leave --lead out")


def keras_verbosity(quiet: bool) -> int:
    """Keras' `verbose` for a training run: 0 if `quiet`; its progress bar (1) when standard output is a terminal; else 2.

    Keras' progress bar writes ANSI colour codes and backspaces whatever its output is, so a log file of a run
    would fill with them; 2 writes one plain line per epoch.
    """
    if quiet:
        return 0
    return 1 if sys.stdout.isatty() else 2


def show_progress(logger_name: str) -> None:
    """Print the INFO lines of `logger_name` (a run's per-epoch progress) on stdout without a prefix; its warnings stay on stderr."""
    progress = logging.getLogger(logger_name)
    lines = logging.StreamHandler(sys.stdout)
    lines.setFormatter(logging.Formatter("%(message)s"))
    lines.addFilter(lambda record: record.levelno < logging.WARNING)
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setFormatter(logging.Formatter(LOG_FORMAT))
    warnings.setLevel(logging.WARNING)
    progress.handlers = [lines, warnings]  # replaces those of an earlier main() in the same process
    progress.setLevel(logging.INFO)
    progress.propagate = False
