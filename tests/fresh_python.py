"""`ecgrhythm` run in a new Python interpreter, saying which of some modules it imported: shared by the tests that
check what a command loads (no Keras, no JAX, no web framework)."""

import json
import os
import subprocess
import sys


def run_cli(argv, watched) -> tuple[subprocess.CompletedProcess, list[str], list[str]]:
    """`ecgrhythm.cli.main(argv)` in a new interpreter with this checkout's `src` first on the path.

    Returns:
        `(done, after_import, after_run)`: the finished process, and which of `watched` were imported once
        `ecgrhythm.cli` was, and once the command had run (both sorted; empty if it printed no such line).
    """
    watched = tuple(watched)
    script = (
        "import json, sys; import ecgrhythm.cli; "
        f"before = sorted(m for m in {watched!r} if m in sys.modules); "
        f"rc = ecgrhythm.cli.main({[str(a) for a in argv]!r}); "
        f"print(json.dumps([before, sorted(m for m in {watched!r} if m in sys.modules)])); sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [os.path.abspath("src"), os.environ.get("PYTHONPATH")] if p)}
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, env=env, timeout=300)
    lines = done.stdout.strip().splitlines()
    before, after = json.loads(lines[-1]) if lines and lines[-1].startswith("[[") else ([], [])
    return done, before, after
