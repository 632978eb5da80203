"""The `ecgrhythm` command: train, evaluate, classify, episodes, download, serve, study, export, crossval, calibrate, ensemble.

The CLI only parses arguments, builds configs and calls the library; errors
reach the user as one line, never a traceback. Each command is one module of
this package with `add_parser(subparsers)` and `run(args) -> exit status`,
registered in `COMMANDS`: a new command is one module plus one line here.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import time

from ._common import (
    CACHE_ENV,
    LOG_FORMAT,
    Terminated,
    UsageError,
    compilation_cache_dir,
    logger,
    one_line,
    sigterm_unwinds,
)

__all__ = ["main", "build_parser", "COMMANDS", "CACHE_ENV", "compilation_cache_dir"]

# Command name -> module of this package, in the order `ecgrhythm --help` lists them.
COMMANDS = {
    "train": "train",
    "evaluate": "evaluate",
    "classify": "classify",
    "episodes": "episodes",
    "download": "download",
    "serve": "serve",
    "study": "study",
    "export": "export",
    "crossval": "crossval",
    "calibrate": "calibrate",
    "ensemble": "ensemble",
}


def _command(name: str):
    return importlib.import_module(f"{__name__}.{COMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgrhythm", description="Classify ECG recordings into rhythm classes with Keras LSTM networks.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (and show tracebacks of unexpected errors)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        _command(name).add_parser(sub)
    return parser


def main(argv=None) -> int:
    started = time.perf_counter()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.started = started
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format=LOG_FORMAT)
    logging.captureWarnings(True)
    import ecgrhythm  # noqa: F401  (selects the Keras backend)

    try:
        with contextlib.nullcontext() if args.command == "serve" else sigterm_unwinds():  # the server stops itself on SIGTERM
            return _command(args.command).run(args)
    except Terminated:
        print("ecgrhythm: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("ecgrhythm: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, OSError) as exc:
        print(one_line(f"ecgrhythm {args.command}: error: {exc}"), file=sys.stderr)
        return 2
    except Exception as exc:  # no traceback reaches the user unless asked for
        if args.verbose:
            logger.exception("unexpected error")
        hint = "" if args.verbose else " (run with -v for the traceback)"
        print(one_line(f"ecgrhythm {args.command}: unexpected error: {type(exc).__name__}: {exc}{hint}"), file=sys.stderr)
        return 2
