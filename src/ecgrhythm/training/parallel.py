"""Data-parallel training over several devices with `keras.distribution` (JAX backend).

Each training batch `(batch, window, n_leads)` is split along its first axis
over the devices of a one-axis mesh; the variables are replicated on every
device and the gradients averaged, so the run computes the same updates as on
one device, up to the order of floating-point sums. With the same seed and the
same devices a run is reproducible.

On a machine with one CPU, two host devices can be forced for a test:
`XLA_FLAGS=--xla_force_host_platform_device_count=2` (set before JAX starts).

Several processes (one per host) join one mesh with :func:`join_processes`
(`keras.distribution.initialize`, i.e. `jax.distributed.initialize`), after
which the devices of every process are listed. Every process then runs the
same training, reads the same records and draws the same batches, and feeds
its own block of rows of every batch (:func:`process_rows`); the variables stay
replicated, so validation and early stopping agree on every process, and only
process 0 writes (:func:`is_primary`). See the README for the commands.

Example:
>>> with data_parallel(resolve_devices("auto")):         # doctest: +SKIP
...     train(data_dir, "models/mine")
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

__all__ = ["resolve_devices", "data_parallel", "check_batch_size", "join_processes", "process_rows", "is_primary", "same_on_every_process"]

logger = logging.getLogger(__name__)

FORCE_HOST_DEVICES = "XLA_FLAGS=--xla_force_host_platform_device_count=N"


def resolve_devices(devices) -> list[str] | None:
    """The devices that `devices` names: `None` (or 1) for one device, `"auto"` for all, or a count.

    Args:
        devices: `None`, `"auto"`, or a positive integer (or its text).

    Returns:
        Device names such as `["cpu:0", "cpu:1"]` (the first `N` of
        `keras.distribution.list_devices()`), or `None` for a single-device run.

    Raises:
        ValueError: `devices` is not `auto` or a positive integer, or asks for more devices than there are.
    """
    if devices is None:
        return None
    from keras import distribution

    available = distribution.list_devices()
    if str(devices).strip().lower() == "auto":
        count = len(available)
    else:
        try:
            count = int(devices)
        except (TypeError, ValueError):
            count = 0
        if count < 1 or str(count) != str(devices).strip():
            raise ValueError(f"Invalid argument `devices`: expected 'auto' or a positive integer. Received: devices={devices!r}")
    if count > len(available):
        raise ValueError(
            f"Invalid argument `devices`: only {len(available)} device(s) are visible ({', '.join(available)}); ask for fewer, "
            f"or on a CPU force host devices with {FORCE_HOST_DEVICES} before starting. Received: devices={count}"
        )
    if process_rows()[1] > 1:
        _check_process_devices(available, count)
    return available[:count] if count > 1 else None


def _check_process_devices(available: list[str], count: int) -> None:
    """Refuse a multi-process mesh that is not every device, in blocks of equal size per process in process order.

    Each process feeds one block of rows of every batch (see :func:`process_rows`), which is
    the block its devices hold only when the mesh lists the processes' devices in that order.
    """
    import jax

    if count != len(available):
        raise ValueError(
            f"Invalid argument `devices`: a run of {jax.process_count()} processes trains on all {len(available)} devices "
            f"of all processes, so expected devices='auto'. Received: devices={count}"
        )
    owners = [d.process_index for d in jax.devices()]
    per_process = len(owners) // jax.process_count()
    if owners != [i // per_process for i in range(len(owners))]:
        raise ValueError(
            f"the processes hold different numbers of devices (device owners {owners}): give every process as many "
            f"devices (the same accelerators, or the same {FORCE_HOST_DEVICES} on every host)"
        )


def join_processes(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join a run of `num_processes` processes (one per host), before anything else uses JAX.

    Process 0 serves at `coordinator` (`HOST:PORT`, reachable from every host); every process
    calls this with the same `coordinator` and `num_processes` and its own `process_id`, then
    blocks until all have joined. CPU devices exchange gradients through gloo.

    Raises:
        ValueError: `num_processes` is below 1, `process_id` is not in `[0, num_processes)`,
            or `coordinator` is not `HOST:PORT`.
    """
    host, _, port = str(coordinator).rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"Invalid argument `coordinator`: expected HOST:PORT. Received: coordinator={coordinator!r}")
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise ValueError(
            f"Invalid arguments `num_processes`, `process_id`: expected 0 <= process id < "
            f"number of processes. Received: num_processes={num_processes}, process_id={process_id}"
        )
    import jax
    from keras import distribution

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_enable_preemption_service", False)  # its handler would swallow SIGTERM: a run stops as usual
    logger.info("process %d of %d joining the run coordinated at %s", process_id, num_processes, coordinator)
    distribution.initialize(str(coordinator), num_processes, process_id)


def process_rows() -> tuple[int, int]:
    """`(index, count)`: this process feeds block `index` of `count` equal blocks of rows of every batch (`(0, 1)` alone)."""
    import jax

    return jax.process_index(), jax.process_count()


def is_primary() -> bool:
    """Whether this process writes the run's files: process 0 (or a run of one process)."""
    return process_rows()[0] == 0


def same_on_every_process(value: int, what: str) -> None:
    """Wait for every process and refuse to go on unless all hold the same integer `value` (no-op in a run of one process).

    Raises:
        ValueError: naming `what` and the value of each process.
    """
    if process_rows()[1] == 1:
        return
    from jax.experimental import multihost_utils

    values = [int(v) for v in multihost_utils.process_allgather(np.int64(value))]
    if len(set(values)) > 1:
        raise ValueError(f"the processes disagree on {what}: {values} (process 0 first)")


def check_batch_size(batch_size: int, devices) -> None:
    """Refuse a batch that does not split evenly over `devices`, and a multi-process run on no devices of the others.

    Raises:
        ValueError: `batch_size` (or the validation batch) is not a multiple of the number of devices,
            or several processes run with `devices=None`.
    """
    from ecgrhythm.inference.classifier import BATCH_SIZE

    if not devices and process_rows()[1] > 1:
        raise ValueError(
            f"a run of {process_rows()[1]} processes trains over the devices of all of them: expected devices='auto'. Received: devices=None"
        )

    if devices and batch_size % len(devices):
        raise ValueError(
            f"the training batch of {batch_size} records does not split evenly over {len(devices)} devices: "
            f"make the `batch_size` of the training config a multiple of {len(devices)} (with `limit`, leave enough records for one)"
        )
    if devices and BATCH_SIZE % len(devices):
        raise ValueError(
            f"validation batches of {BATCH_SIZE} records do not split evenly over {len(devices)} devices: ask for a number of `devices` that divides {BATCH_SIZE}"
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
    # each process feeds its own rows of every batch (see `process_rows`): no sharding of the dataset by Keras
    with distribution.DataParallel(devices=devices, auto_shard_dataset=False).scope():
        yield
