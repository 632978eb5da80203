"""Atomic file output: a reader never sees a half-written file; CSV rows that end with a line feed alone.

An output that is a symbolic link is written through the link: the new file
replaces the link's target, in the target's folder, and the link stays a link.
Special files (character devices such as `/dev/null`, FIFOs, sockets) and the
descriptor aliases `/dev/stdout`, `/dev/stderr`, `/dev/fd/N` and
`/proc/PID/fd/N` are written directly: they cannot be replaced, and replacing
them (as root) would put a regular file where a device was.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import stat
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text", "commit_check", "csv_writer", "palette_png"]

_DESCRIPTOR_ALIAS = re.compile(r"^(/dev/(stdout|stderr|fd/[^/]+)|/proc/[^/]+/fd/[^/]+)$")


_COMMIT_CHECKS: list = []  # run before an atomic write replaces its destination (:func:`commit_check`)


@contextlib.contextmanager
def commit_check(check):
    """Within the block, `check()` runs before every :func:`atomic_write` replaces its destination; an exception it
    raises leaves the destination as it was (the command line's SIGTERM, whose exception a signal handler may raise
    where Python cannot pass it on, such as a garbage-collection callback)."""
    _COMMIT_CHECKS.append(check)
    try:
        yield
    finally:
        _COMMIT_CHECKS.remove(check)


@contextlib.contextmanager
def atomic_write(path, mode="w", **kwargs):
    """Open a temporary file beside `path` (or its symlink's target); rename it over that on success.

    Args:
        path: destination file. A symbolic link is written through to its
            target; a special file or descriptor alias is written directly.
        mode: `"w"` (text) or `"wb"` (bytes).
        **kwargs: passed to `open` (for example `newline=""`).

    Yields:
        The open file. On an exception the temporary file is removed and the
        destination is left as it was (a special file may have received part
        of the output: it cannot be written atomically).
    """
    path = Path(path)
    if _is_special(path):
        with open(path, mode, **kwargs) as f:
            yield f
        return
    target = Path(os.path.realpath(path))  # through any symlinks: the link stays, its target is replaced
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's file is private; outputs get the usual mode
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        for check in _COMMIT_CHECKS:
            check()
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _is_special(path: Path) -> bool:
    """Whether `path` is a descriptor alias or (a link to) an existing file that is neither regular nor a folder."""
    if _DESCRIPTOR_ALIAS.match(os.path.abspath(path)):
        return True
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except OSError:
        return False  # missing (or a dangling link): a regular file will be created
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import: os.umask can only be read by setting it


def atomic_write_text(path, text: str) -> None:
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)


def csv_writer(f, **kwargs):
    """A `csv.writer` on the text file `f` whose rows end with a line feed, as text files on POSIX do (`csv`'s default is CR LF).

    Open `f` with `newline=""` (as :func:`atomic_write` takes it) so that no other translation happens.
    """
    return csv.writer(f, lineterminator="\n", **kwargs)


def palette_png(png: bytes, *, software: str | None = None, colours: int = 256) -> bytes:
    """`png` with its colours reduced to a palette of `colours` (figures and screenshots have few), compressed as far as
    PNG goes, with `software` as its Software text if given (no text otherwise)."""
    import io

    from PIL import Image, PngImagePlugin

    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    info = PngImagePlugin.PngInfo()
    if software is not None:
        info.add_text("Software", software)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True, pnginfo=info)
    return out.getvalue()
