"""JAX's persistent compilation cache: compiled networks kept across runs (seconds of start-up per bucket shape on a CPU).

The commands (and a benchmark's Ray actors, which load the model as the commands do) call
:func:`enable_compilation_cache` before loading a Keras model; the library itself never turns it on, so tests
and user code write no cache unless asked.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["CACHE_ENV", "compilation_cache_dir", "enable_compilation_cache"]

logger = logging.getLogger(__name__)

CACHE_ENV = "ECGRHYTHM_JAX_CACHE"


def compilation_cache_dir(environ=os.environ) -> Path | None:
    """Where JAX keeps compiled networks between runs: `$ECGRHYTHM_JAX_CACHE`, else
    `$XDG_CACHE_HOME/ecgrhythm/jax` (`~/.cache/ecgrhythm/jax`); `None` when set to `off`."""
    setting = environ.get(CACHE_ENV)
    if setting is not None:
        return None if setting.strip().lower() in ("", "0", "off", "false", "no") else Path(setting).expanduser()
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ecgrhythm" / "jax"


def enable_compilation_cache() -> None:
    """Reuse compiled networks across runs, in :func:`compilation_cache_dir` (on the JAX backend; a no-op otherwise)."""
    import keras

    folder = compilation_cache_dir()
    if folder is None or keras.backend.backend() != "jax":
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        import jax

        jax.config.update("jax_compilation_cache_dir", str(folder))
    except Exception as exc:  # a cache is an optimisation, never a reason to fail
        logger.info("not caching compiled networks in %s: %s", folder, exc)
