"""Network calls of concurrent requests batched together, in the threads that own the classifier.

Each request at work reads and prepares its record in its own thread, with a view of the classifier
(:meth:`Batcher.view`) whose :meth:`~ecgrhythm.inference.classifier.RhythmClassifier.predict_prepared` hands the
signals to the :class:`Batcher` and waits for their rows. A batcher's thread collects the signals of the
requests at work for a short window (`Limits.batch_window_s`, or until every request at work but those another
thread is serving has sent its call), runs them through the networks in shared calls of at most `Limits.max_batch`
signals (one call per set of options: calibrated or not, how many networks), and hands each request its own rows.
A request with more signals than a call takes (the windows of a long record) is served in turns, between the other
requests' calls; its ticket is checked before each turn, so work for a client that left or a deadline that
passed stops there (:class:`~ecgrhythm.service.work.Ticket`).

With `runners` above 1, that many threads take turns from the same pending calls and run them at once: an idle
runner takes whole requests' calls until it holds its share of the signals waiting (so a request alone is still
one call, as with one runner), and runs them on one core's worth of the backend's threads. onnxruntime runs
concurrent calls of one session in the calling threads, so two runners on two cores spend no time handing work
between an operator's threads (`ecgrhythm serve` runs one per core on sessions of one thread:
:mod:`ecgrhythm.service.server`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import threading
import time

import numpy as np

__all__ = ["Batcher"]


@dataclasses.dataclass(eq=False)
class _Job:
    """The signals of one `predict_prepared` call of one request, and its rows as they come back."""

    signals: list
    key: tuple  # (calibrated, networks)
    ticket: object
    rows: list = dataclasses.field(default_factory=list)  # (start, probabilities) of each turn, in the order they ended
    sent: int = 0  # signals handed to the networks so far
    filled: int = 0
    error: BaseException | None = None
    done: threading.Event = dataclasses.field(default_factory=threading.Event)

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


class Batcher:
    """The threads that run every network call of the service (see the module docstring).

    Args:
        classifier: the loaded :class:`~ecgrhythm.inference.classifier.RhythmClassifier`; only these threads call its networks.
        window_s: seconds to wait for more requests' calls once one has come.
        max_batch: most signals in one shared call (one request's turn may take them all).
        runners: threads running shared calls at once (see the module docstring).
    """

    def __init__(self, classifier, *, window_s: float, max_batch: int, runners: int = 1):
        self.classifier = classifier
        self.window_s = window_s
        self.max_batch = max_batch
        self.calls = 0  # shared network calls run so far
        self._pending: list[_Job] = []
        self._in_flight: set[_Job] = set()  # jobs whose every signal is in a turn being run
        self._members = 0
        self._running = 0  # runners running a turn
        self._closed = False
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._loop, daemon=True, name=f"ecgrhythm-batcher-{i}") for i in range(runners)]

    def start(self) -> Batcher:
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        """Stop the threads; calls still waiting fail."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)

    @contextlib.contextmanager
    def member(self):
        """Count a request at work while it is inside: the collection window ends early once every member has sent its call."""
        with self._cond:
            self._members += 1
        try:
            yield
        finally:
            with self._cond:
                self._members -= 1
                self._cond.notify_all()

    def view(self, ticket):
        """A shallow copy of the classifier whose `predict_prepared` goes through this batcher, checking `ticket`."""
        view = copy.copy(self.classifier)
        view.predict_prepared = functools.partial(self.predict, ticket=ticket)
        return view

    def predict(self, signals, *, calibrated: bool = True, networks: int | None = None, batch_size: int | None = None, ticket) -> np.ndarray:
        """The classifier's `predict_prepared(signals, calibrated=, networks=)`, run among other requests' signals.
        `batch_size` is taken and left to the batcher, whose calls gather the signals of several requests up to its
        own bound.

        Raises:
            ClientGone, DeadlineExceeded: from `ticket.check()`, before the call or while it waits.
            Exception: what the classifier raised for these signals.
        """
        ticket.check()
        signals = list(signals)
        if not signals:
            return self.classifier.predict_prepared(signals, calibrated=calibrated, networks=networks)
        job = _Job(signals, (calibrated, networks), ticket)
        with self._cond:
            if self._closed:
                raise RuntimeError("the service is shutting down")
            self._pending.append(job)
            self._cond.notify_all()
        while not job.done.wait(0.05):
            ticket.check()  # the batcher skips the rest of a job whose ticket fails
        if job.error is not None:
            raise job.error
        return np.concatenate([rows for _, rows in sorted(job.rows, key=lambda piece: piece[0])])

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    for job in self._pending:
                        job.fail(RuntimeError("the service is shutting down"))
                    self._pending.clear()
                    return
                end = time.monotonic() + self.window_s
                while self._expecting() and self._waiting_signals() < self.max_batch and (left := end - time.monotonic()) > 0:
                    self._cond.wait(left)
                if not self._pending:  # another runner took them during the window
                    continue
                turn = self._take_turn(self._share())
                self._running += 1
                if self._pending:
                    self._cond.notify_all()  # an idle runner takes the rest
            try:
                self._run(turn)
            finally:
                with self._cond:
                    self._running -= 1

    def _share(self) -> int:
        """The signals this runner sets out to take: the waiting ones shared among the idle runners (this one too)."""
        idle = len(self._threads) - self._running
        return -(-self._waiting_signals() // idle)

    def _expecting(self) -> bool:
        """Whether a request at work may still send a call: one neither waiting nor being served by another runner."""
        return len(self._pending) + len(self._in_flight) < self._members

    def _waiting_signals(self) -> int:
        return sum(len(job.signals) - job.sent for job in self._pending)

    def _take_turn(self, share: int) -> list[tuple[_Job, int, int]]:
        """`(job, start, stop)` slices of the pending jobs, oldest first: whole jobs until they hold `share` signals, at most
        `max_batch` (the job at that bound is cut there, its rest left for a later turn)."""
        turn, taken = [], 0
        for job in list(self._pending):
            if taken >= min(share, self.max_batch):
                break
            try:
                job.ticket.check()
            except Exception as exc:
                self._pending.remove(job)
                job.fail(exc)
                continue
            stop = job.sent + min(len(job.signals) - job.sent, self.max_batch - taken)
            turn.append((job, job.sent, stop))
            taken += stop - job.sent
            job.sent = stop
            if job.sent == len(job.signals):
                self._pending.remove(job)
                self._in_flight.add(job)
        return turn

    def _run(self, turn) -> None:
        """Run the slices of one turn, one shared call per set of options; a failing call is run again slice by slice."""
        groups: dict[tuple, list] = {}
        for piece in turn:
            groups.setdefault(piece[0].key, []).append(piece)
        for (calibrated, networks), pieces in groups.items():
            try:
                self._call(pieces, calibrated, networks)
            except Exception:
                for piece in pieces:
                    try:
                        self._call([piece], calibrated, networks)
                    except Exception as exc:
                        self._drop(piece[0], exc)

    def _call(self, pieces, calibrated, networks) -> None:
        signals = [s for job, start, stop in pieces for s in job.signals[start:stop]]
        probs = self.classifier.predict_prepared(signals, calibrated=calibrated, networks=networks)
        with self._cond:  # another runner may be filling other turns of the same jobs
            self.calls += 1
            offset = 0
            for job, start, stop in pieces:
                job.rows.append((start, probs[offset : offset + stop - start]))
                offset += stop - start
                job.filled += stop - start
                if job.filled == len(job.signals):
                    self._in_flight.discard(job)
                    if job.error is None:
                        job.done.set()

    def _drop(self, job: _Job, error: BaseException) -> None:
        with self._cond:
            if job in self._pending:
                self._pending.remove(job)
            self._in_flight.discard(job)
        job.fail(error)
