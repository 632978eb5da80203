"""A short description of the machine a number was measured on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["cpu_model", "cpu_count", "describe"]


def cpu_model() -> str:
    """The CPU's model name from `/proc/cpuinfo` (else what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_count() -> int:
    """CPU cores this process may use (`os.sched_getaffinity`, which a container's or `taskset`'s limit narrows; at least 1)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def accelerator() -> str:
    """`"cpu"`, or the accelerator the Keras backend computes on (e.g. `"gpu NVIDIA H200"`)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return "cpu" if device.platform == "cpu" else f"{device.platform} {getattr(device, 'device_kind', '')}".strip()
    return "cpu"


def describe() -> str:
    """E.g. `"AMD EPYC 7B13, 2 CPU cores, jax backend on cpu"`."""
    import keras

    return f"{cpu_model()}, {cpu_count()} CPU cores, {keras.backend.backend()} backend on {accelerator()}"
