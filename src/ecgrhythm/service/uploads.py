"""Uploads to the service: sanitised file names, the record among the files, the `fs` field, and messages free of server paths.

One upload is one record: a WFDB header with its signal files, or one `.mat`, `.csv` or `.npy`
file with the sampling rate in the form field `fs`. Problems are `HTTPException`s naming the
uploaded file, never a server path.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from fastapi import HTTPException

from ecgrhythm.records import RecordError, check_fs, record_suffixes
from ecgrhythm.records.registry import reader_for

__all__ = ["UPLOAD_SUFFIXES", "safe_name", "upload_form", "text_field", "parse_fs", "pick_record", "save_uploads", "hide_folders"]

UPLOAD_SUFFIXES = (*record_suffixes(), ".dat")  # .dat: WFDB signal files, read through their header


def safe_name(filename) -> str:
    """The uploaded file's base name, reduced to `[A-Za-z0-9._-]`, or an HTTP 400."""
    raw = str(filename or "")
    base = re.sub(r"[^A-Za-z0-9._-]", "_", re.split(r"[\\/]", raw)[-1].strip()).lstrip(".")
    if not base or len(base) > 128:
        raise HTTPException(400, f"uploaded file name {raw[:80]!r} is not usable: name files like A00001.hea")
    suffix = Path(base).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise HTTPException(
            400,
            f"{base}: unsupported file type {suffix or '(none)'!r}: upload a .hea header with its .mat/.dat signal file, one .edf or .bdf file, or one .mat, .csv or .npy file with fs",
        )
    return base


@contextlib.asynccontextmanager
async def upload_form(request, **limits):
    """The request's multipart form (Starlette's `request.form(**limits)`), refused with a reason where the parser
    would drop what it cannot read: a compressed body (415: `Content-Encoding` other than identity) or a multipart
    body without its closing boundary (400: cut short or malformed; its last part would be dropped unseen)."""
    from starlette.formparsers import parse_options_header  # the header parser Starlette's form parser uses
    from starlette.requests import Request

    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise HTTPException(415, f"compressed uploads (Content-Encoding: {encoding[:20]}) are not accepted: send the files as they are")
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary") if content_type.startswith(b"multipart/") else None
    closing = b"--" + boundary + b"--" if boundary else b""
    seen = {"closed": not boundary, "tail": b""}  # the closing delimiter seen yet; the bytes it may start in

    async def receive():
        message = await request.receive()
        if message["type"] == "http.request" and not seen["closed"]:
            window = seen["tail"] + message.get("body", b"")
            seen["closed"], seen["tail"] = closing in window, window[-(len(closing) - 1) :]
        return message

    async with Request(request.scope, receive).form(**limits) as form:
        if not seen["closed"]:
            raise HTTPException(400, "the multipart body has no closing boundary: the upload was cut short or is malformed; send it again")
        yield form


def text_field(form, name: str) -> str | None:
    """The form field `name` (None if absent), or an HTTP 400 if a file was sent in it."""
    value = form.get(name)
    if value is not None and not isinstance(value, str):
        raise HTTPException(400, f"the form field {name!r} must be text, not a file: send the record in the form field 'files'")
    return value


def parse_fs(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        return check_fs(float(value), "fs", fix="send the rate of the file in Hz")
    except ValueError as exc:  # RecordError is a ValueError
        reason = exc.reason if isinstance(exc, RecordError) else "expected a number of Hz"
        raise HTTPException(422, f"fs: {reason} (got {str(value)[:40]!r})") from None


def pick_record(names: list[str], fs: float | None) -> str:
    """The file to read among the uploaded `names`: the header, or the one signal file."""
    if not names:
        raise HTTPException(400, "no file uploaded: send the record in the form field 'files'")
    if len(set(names)) != len(names):
        raise HTTPException(400, f"the same file name was uploaded twice: {sorted(names)}")
    headers = [n for n in names if n.lower().endswith(".hea")]
    if len(headers) > 1:
        raise HTTPException(400, f"upload one record at a time: got the headers {', '.join(headers)}")
    if headers:
        extra = [n for n in names if Path(n).suffix.lower() not in (".hea", ".mat", ".dat")]
        if extra:
            raise HTTPException(400, f"{extra[0]}: a WFDB upload holds the header {headers[0]} and its .mat/.dat signal files only")
        return headers[0]
    if len(names) > 1:
        raise HTTPException(
            400,
            f"several files ({', '.join(names)}) but no .hea header: upload one .edf, .bdf, .mat, .csv or .npy file (the last three with fs), or a header with its signal files",
        )
    name = names[0]
    if name.lower().endswith(".dat"):
        raise HTTPException(422, f"{name}: a .dat signal file needs its .hea header: upload both together")
    reader = reader_for(Path(name).suffix)
    if fs is None and (reader is None or reader.needs_fs):
        raise HTTPException(422, f"{name}: the file has no header and so no sampling rate: send it in the form field 'fs' (Hz)")
    return name


def hide_folders(text: str, folder=None) -> str:
    """`text` with the folders of server paths under `folder` or the temporary folder cut off, leaving the file names.

    The readers may name files in a folder of their own (a WFDB view under
    the temporary folder), not only in the upload folder.
    """
    roots = {str(folder), os.path.realpath(folder)} if folder else set()
    roots |= {tempfile.gettempdir(), os.path.realpath(tempfile.gettempdir())}
    for root in sorted(roots, key=len, reverse=True):
        text = re.sub(re.escape(root.rstrip(os.sep)) + r"(?:[\\/][^\s'\"\\/]+)*[\\/]", "", text)
    return text


def save_uploads(uploads, folder: Path) -> list[str]:
    """Copy uploaded files into `folder` under sanitised names; returns the names."""
    names = []
    for upload in uploads:
        if isinstance(upload, str) or not hasattr(upload, "file"):
            raise HTTPException(400, "the form field 'files' must hold uploaded files, not text")
        name = safe_name(upload.filename)
        if name in names:
            raise HTTPException(400, f"{name}: the same file name was uploaded twice")
        upload.file.seek(0)
        with open(folder / name, "xb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)
        names.append(name)
    return names
