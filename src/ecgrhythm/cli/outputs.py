"""Output safety of the commands: an output never replaces a file the run reads, nor a file ecgrhythm did not write.

Files are compared by identity (device and inode), so a link to an input, or a second name of it, counts as the
input itself.
"""

from __future__ import annotations

import os

from ecgrhythm.cli.common import UsageError

__all__ = ["refuse_inputs_as_output", "refuse_input_folder_as_output"]


def refuse_inputs_as_output(out, given, records, flag: str = "--output"):
    """The records to read, less an earlier output of ours at `out`; refuses an `out` the run reads.

    Protected: every file directly in a given folder (records, their signal
    files, `RECORDS`, label tables) and, for records elsewhere, the record
    file, the header beside a signal file, and the signal files a header
    names. Files are compared by identity (device and inode), so a link to an
    input or a second name of it is refused too. An `out` that does not exist
    yet, or is not a regular file (`/dev/null`), replaces nothing read.

    Raises:
        UsageError: `out` is one of those files.
    """
    import stat
    from pathlib import Path

    from ecgrhythm.records import record_files

    try:
        target = os.stat(out)
    except OSError:
        return records
    if not stat.S_ISREG(target.st_mode):
        return records

    def is_out(path):
        return _identity(path) == (target.st_dev, target.st_ino)

    ours = _is_our_output(out)
    kept = [p for p in records if not (ours and is_out(p))]  # an earlier output is not a record
    folders = [Path(g) for g in given if Path(g).is_dir()]
    for folder in [] if ours else folders:
        if any(map(is_out, folder.iterdir())):
            raise UsageError(
                f"{flag} {out} would replace a file of the input folder {folder} (records, signal files, RECORDS, labels): "
                "write it to a new file or outside the folder"
            )
    for record in (r for r in kept if r.parent not in folders):
        read = record_files(record)
        if any(map(is_out, read)):
            raise UsageError(f"{flag} {out} would replace {next(filter(is_out, read))}, a file this run reads (record {record}): write it elsewhere")
    return kept


def refuse_input_folder_as_output(out_dir, inputs: dict, written, flag: str = "--output"):
    """Refuse an output folder that is one of the run's input folders, or in which a file we would write is not ours.

    Args:
        out_dir: the output folder (need not exist).
        inputs: `{description: path}` of the folders (or files, whose folder counts) the run reads.
        written: names of the files the run writes into `out_dir`.

    Raises:
        UsageError: `out_dir` is an input folder (compared by identity, so links count), or one of `written` exists
            there as a CSV that no ecgrhythm command wrote.
    """
    from pathlib import Path

    out = _identity(out_dir)
    for what, path in inputs.items():
        folder = Path(path) if Path(path).is_dir() else Path(path).parent
        if out is not None and _identity(folder) == out:
            raise UsageError(f"{flag} {out_dir} is the {what} {folder}: the reports would land among its files; give another folder")
    for name in written:
        target = Path(out_dir) / name
        if name.endswith(".csv") and target.is_file() and not _is_our_output(target):
            raise UsageError(f"{flag} {out_dir}: {target} exists and is not an ecgrhythm output, so it is not replaced; give another folder")


def _identity(path):
    """`(device, inode)` of an existing file (through links), else None."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _is_our_output(path) -> bool:
    """Whether `path` begins like a CSV that an ecgrhythm command writes (`record,label,...`, `record,lead,...`)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline(100).startswith(("record,label,", "record,lead,"))
    except OSError:
        return False
