"""Data-parallel training over several devices with `keras.distribution` (JAX backend).

Each training batch `(batch, window, n_leads)` is split along its first axis
over the devices of a one-axis mesh; the variables are replicated on every
device and the gradients averaged, so the run computes the same updates as on
one device, up to the order of floating-point sums. With the same seed and the
same devices a run is reproducible.

On a machine with one CPU, two host devices can be forced for a test:
`XLA_FLAGS=--xla_force_host_platform_device_count=2` (set before JAX starts).
Several machines join one mesh through `jax.distributed.initialize`, after
which `jax.devices()` lists the devices of every host (see the README).

Example:
>>> with data_parallel(resolve_devices("auto")):         # doctest: +SKIP
...     train(data_dir, "models/mine")
"""

from __future__ import annotations

import contextlib
import logging

__all__ = ["resolve_devices", "data_parallel", "check_batch_size"]

logger = logging.getLogger(__name__)

FORCE_HOST_DEVICES = "XLA_FLAGS=--xla_force_host_platform_device_count=N"


def resolve_devices(spec) -> list[str] | None:
    """The devices a `--devices` value names: `None` (or 1) for one device, `"auto"` for all, or a count.

    Args:
        spec: `None`, `"auto"`, or a positive integer (or its text).

    Returns:
        Device names such as `["cpu:0", "cpu:1"]` (the first `N` of
        `keras.distribution.list_devices()`), or `None` for a single-device run.

    Raises:
        ValueError: `spec` is not `auto` or a positive integer, or asks for more devices than there are.
    """
    if spec is None:
        return None
    from keras import distribution

    available = distribution.list_devices()
    if str(spec).strip().lower() == "auto":
        count = len(available)
    else:
        try:
            count = int(spec)
        except (TypeError, ValueError):
            count = 0
        if count < 1 or str(count) != str(spec).strip():
            raise ValueError(f"Invalid argument `devices` (--devices): expected 'auto' or a positive integer. Received: devices={spec!r}")
    if count > len(available):
        raise ValueError(
            f"devices={count} but only {len(available)} device(s) are visible ({', '.join(available)}); pass a smaller "
            f"--devices, or on a CPU force host devices with {FORCE_HOST_DEVICES} before starting"
        )
    return available[:count] if count > 1 else None


def check_batch_size(batch_size: int, devices) -> None:
    """Refuse a batch that does not split evenly over `devices`.

    Raises:
        ValueError: `batch_size` (or the validation batch) is not a multiple of the number of devices.
    """
    from .inference import BATCH_SIZE

    if devices and batch_size % len(devices):
        raise ValueError(
            f"the training batch of {batch_size} records does not split evenly over {len(devices)} devices: "
            f"pass a --batch-size that is a multiple of {len(devices)} (with --limit, enough records for one)"
        )
    if devices and BATCH_SIZE % len(devices):
        raise ValueError(
            f"validation batches of {BATCH_SIZE} records do not split evenly over {len(devices)} devices: pass a --devices that divides {BATCH_SIZE}"
        )


@contextlib.contextmanager
def data_parallel(devices):
    """Within the block, networks are built and trained data-parallel over `devices` (nothing changes for `None`).

    Args:
        devices: device names from :func:`resolve_devices`, or `None`.
    """
    if not devices:
        yield
        return
    from keras import distribution

    logger.info("training data-parallel over %d devices: %s", len(devices), ", ".join(devices))
    with distribution.DataParallel(devices=devices).scope():
        yield
