"""Request bodies, received outside the classification slots: their own bounded pool, a size limit and two clocks.

A body arrives in its own pool (:class:`BodyPool`, `Limits.max_bodies` at once; one more gets 503) and only a
complete body goes on to classification (:mod:`ecgrhythm.service.work`), so clients that send slowly hold a
place in this pool, never a classification slot. :func:`timed_receive` wraps an ASGI `receive` with the limits:

- `max_upload_bytes`: the body is counted as it arrives (413 past it; :class:`UploadTooLarge`).
- `min_body_rate` after `body_grace_s`: from the request's start, the body must arrive at an average of at least
  `min_body_rate` bytes a second once `body_grace_s` have passed (408; :class:`BodyTimeout`), so a client
  sending 1 byte a second is cut off after the grace period, not after the overall timeout.
- `body_timeout_s`: the whole body within this many seconds of the request's start (408).
"""

from __future__ import annotations

import anyio

__all__ = ["BodyPool", "BodyTimeout", "UploadTooLarge", "timed_receive", "drain", "too_large", "DRAIN_BYTES"]

DRAIN_BYTES = 64 * 2**20


class UploadTooLarge(Exception):
    """The request body grew past the limit while it was being read."""


class BodyTimeout(Exception):
    """The request body did not arrive in time; `detail` says which limit it broke."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def too_large(max_bytes: int) -> str:
    return f"the upload is larger than the server's limit of {max_bytes / 2**20:.3g} MB ({max_bytes} bytes): send a shorter record"


class BodyPool:
    """The request bodies being received at once, at most `limit` (one event loop: no lock needed).

    Args:
        limit: the most bodies in flight (`Limits.max_bodies`).
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.active = 0

    def full(self) -> bool:
        return self.active >= self.limit

    def take(self):
        """Take a place; returns the function that gives it back (once, however often it is called)."""
        self.active += 1
        given_back = False

        def give_back():
            nonlocal given_back
            if not given_back:
                given_back = True
                self.active -= 1

        return give_back


async def drain(receive) -> None:
    """Read and drop the rest of a request body, at most `DRAIN_BYTES` of it."""
    dropped = 0
    while dropped <= DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        dropped += len(message.get("body", b""))


def timed_receive(receive, limits, *, limited: bool = True, on_done=None):
    """`receive` with the body's clocks (`body_timeout_s`, `min_body_rate` after `body_grace_s`) and, if `limited`, its size limit.

    Args:
        receive: the ASGI `receive`.
        limits: the service's :class:`~ecgrhythm.service.limits.Limits`.
        limited: refuse a body over `max_upload_bytes` (its rest is drained first, so the client reads the 413).
        on_done: called once the body is complete, or has failed (to give back its place in the :class:`BodyPool`).

    Raises (when awaited):
        BodyTimeout: the body did not arrive in time, or too slowly.
        UploadTooLarge: the body passed the limit.
    """
    start = anyio.current_time()
    received = 0
    done = False

    def finish():
        nonlocal done
        done = True
        if on_done is not None:
            on_done()

    async def timed():
        nonlocal received
        if done:
            return await receive()
        overall = start + limits.body_timeout_s
        slow = start + limits.body_grace_s + received / limits.min_body_rate  # when the average falls under the rate
        try:
            with anyio.fail_after(max(0.0, min(overall, slow) - anyio.current_time())):
                message = await receive()
        except TimeoutError:
            finish()
            if slow < overall:
                raise BodyTimeout(
                    f"the request body arrived at under {limits.min_body_rate} bytes a second after its first {limits.body_grace_s:g} s "
                    f"({received} bytes in {anyio.current_time() - start:.1f} s; the server's --min-body-rate): send it faster"
                ) from None
            raise BodyTimeout(
                f"the request body did not arrive within {limits.body_timeout_s:g} s (the server's --body-timeout): send it faster, or a shorter record"
            ) from None
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            finish()
        return message

    async def counted():
        message = await timed()
        if message["type"] == "http.request" and received > limits.max_upload_bytes:
            if not done:
                await drain(timed)
            raise UploadTooLarge()
        return message

    return counted if limited else timed
