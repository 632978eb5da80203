"""Fetching a public training set for users who do not have it.

`download("cinc2017", DIR)` fetches the PhysioNet/CinC Challenge 2017 training
set (8,528 single-lead records at 300 Hz, about 160 MB as `.hea` + `.mat`
pairs, 17,058 requests) into one flat folder:

    DIR/RECORDS          record names, one a line (every record fetched, by this or an earlier download)
    DIR/REFERENCE.csv    `record,label` rows (N, A, O, ~)
    DIR/A00001.hea, DIR/A00001.mat, ...

which `ecgrhythm train --data DIR` and `ecgrhythm classify DIR` read as they
are. Intended command line (see `ecgrhythm.cli`)::

    ecgrhythm download cinc2017 DIR [--limit N]

On PhysioNet the training folder holds a `RECORDS` index listing records as
sub-paths (`A00/A00001`), a `REFERENCE.csv` (identical to `REFERENCE-v3.csv`,
the final labels) and the records in subfolders `A00/` to `A08/`. The download
uses the standard library only (`urllib`), writes every file atomically and
skips files already present, so an interrupted download continues where it
stopped when run again. Each file is streamed to disk in pieces and refused
once it exceeds `max_file_bytes` (default :data:`MAX_FILE_BYTES`, 64 MiB; a
CinC 2017 record is under 100 kB), so a hostile or broken server cannot
exhaust memory or disk.
"""

from __future__ import annotations

import dataclasses
import http.client
import io
import logging
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ecgrhythm import __version__
from ecgrhythm.records import RecordError, read_reference
from ecgrhythm.records.reference import write_reference
from ecgrhythm.utils.io import atomic_write, atomic_write_text
from ecgrhythm.utils.validation import check_positive_int

__all__ = ["download", "DATASETS", "DownloadError", "DownloadResult"]

logger = logging.getLogger(__name__)

DATASETS = {
    "cinc2017": "https://physionet.org/files/challenge-2017/1.0.0/training/",
}
_RECORD_SUFFIXES = (".hea", ".mat")
_REFERENCE_NAMES = ("REFERENCE.csv", "REFERENCE-v3.csv")
# One path component: letters, digits, '_', '-', '.', not starting with '.'.
_SAFE_COMPONENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
MAX_FILE_BYTES = 64 << 20
_CHUNK_BYTES = 1 << 16
_FIX = "check the network connection and the URL (or pass another base URL), then run the download again: finished files are kept"


class DownloadError(OSError):
    """A file that could not be fetched, or an index that cannot be trusted.

    `str(err)` is `"URL: reason"`; `status` is the HTTP status code, if any.
    """

    def __init__(self, url: str, reason: str, status: int | None = None):
        self.url = url
        self.reason = reason
        self.status = status
        super().__init__(f"{url}: {reason}")


@dataclasses.dataclass
class DownloadResult:
    """What `download` did.

    Attributes:
        folder: the destination folder.
        records: names of the records the folder now lists: those it listed before, then the new ones in index order.
        fetched: files downloaded by this call.
        skipped: files already present and left as they were.
    """

    folder: Path
    records: list[str]
    fetched: int
    skipped: int


