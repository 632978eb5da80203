"""Helpers shared by the benchmark scripts: the machine description and the JSON result line."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from ecgrhythm.utils.machine import cpu_count, cpu_model

REPO = Path(__file__).resolve().parents[1]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine() -> dict:
    """The machine and software a result was measured on (call after importing ecgrhythm)."""
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "git_commit": _git_commit(),
    }
    import keras

    import ecgrhythm

    info.update({"ecgrhythm": ecgrhythm.__version__, "keras": keras.__version__, "keras_backend": keras.backend.backend()})
    if keras.backend.backend() == "jax":
        import jax

        info.update({"jax": jax.__version__, "jax_devices": sorted({d.platform for d in jax.devices()})})
    return info


def _repo_relative(value):
    """`value` with every path inside the checkout made relative to it, and every path beside it relative to it too
    (`../shared/data`), so that a result names no machine's folders."""
    if isinstance(value, dict):
        return {k: _repo_relative(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_repo_relative(v) for v in value]
    if isinstance(value, str):
        return value.replace(f"{REPO}/", "").replace(f"{REPO.parent}/", "../")
    return value


def emit(result: dict, output: str | None) -> None:
    """Print `result` as one JSON line, paths relative to the checkout; also write it to `output` if given."""
    result = _repo_relative(result)
    line = json.dumps(result, sort_keys=False)
    print(line, flush=True)
    if output:
        from ecgrhythm.utils.io import atomic_write_text

        atomic_write_text(output, json.dumps(result, indent=2) + "\n")


def fail(message: str) -> None:
    """Stop with a one-line error on stderr."""
    print(f"{Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def data_and_model(data: str, model: str) -> tuple[Path, Path]:
    """`--data` and `--model` as paths (the model resolved), or a one-line error: not a folder, not a model folder."""
    data_dir, model_dir = Path(data), Path(model).resolve()
    if not data_dir.is_dir():
        fail(f"--data {data_dir}: not a folder")
    if not (model_dir / "config.json").is_file():
        fail(f"--model {model_dir}: not a model folder (no config.json)")
    return data_dir, model_dir


def records_parser(
    doc: str,
    *,
    data_help: str = "folder of records (its RECORDS index, if any, gives the order)",
    model_help: str = "model folder",
    n: int = 1279,
    repeats: int | None = None,
    repeats_help: str = "",
):
    """The parser of a benchmark over the first records of a folder: `--data`, `--model`, `--n`, `--repeats` (when `repeats`
    gives its default) and `--output`; the script adds its own options."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0], epilog="Prints one JSON line of results.")
    parser.add_argument("--data", required=True, help=data_help)
    parser.add_argument("--model", required=True, help=model_help)
    parser.add_argument("--n", type=int, default=n, help="number of records, the first N of --data (default %(default)s)")
    if repeats is not None:
        parser.add_argument("--repeats", type=int, default=repeats, help=f"{repeats_help} (default %(default)s)")
    parser.add_argument("--output", help="also write the result to this JSON file")
    return parser
