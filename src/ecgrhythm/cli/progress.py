"""Progress bars of the commands (tqdm) on standard error, shown only when it is a terminal.

The library reports progress through optional callbacks (`progress=None`), so Python callers and the
service get no output and need no tqdm; the commands turn those calls into bars here. A bar is drawn
only when standard error is a terminal (tqdm's `disable=None`), so nothing of it reaches a pipe or a log
file. Lines printed while bars are shown go through :func:`write`, which keeps the bars intact.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["Bars", "write"]

_SIGNAL_FORMAT = "{desc}{percentage:3.0f}%|{bar}| {n:.2f}/{total:.2f} h of signal [{elapsed}<{remaining}]"
_SIGNAL_DELAY_S = 2.0  # a record worked through faster than this shows no bar of its own


def write(line: str) -> None:
    """Print `line` on standard error above any bars shown there."""
    tqdm.write(line, file=sys.stderr)


class Bars:
    """The records done of a run (done/total, rate, time left) and the hours of signal done of the record being worked on.

    Args:
        total: how many records the run works through.
        command: the command's name, shown before the records bar.

    Use it as a context manager; pass :meth:`signal_done` as the library's `progress` callback and call
    :meth:`records_done` as records finish (successfully or not).
    """

    def __init__(self, total: int, command: str):
        self._records = tqdm(total=total, desc=command, unit="record", file=sys.stderr, disable=None, dynamic_ncols=True)
        self._signal = None

    def signal_done(self, done_s: float, total_s: float) -> None:
        """The library's `progress(done_s, total_s)`: seconds of the current record's signal done, and its length."""
        if self._records.disable:
            return
        if self._signal is None:
            self._signal = tqdm(
                total=total_s / 3600,
                desc="  record",
                bar_format=_SIGNAL_FORMAT,
                position=1,
                leave=False,
                delay=_SIGNAL_DELAY_S,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self._signal.update(done_s / 3600 - self._signal.n)

    def records_done(self, n: int = 1) -> None:
        """`n` more records are finished (the current record's signal bar closes)."""
        self._close_signal()
        self._records.update(n)

    def _close_signal(self) -> None:
        if self._signal is not None:
            self._signal.close()
            self._signal = None

    def __enter__(self) -> Bars:
        return self

    def __exit__(self, *exc) -> None:
        self._close_signal()
        self._records.close()