def download(
    name: str,
    dest,
    *,
    base_url: str | None = None,
    limit: int | None = None,
    workers: int = 8,
    progress=None,
    timeout: float = 60.0,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> DownloadResult:
    """Download a public data set into a flat folder of records.

    Files already in `dest` are taken as complete and skipped (every file is
    written atomically, so a file is either whole or absent); `RECORDS` and
    `REFERENCE.csv` are fetched again and written last, merged with what the
    folder held: a record an earlier download listed (its files all there) stays
    listed with its label, so a download never shrinks a folder (`limit=1` over a
    complete folder fetches nothing and keeps every record). Labels are checked
    (:func:`~ecgrhythm.records.reference.label_problem`) as the server's file is
    read and again as they are written, several classes in one quoted field.

    Args:
        name: data set name, a key of :data:`DATASETS` (`"cinc2017"`).
        dest: destination folder, created if needed.
        base_url: URL of the folder holding `RECORDS` (default: the official
            PhysioNet address in :data:`DATASETS`), for mirrors and tests.
        limit: fetch only the first `limit` records of the index.
        workers: parallel connections.
        progress: optional callable `progress(done, total)` called after each record.
        timeout: seconds to wait for the server on each request.
        max_file_bytes: the most bytes any one file may have; a larger one is
            refused (nothing of it is kept) with a `DownloadError`.

    Returns:
        A :class:`DownloadResult`.

    Raises:
        ValueError: unknown `name` or a bad argument.
        DownloadError: a file could not be fetched (the message names its URL),
            or the index lists an unsafe record path.
    """
    base = _base_url(name, base_url, limit=limit, workers=workers, max_file_bytes=max_file_bytes)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = _record_paths(base + "RECORDS", _get(base + "RECORDS", timeout, max_file_bytes).decode("utf-8", errors="replace"))[:limit]
    labels = _fetch_labels(base, timeout, max_file_bytes)
    names = [p.rsplit("/", 1)[-1] for p in paths]
    held, held_labels = _held(dest)
    fetched = _fetch_records(base, dest, dict(zip(paths, names)), workers=workers, progress=progress, timeout=timeout, max_bytes=max_file_bytes)
    skipped = len(names) * len(_RECORD_SUFFIXES) - fetched
    unlabelled = [n for n in names if n not in labels]
    if unlabelled:
        logger.warning("%d records have no label in the reference file (first: %s)", len(unlabelled), unlabelled[0])
    records = list(dict.fromkeys([*held, *names]))  # what the folder held stays listed, whatever the limit
    write_reference(dest / "REFERENCE.csv", {**held_labels, **{n: labels[n] for n in names if n in labels}})
    atomic_write_text(dest / "RECORDS", "".join(f"{n}\n" for n in records))
    logger.info("%s: %d records in %s (%d files fetched, %d already present)", name, len(records), dest, fetched, skipped)
    return DownloadResult(dest, records, fetched, skipped)


def _held(dest: Path) -> tuple[list[str], dict[str, str]]:
    """`(records, labels)` an earlier download left in `dest`: the names its `RECORDS` or `REFERENCE.csv` lists whose files are all there,
    and its `REFERENCE.csv` labels of them, so that a later download (a smaller `limit`, say) keeps them listed.

    Raises:
        RecordError: the folder's `REFERENCE.csv` cannot be read (the message names it): it is left as it is.
    """
    index = dest / "RECORDS"
    names = index.read_text(encoding="utf-8", errors="replace").split() if index.is_file() else []
    labels = read_reference(dest / "REFERENCE.csv") if (dest / "REFERENCE.csv").is_file() else {}
    held = [n for n in dict.fromkeys([*names, *labels]) if _SAFE_COMPONENT.fullmatch(n) and all((dest / (n + s)).is_file() for s in _RECORD_SUFFIXES)]
    return held, {n: labels[n] for n in held if n in labels}


def _base_url(name: str, base_url: str | None, *, limit: int | None, workers: int, max_file_bytes: int) -> str:
    """The URL of the folder holding `RECORDS`, ending in `/`, after checking the arguments of :func:`download`."""
    if name not in DATASETS:
        raise ValueError(f"Invalid argument `name`: expected one of {sorted(DATASETS)}. Received: name={name!r}")
    check_positive_int("limit", limit, optional=True)
    check_positive_int("workers", workers)
    check_positive_int("max_file_bytes", max_file_bytes)
    base = (base_url or DATASETS[name]).rstrip("/") + "/"
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        raise ValueError(f"Invalid argument `base_url`: expected an http:// or https:// URL. Received: base_url={base_url!r}")
    return base


def _fetch_records(base: str, dest: Path, records: dict[str, str], *, workers: int, progress, timeout: float, max_bytes: int) -> int:
    """Fetch the files of `records` (index path -> record name) missing from `dest`, `workers` at a time; how many were fetched."""

    def fetch_record(path: str, record: str) -> int:
        fetched = 0
        for suffix in _RECORD_SUFFIXES:
            target = dest / (record + suffix)
            if not target.is_file():
                with atomic_write(target, "wb") as f:
                    _fetch(base + path + suffix, timeout, max_bytes, f)
                fetched += 1
        return fetched

    fetched = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(fetch_record, p, n) for p, n in records.items()]
        try:
            for done, future in enumerate(futures, start=1):
                fetched += future.result()
                if progress is not None:
                    progress(done, len(futures))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return fetched


def _get(url: str, timeout: float, max_bytes: int) -> bytes:
    """The body of `url` (an index or label file), at most `max_bytes` of it."""
    buffer = io.BytesIO()
    _fetch(url, timeout, max_bytes, buffer)
    return buffer.getvalue()


def _fetch(url: str, timeout: float, max_bytes: int, sink) -> None:
    """Stream the body of `url` into the binary file `sink` in pieces, refusing it past `max_bytes`."""
    request = urllib.request.Request(url, headers={"User-Agent": f"ecgrhythm/{__version__}"})
    too_large = f"the file is larger than the limit of {max_bytes} bytes; pass a larger max_file_bytes if it is genuine"
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise DownloadError(url, f"the server announces {declared} bytes: {too_large}")
            total = 0
            while chunk := response.read(_CHUNK_BYTES):
                total += len(chunk)
                if total > max_bytes:
                    raise DownloadError(url, too_large)
                sink.write(chunk)
    except DownloadError:
        raise
    except urllib.error.HTTPError as exc:
        raise DownloadError(url, f"the server answered HTTP {exc.code} {exc.reason}; {_FIX}", status=exc.code) from None
    except urllib.error.URLError as exc:
        raise DownloadError(url, f"cannot reach the server ({exc.reason}); {_FIX}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(url, f"the download failed ({type(exc).__name__}: {exc}); {_FIX}") from None


def _record_paths(url: str, text: str) -> list[str]:
    """Record paths listed in a `RECORDS` index, refusing any that could leave the folder."""
    paths, seen = [], set()
    for line in text.splitlines():
        path = line.strip()
        if not path or path.startswith("#"):
            continue
        if not all(_SAFE_COMPONENT.fullmatch(part) for part in path.split("/")):
            raise DownloadError(
                url, f"the index lists the unsafe record path {path!r}: expected relative names such as 'A00/A00001'; refusing to download"
            )
        record = path.rsplit("/", 1)[-1]
        if record in seen:
            raise DownloadError(url, f"the index lists the record name {record!r} twice; the flat folder cannot hold both")
        seen.add(record)
        paths.append(path)
    if not paths:
        raise DownloadError(url, "the index lists no records")
    return paths


def _fetch_labels(base: str, timeout: float, max_bytes: int) -> dict[str, str]:
    """Labels by record name from the first reference file the server has (sub-paths stripped)."""
    for file_name in _REFERENCE_NAMES:
        url = base + file_name
        try:
            data = _get(url, timeout, max_bytes)
            break
        except DownloadError as exc:
            if exc.status != 404 or file_name == _REFERENCE_NAMES[-1]:
                raise
    with tempfile.TemporaryDirectory(prefix="ecgrhythm-") as tmp:
        local = Path(tmp) / file_name
        local.write_bytes(data)
        try:
            labels = read_reference(local)
        except RecordError as exc:
            raise DownloadError(url, exc.reason) from None
    return {key.rsplit("/", 1)[-1]: label for key, label in labels.items()}
