"""Network calls of concurrent requests batched together, in one thread that owns the classifier.

Each request at work reads and prepares its record in its own thread, with a view of the classifier
(:meth:`Batcher.view`) whose :meth:`~ecgrhythm.inference.classifier.RhythmClassifier.predict_prepared` hands the
signals to the :class:`Batcher` and waits for their rows. The batcher's thread collects the signals of the
requests at work for a short window (`Limits.batch_window_s`, or until every request at work has sent its
call), runs them through the networks in shared calls of at most `Limits.max_batch` signals (one call per
set of options: calibrated or not, how many networks), and hands each request its own rows. A request with
more signals than a call takes (the windows of a long record) is served in turns, between the other
requests' calls; its ticket is checked before each turn, so work for a client that left or a deadline that
passed stops there (:class:`~ecgrhythm.service.work.Ticket`).
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
    rows: list = dataclasses.field(default_factory=list)
    sent: int = 0  # signals handed to the networks so far
    filled: int = 0
    error: BaseException | None = None
    done: threading.Event = dataclasses.field(default_factory=threading.Event)

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()


class Batcher:
    """The thread that runs every network call of the service (see the module docstring).

    Args:
        classifier: the loaded :class:`~ecgrhythm.inference.classifier.RhythmClassifier`; only this thread calls its networks.
        window_s: seconds to wait for more requests' calls once one has come.
        max_batch: most signals in one shared call (one request's turn may take them all).
    """

    def __init__(self, classifier, *, window_s: float, max_batch: int):
        self.classifier = classifier
        self.window_s = window_s
        self.max_batch = max_batch
        self.calls = 0  # shared network calls run so far
        self._pending: list[_Job] = []
        self._members = 0
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="ecgrhythm-batcher")

    def start(self) -> Batcher:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread; calls still waiting fail."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

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

    def predict(self, signals, *, calibrated: bool = True, networks: int | None = None, ticket) -> np.ndarray:
        """The classifier's `predict_prepared(signals, calibrated=, networks=)`, run among other requests' signals.

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
        return np.concatenate(job.rows)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    for job in self._pending:
                        job.fail(RuntimeError("the service is shutting down"))
                    return
                end = time.monotonic() + self.window_s
                while len(self._pending) < self._members and self._waiting_signals() < self.max_batch and (left := end - time.monotonic()) > 0:
                    self._cond.wait(left)
                turn = self._take_turn()
            self._run(turn)

    def _waiting_signals(self) -> int:
        return sum(len(job.signals) - job.sent for job in self._pending)

    def _take_turn(self) -> list[tuple[_Job, int, int]]:
        """`(job, start, stop)` slices of the pending jobs, oldest first, at most `max_batch` signals (at least one slice)."""
        turn, room = [], self.max_batch
        for job in list(self._pending):
            if room <= 0:
                break
            try:
                job.ticket.check()
            except Exception as exc:
                self._pending.remove(job)
                job.fail(exc)
                continue
            stop = job.sent + min(len(job.signals) - job.sent, room)
            turn.append((job, job.sent, stop))
            room -= stop - job.sent
            job.sent = stop
            if job.sent == len(job.signals):
                self._pending.remove(job)
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
        self.calls += 1
        offset = 0
        for job, start, stop in pieces:
            job.rows.append(probs[offset : offset + stop - start])
            offset += stop - start
            job.filled += stop - start
            if job.filled == len(job.signals) and job.error is None:
                job.done.set()

    def _drop(self, job: _Job, error: BaseException) -> None:
        with self._cond:
            if job in self._pending:
                self._pending.remove(job)
        job.fail(error)
