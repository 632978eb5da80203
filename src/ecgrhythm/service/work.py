"""Admission to classification: a bounded queue, a few slots at work, and a deadline per request.

A request comes here once its body is complete (:mod:`ecgrhythm.service.bodies`). :class:`WorkQueue` runs its
work in a worker thread once one of `Limits.max_concurrent` slots is free; at most `Limits.max_queue` requests
wait for one, and one more is refused at once (503 with `Retry-After`). Each request has a :class:`Ticket`: its
deadline, `Limits.deadline_s` after it was admitted, and whether its client has gone. A request still waiting
at its deadline gets 503 with `Retry-After`; work checks its ticket between steps and between network calls
(:meth:`Ticket.check`) and stops with :class:`DeadlineExceeded` (504) or :class:`ClientGone` (logged, no answer).
"""

from __future__ import annotations

import threading
import time

import anyio
from fastapi import HTTPException

__all__ = ["Ticket", "WorkQueue", "ClientGone", "DeadlineExceeded", "busy", "RETRY_AFTER_S"]

RETRY_AFTER_S = 1


class ClientGone(Exception):
    """The client disconnected before its record was classified."""


class DeadlineExceeded(Exception):
    """The work of a request ran past its deadline."""


def busy(detail: str, retry_after_s: float = RETRY_AFTER_S) -> HTTPException:
    """A 503 with `detail` and `Retry-After` (whole seconds, at least 1)."""
    return HTTPException(503, detail, headers={"Retry-After": str(max(1, int(-(-retry_after_s // 1))))})


class Ticket:
    """One request's deadline and whether its client has gone; work checks it between steps.

    Args:
        deadline_s: seconds from now the request may take.

    Attributes:
        deadline_s: as given.
        cancelled: set when the client disconnects.
    """

    def __init__(self, deadline_s: float):
        self.deadline_s = deadline_s
        self.deadline = time.monotonic() + deadline_s
        self.cancelled = threading.Event()

    def remaining(self) -> float:
        """Seconds left until the deadline (negative once past it)."""
        return self.deadline - time.monotonic()

    def check(self) -> None:
        """Raise :class:`ClientGone` if the client has gone, :class:`DeadlineExceeded` if the deadline has passed."""
        if self.cancelled.is_set():
            raise ClientGone()
        if self.remaining() <= 0:
            raise DeadlineExceeded(
                f"the classification did not finish within the server's limit of {self.deadline_s:g} s per request (--deadline): "
                "send a shorter record, or try again when the server is less busy"
            )


class WorkQueue:
    """Requests waiting for a slot (at most `max_queue`) and at work (at most `max_concurrent`), each with its deadline.

    Args:
        limits: the service's :class:`~ecgrhythm.service.limits.Limits`.
    """

    def __init__(self, limits):
        self.limits = limits
        self.waiting = 0
        self.working = 0
        self._slots = None  # made in the event loop, on first use

    async def run(self, request, fn, *args, **kwargs):
        """`fn(*args, ticket=ticket, **kwargs)` in a worker thread once a slot is free; its ticket is cancelled if the client leaves.

        Raises:
            fastapi.HTTPException: 503 with `Retry-After` when `max_queue` requests are waiting already, or the
                deadline passed while this one waited.
            ClientGone: the client left while the request waited.
            Exception: what `fn` raised.
        """
        from fastapi.concurrency import run_in_threadpool

        limits = self.limits
        if self._slots is None:
            self._slots = anyio.Semaphore(limits.max_concurrent)
        if self.working >= limits.max_concurrent and self.waiting >= limits.max_queue:
            raise busy(
                f"the server is busy: {self.working} requests at work and {self.waiting} waiting (its limits, --max-concurrent and --max-queue): "
                "try again in a moment"
            )
        ticket = Ticket(limits.deadline_s)
        result = error = None
        async with anyio.create_task_group() as tasks:  # raised here, an error would come out wrapped in an ExceptionGroup
            waiting = anyio.CancelScope(deadline=anyio.current_time() + limits.deadline_s)
            tasks.start_soon(_watch, request, ticket, waiting)
            try:
                with waiting:
                    self.waiting += 1
                    try:
                        await self._slots.acquire()
                    finally:
                        self.waiting -= 1
                if waiting.cancelled_caught:
                    if ticket.cancelled.is_set():
                        raise ClientGone()
                    raise busy(
                        f"the request waited {limits.deadline_s:g} s for its turn, the server's limit per request (--deadline): try again in a moment"
                    )
                self.working += 1
                try:
                    result = await run_in_threadpool(fn, *args, ticket=ticket, **kwargs)
                finally:
                    self.working -= 1
                    self._slots.release()
            except Exception as exc:
                error = exc
            tasks.cancel_scope.cancel()
        if error is not None:
            raise error
        return result


async def _watch(request, ticket: Ticket, waiting: anyio.CancelScope) -> None:
    """Set `ticket.cancelled` and stop the wait for a slot once the client of `request` disconnects."""
    while not await request.is_disconnected():
        await anyio.sleep(0.2)
    ticket.cancelled.set()
    waiting.cancel()
