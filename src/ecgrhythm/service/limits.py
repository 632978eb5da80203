"""The service's limits, as one frozen dataclass with no web framework behind it (the CLI builds its options from it).

- `max_upload_bytes`: largest request body (413), checked while it arrives.
- `max_record_bytes`: most bytes an upload's record may decode to (its samples as float32, or compressed data
  once decompressed; 422 past it, before anything that large is allocated:
  :func:`~ecgrhythm.records.limits.decoded_limit`). Four times `max_upload_bytes`' default admits every uncompressed binary
  format (WFDB, EDF, BDF, .npy; 8-bit WFDB data decodes 4-fold) an upload can hold, and bounds what a small compressed upload expands to while `max_concurrent` are read at once.
- `max_bodies`: request bodies being received at once, in their own pool outside the classification
  slots (:mod:`ecgrhythm.service.bodies`); one more gets 503 with `Retry-After`.
- `min_body_rate` and `body_grace_s`: after its first `body_grace_s` seconds, a body must arrive at an
  average of at least `min_body_rate` bytes a second (408 after).
- `body_timeout_s`: seconds from a request's start for its whole body to arrive (408 after).
- `max_concurrent`: requests at work at once (reading, preparing, at the networks), once their body is
  complete; `max_queue`: requests waiting for one of those slots; one more gets 503 with `Retry-After`
  (:mod:`ecgrhythm.service.work`).
- `deadline_s`: seconds from a complete body to the answer: a request still waiting then gets 503 with
  `Retry-After`, work still running stops with 504, and a record whose estimated cost
  (`seconds_per_sample` times its samples at the model's rate times the model's networks, plus a sixteenth of that
  for each sample at its own rate) is over it is
  refused at once with 413 (503 when only the time already waited makes it too late).
- `batch_window_s` and `max_batch`: how long the network threads wait to gather the calls of concurrent
  requests, and the most signals in one shared call; `network_runners`: threads running shared calls at once with
  the ONNX backend (:mod:`ecgrhythm.service.batching`; `ecgrhythm serve` runs one per core,
  :func:`ecgrhythm.service.server.serve`; the Keras backend runs one call at a time whatever it says).
- `header_timeout_s`: seconds a connection may take to send a request's head (line and headers),
  from when it opens or its previous response ends; then it is closed.
- `keep_alive_s`: seconds an idle connection stays open between requests.
- `allowed_hosts`: the names the `Host` header may give (400 otherwise; `*` allows any).
"""

from __future__ import annotations

import dataclasses

__all__ = ["Limits", "limits_of", "LOOPBACK_HOSTS"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclasses.dataclass(frozen=True)
class Limits:
    """The service's limits (see the module docstring); every one a positive number."""

    max_upload_bytes: int = 20 * 2**20
    max_record_bytes: int = 80 * 2**20
    max_bodies: int = 32
    min_body_rate: int = 4096
    body_grace_s: float = 5.0
    body_timeout_s: float = 120.0
    max_concurrent: int = 8
    max_queue: int = 32
    deadline_s: float = 60.0
    seconds_per_sample: float = 1e-5  # 2.5 x a long record's cost with the Keras backend on 2 shared cores (3.9e-6)
    batch_window_s: float = 0.01
    max_batch: int = 64
    network_runners: int = 1
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS

    def __post_init__(self):
        for name in (
            "max_upload_bytes",
            "max_record_bytes",
            "max_bodies",
            "min_body_rate",
            "max_concurrent",
            "max_queue",
            "max_batch",
            "network_runners",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Invalid argument `{name}`: expected a positive integer. Received: {name}={value!r}")
        for name in ("body_grace_s", "body_timeout_s", "deadline_s", "seconds_per_sample", "batch_window_s", "header_timeout_s", "keep_alive_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ValueError(f"Invalid argument `{name}`: expected a positive number of seconds. Received: {name}={value!r}")
        hosts = (self.allowed_hosts,) if isinstance(self.allowed_hosts, str) else tuple(self.allowed_hosts)
        if not hosts or not all(isinstance(h, str) and h.strip() and h == h.strip() for h in hosts):
            raise ValueError(
                f"Invalid argument `allowed_hosts`: expected host names or addresses ('*' for any). Received: allowed_hosts={self.allowed_hosts!r}"
            )
        object.__setattr__(self, "allowed_hosts", tuple(h.lower().strip("[]") for h in hosts))


def limits_of(limits: Limits | None = None, **options) -> Limits:
    """`limits` (default: :class:`Limits`' defaults) with the limits named in `options` replaced.

    Args:
        limits: the limits to start from.
        **options: fields of :class:`Limits`; `allowed_hosts=None` keeps the hosts of `limits`.

    Raises:
        TypeError: an option is not a field of :class:`Limits`.
        ValueError: a limit is not a positive number, or the hosts are not names.
    """
    fields = [f.name for f in dataclasses.fields(Limits)]
    unknown = [name for name in options if name not in fields]
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}: the service's limits are {', '.join(fields)}")
    if options.get("allowed_hosts", ()) is None:
        del options["allowed_hosts"]
    return dataclasses.replace(limits if limits is not None else Limits(), **options)
