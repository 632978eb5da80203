"""The `ecgrhythm` command: train, evaluate, classify, episodes, download, serve, export, calibrate, and the lab's commands.

The CLI only parses arguments, builds configs and calls the library; errors
reach the user as one line, never a traceback. Each command is one module with
`add_parser(subparsers)` and `run(args) -> exit status`. The product's commands
are modules of this package, registered in `COMMANDS`: a new command is one
module plus one line here. Other packages add commands through the entry-point
group `ecgrhythm.commands` (name = module); the research lab
(`ecgrhythm.lab`: `study`, `crossval`, `ensemble`) plugs in that way, so the
product never imports it.

A product command is parsed by a parser holding that command alone (:func:`build_parser` with `command`), so
running it imports neither the other commands' modules nor the plugins (the lab's studies, the entry-point
scan); a command line naming no product command (`--help`, a plugin, a typo) gets the whole parser.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import logging
import os
import signal
import sys
import threading
import time

from ecgrhythm.cli.common import (
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
    "export": "export",
    "calibrate": "calibrate",
}
PLUGIN_GROUP = "ecgrhythm.commands"  # entry points: command name -> module with add_parser and run


@functools.cache
def _plugins() -> dict:
    """Commands other packages register (entry points of `PLUGIN_GROUP`), by name, after the product's own."""
    from importlib.metadata import entry_points  # scanning the installed packages: only when a plugin may be asked for

    return {ep.name: ep for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda ep: ep.name) if ep.name not in COMMANDS}


def _command(name: str):
    """The module of the command `name`: a product command's own, else the plugin's (loaded now)."""
    if name in COMMANDS:
        return importlib.import_module(f"{__name__}.{COMMANDS[name]}")
    return _plugins()[name].load()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `ecgrhythm` parser: every command (the product's, then the plugins'), or the product command `command` alone.

    Args:
        command: a name of `COMMANDS` to parse that command only (a command line that names it parses as with
            every command), without importing the other commands or scanning for plugins; None: every command.
    """
    from ecgrhythm import __version__

    parser = argparse.ArgumentParser(prog="ecgrhythm", description="Classify ECG recordings into rhythm classes with Keras LSTM networks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (and show tracebacks of unexpected errors)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in [command] if command in COMMANDS else [*COMMANDS, *_plugins()]:
        _command(name).add_parser(sub)
    return parser


def _named_command(argv) -> str | None:
    """The product command a command line names: its first word that is not an option (the top-level options take
    no value), if that is one of `COMMANDS`; else None (`--help`, `--version`, a plugin, a typo)."""
    words = sys.argv[1:] if argv is None else argv
    first = next((str(w) for w in words if not str(w).startswith("-")), None)
    return first if first in COMMANDS else None


def main(argv=None) -> int:
    started = time.perf_counter()
    parser = build_parser(_named_command(argv))
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
        if threading.active_count() > 1:  # a network call still running in its thread (a graph that never ends) would
            sys.stdout.flush()  # abort the interpreter's shutdown: the outputs are cleaned up by now, so end here
            sys.stderr.flush()
            os._exit(128 + signal.SIGTERM)
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
