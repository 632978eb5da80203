"""Seconds to load a model folder's Keras networks: the fast loader against the plain one, each in a fresh process.

`ecgrhythm.inference.keras_loading.load_networks_fast` builds the networks without drawing the initial weights that
loading replaces (the one use of private Keras API in ecgrhythm; its docstring says why). This measures what that
saves: each loader runs `--repeats` times, every run in a new Python process (so no compiled program is reused
within the process), JAX's persistent compilation cache off.

Example:
    python benchmarks/keras_loading.py --model models/cinc2017 --repeats 3 --output docs/benchmarks/keras_loading.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _common import emit, fail, machine

LOADERS = {
    "fast": "from ecgrhythm.inference.keras_loading import load_networks_fast as load",
    "plain": "from ecgrhythm.networks.saving import load_networks as load",
}
CHILD = """
import json, time
{import_loader}
started = time.perf_counter()
networks, _ = load({model!r})
print(json.dumps({{"seconds": time.perf_counter() - started, "networks": len(networks)}}))
"""


def _time_once(loader: str, model: Path) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_ENABLE_COMPILATION_CACHE": "false"}
    code = CHILD.format(import_loader=LOADERS[loader], model=str(model))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    if run.returncode != 0:
        fail(f"the {loader} loader failed: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/cinc2017", help="model folder (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per loader (default %(default)s)")
    parser.add_argument("--output", help="also write the result to this JSON file")
    args = parser.parse_args()
    model = Path(args.model).resolve()
    if not (model / "config.json").is_file():
        fail(f"--model {model}: not a model folder (no config.json)")
    if args.repeats < 1:
        fail(f"--repeats {args.repeats}: expected at least 1")
    runs = {loader: [_time_once(loader, model) for _ in range(args.repeats)] for loader in LOADERS}
    result = {
        "benchmark": "keras_loading",
        "model": str(model),
        "networks": runs["fast"][0]["networks"],
        **{f"{loader}_s": [round(r["seconds"], 3) for r in done] for loader, done in runs.items()},
        **{f"{loader}_median_s": round(statistics.median(r["seconds"] for r in done), 3) for loader, done in runs.items()},
        "machine": machine(),
    }
    emit(result, args.output)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.exit(main())
