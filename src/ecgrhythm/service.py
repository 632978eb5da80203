"""HTTP service: classify uploaded ECG records, and a page that draws them.

`ecgrhythm serve` runs :func:`create_app` on uvicorn. Endpoints:

- `GET /health`: `{"status": "ok", "model": name, "classes": [...], "max_upload_bytes": n}`
  (never needs a token).
- `POST /v1/classify`: multipart form with the field `files` (repeated) holding
  one record, either a WFDB header with its signal files (`.hea` + `.mat`/`.dat`)
  or one `.mat`, `.csv` or `.npy` file together with an `fs` field (Hz).
- `GET /v1/examples` and `GET /v1/examples/{name}`: a few records of the default
  CinC 2017 data, listed with their reference label, and classified by name.
- `GET /`: the page (static HTML, JS and CSS from `ecgrhythm/static`, nothing
  fetched from elsewhere).

A classification is `{"record", "label", "probabilities", "classes", "fs",
"duration_s", "window_s", "segments", "signal"}`: label and probabilities are
those of :func:`ecgrhythm.streaming.classify_files` for the same file; `segments`
classifies consecutive windows of about `window_s` seconds (a rhythm timeline);
`signal` is the record in mV at no more than 250 Hz for drawing, with
`values[i]` the samples of lead `leads[i]`.

Every error is JSON `{"detail": "..."}`: 400 for a malformed request, 422 for a
record that cannot be read (naming the uploaded file, never a server path), 413
for a body over `max_upload_bytes` (checked while it arrives), 401 for a missing
or wrong bearer token, and a bare 500 for anything unexpected.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import math
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from . import __version__
from .records import EcgRecord, RecordError, check_fs, find_records, read_record, read_reference

__all__ = ["create_app", "serve", "background_server", "TOKEN_ENV", "DEFAULT_MAX_UPLOAD_BYTES"]

logger = logging.getLogger(__name__)

TOKEN_ENV = "ECGRHYTHM_TOKEN"
DEFAULT_MAX_UPLOAD_BYTES = 20 * 2**20
WINDOW_S = 10.0
DISPLAY_FS = 250.0
MAX_DISPLAY_VALUES = 2_000_000
MAX_FILES = 8
_DRAIN_BYTES = 64 * 2**20
N_EXAMPLES = 8
_UPLOAD_SUFFIXES = (".hea", ".mat", ".dat", ".csv", ".npy")
_PUBLIC_PATHS = ("/", "/health", "/favicon.ico")
_SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class _UploadTooLarge(Exception):
    """The request body grew past the limit while it was being read."""


async def _send_json(send, status: int, detail: str, headers=()) -> None:
    """Send a whole `{"detail": ...}` response through an ASGI `send`."""
    body = json.dumps({"detail": detail}).encode()
    length = str(len(body)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", length), *headers]})
    await send({"type": "http.response.body", "body": body})


class _Guard:
    """ASGI middleware: security headers, the bearer token and the body size limit.

    Both checks run before the application reads any of the body: a declared
    `Content-Length` over the limit is refused without passing the body on, and
    a body without one (chunked) is counted as it arrives and refused when it
    passes the limit. Nothing over the limit is kept: the rest of a refused body
    is read and dropped (up to `_DRAIN_BYTES`) so that the client, which is
    still sending, receives the 413 instead of a reset connection.
    """

    def __init__(self, app, *, token: str | None, max_bytes: int):
        self.app = app
        self.token = token.encode() if token else None
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_secure(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS]}
            await send(message)

        headers = dict(scope.get("headers") or [])
        path = scope.get("path", "")
        if self.token and not (path in _PUBLIC_PATHS or path.startswith("/static/")) and not self._authorised(headers):
            detail = f"missing or wrong access token: send 'Authorization: Bearer TOKEN' (the server's --token or ${TOKEN_ENV})"
            return await _send_json(send_secure, 401, detail, [(b"www-authenticate", b"Bearer")])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _send_json(send_secure, 400, f"invalid Content-Length header {declared.decode('latin-1')[:40]!r}")
            if int(declared) > self.max_bytes:
                expects_continue = b"100-continue" in headers.get(b"expect", b"").lower()
                if not expects_continue and int(declared) <= self.max_bytes + _DRAIN_BYTES:
                    await _drain(receive)
                return await _send_json(send_secure, 413, _too_large(self.max_bytes), [(b"connection", b"close")])
        received = 0

        async def receive_limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if message.get("more_body", False):
                        await _drain(receive)
                    raise _UploadTooLarge()
            return message

        await self.app(scope, receive_limited, send_secure)

    def _authorised(self, headers) -> bool:
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)


async def _drain(receive) -> None:
    """Read and drop the rest of a request body, at most `_DRAIN_BYTES` of it."""
    dropped = 0
    while dropped <= _DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        dropped += len(message.get("body", b""))


def _too_large(max_bytes: int) -> str:
    return f"the upload is larger than the server's limit of {max_bytes / 2**20:.3g} MB ({max_bytes} bytes): send a shorter record"


def _safe_name(filename) -> str:
    """The uploaded file's base name, reduced to `[A-Za-z0-9._-]`, or an HTTP 400."""
    raw = str(filename or "")
    base = re.sub(r"[^A-Za-z0-9._-]", "_", re.split(r"[\\/]", raw)[-1].strip()).lstrip(".")
    if not base or len(base) > 128:
        raise HTTPException(400, f"uploaded file name {raw[:80]!r} is not usable: name files like A00001.hea")
    suffix = Path(base).suffix.lower()
    if suffix not in _UPLOAD_SUFFIXES:
        raise HTTPException(400, f"{base}: unsupported file type {suffix or '(none)'!r}: upload a .hea header with its .mat/.dat signal file, or one .mat, .csv or .npy file with fs")
    return base


def _parse_fs(value) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return check_fs(float(value) if isinstance(value, str) else math.nan, "fs", fix="send the rate of the file in Hz")
    except ValueError as exc:  # RecordError is a ValueError
        reason = exc.reason if isinstance(exc, RecordError) else "expected a number of Hz"
        raise HTTPException(422, f"fs: {reason} (got {str(value)[:40]!r})") from None


def _pick_record(names: list[str], fs: float | None) -> str:
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
        raise HTTPException(400, f"several files ({', '.join(names)}) but no .hea header: upload one .mat, .csv or .npy file with fs, or a header with its signal files")
    name = names[0]
    if name.lower().endswith(".dat"):
        raise HTTPException(422, f"{name}: a .dat signal file needs its .hea header: upload both together")
    if fs is None:
        raise HTTPException(422, f"{name}: the file has no header and so no sampling rate: send it in the form field 'fs' (Hz)")
    return name


def _window_bounds(n: int, window: int) -> np.ndarray:
    """Near-equal consecutive windows of about `window` samples covering `n` samples: `k + 1` bounds."""
    k = max(1, round(n / window))
    return np.linspace(0, n, k + 1).round().astype(int)


def _display_signal(record: EcgRecord) -> dict:
    """The record in mV for drawing: at most 250 Hz and about 2 million values in all."""
    from .preprocessing import resample

    budget = MAX_DISPLAY_VALUES / (record.n_leads * record.duration_s)
    target = min(record.fs, DISPLAY_FS, budget)
    values = record.signal if target >= record.fs else resample(record.signal, record.fs, target)
    fs = len(values) / record.duration_s if values is not record.signal else record.fs
    return {"fs": round(float(fs), 6), "leads": list(record.sig_name), "values": np.round(values.T.astype(np.float64), 4).tolist()}


class _Service:
    """The loaded model and what the endpoints do with it (one per app)."""

    def __init__(self, model_dir, examples_dir, classifier=None):
        self.model_dir = model_dir
        self.examples_dir = Path(examples_dir) if examples_dir is not None else None
        self.classifier = classifier
        self._lock = threading.Lock()

    def load(self) -> None:
        from .inference import RhythmClassifier, default_model_dir

        if self.classifier is None:
            self.classifier = RhythmClassifier.load(self.model_dir)
        self.model_name = Path(self.model_dir or default_model_dir()).resolve().name
        self.examples = self._find_examples()

    def _find_examples(self) -> dict[str, tuple[Path, str | None]]:
        """Up to `N_EXAMPLES` records of the examples folder, two of each reference class first."""
        folder = self.examples_dir
        if folder is None:
            from .config import default_data_dir

            root = default_data_dir()
            folder = root / "cinc2017" if root is not None else None
        if folder is None or not folder.is_dir():
            return {}
        paths = [p for p in find_records([folder]) if p.is_file()]
        reference_file = folder / "REFERENCE.csv"
        try:
            labels = read_reference(reference_file) if reference_file.is_file() else {}
        except RecordError as exc:
            logger.warning("ignoring example labels: %s", exc)
            labels = {}
        per_class = max(1, N_EXAMPLES // max(1, len(set(labels.values()))))
        chosen, taken = [], {}
        for path in paths:
            label = labels.get(path.stem)
            if taken.get(label, 0) < per_class:
                chosen.append(path)
                taken[label] = taken.get(label, 0) + 1
            if len(chosen) == N_EXAMPLES:
                break
        for path in paths:  # fewer classes than slots: fill up in index order
            if len(chosen) >= N_EXAMPLES:
                break
            if path not in chosen:
                chosen.append(path)
        chosen.sort(key=paths.index)
        return {p.stem: (p, labels.get(p.stem)) for p in chosen}

    def classify_path(self, path: Path, fs: float | None, *, hide: str | None = None) -> dict:
        """Read and classify one record file (blocking: call it in a worker thread).

        Args:
            path: the `.hea` header, or the one signal file.
            fs: sampling rate of files without a header.
            hide: a folder whose path is removed from error messages.

        Raises:
            fastapi.HTTPException: 422 naming the file when it cannot be read or used.
        """
        try:
            record = read_record(path, fs=fs)
            return self.classify_record(record)
        except RecordError as exc:
            reason = exc.reason.replace(f"{hide}{os.sep}", "").replace(str(hide), "") if hide else exc.reason
            raise HTTPException(422, f"{Path(exc.path).name}: {reason}") from None

    def classify_record(self, record: EcgRecord) -> dict:
        """The response body for one record: label, probabilities, segments and the signal to draw."""
        clf = self.classifier
        prepared = clf.prepare(record)
        bounds = _window_bounds(len(prepared), int(round(WINDOW_S * clf.preprocess_.fs)))
        windows = [prepared[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        with self._lock:
            probs = clf.predict_proba([prepared])[0]
            window_probs = clf.predict_proba(windows)
        classes = list(clf.classes_)
        times = bounds / len(prepared) * record.duration_s
        segments = [
            {
                "start_s": round(float(times[i]), 3),
                "end_s": round(float(times[i + 1]), 3),
                "label": label,
                "probabilities": dict(zip(classes, map(float, window_probs[i]))),
            }
            for i, label in enumerate(clf.labels_from_proba(window_probs))
        ]
        return {
            "record": record.record_name,
            "label": clf.labels_from_proba(probs[None])[0],
            "probabilities": dict(zip(classes, map(float, probs))),
            "classes": classes,
            "fs": record.fs,
            "duration_s": record.duration_s,
            "window_s": WINDOW_S,
            "segments": segments,
            "signal": _display_signal(record),
        }


def _save_uploads(uploads, folder: Path) -> list[str]:
    """Copy uploaded files into `folder` under sanitised names; returns the names."""
    names = []
    for upload in uploads:
        if isinstance(upload, str) or not hasattr(upload, "file"):
            raise HTTPException(400, "the form field 'files' must hold uploaded files, not text")
        name = _safe_name(upload.filename)
        if name in names:
            raise HTTPException(400, f"{name}: the same file name was uploaded twice")
        upload.file.seek(0)
        with open(folder / name, "xb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)
        names.append(name)
    return names


def create_app(model_dir=None, *, token=None, max_upload_bytes=DEFAULT_MAX_UPLOAD_BYTES, examples_dir=None, classifier=None):
    """The FastAPI application (see the module docstring for the endpoints).

    The model is loaded once, when the server starts (lifespan); inference runs
    in a worker thread, one at a time, so the event loop never waits on it.

    Args:
        model_dir: model folder (default: the shipped CinC 2017 model).
        token: bearer token required by every endpoint but `/health` and the
            page's static files; `None` reads `$ECGRHYTHM_TOKEN`, and an empty
            string (or an unset variable) means no token.
        max_upload_bytes: largest request body accepted (default 20 MB).
        examples_dir: folder of example records (default: the CinC 2017 data
            of :func:`ecgrhythm.config.default_data_dir`); none if missing.
        classifier: an already loaded `RhythmClassifier` of `model_dir` to use
            instead of loading the folder at start-up.

    Returns:
        The FastAPI application; `app.state.service` holds the loaded model.
    """
    if not isinstance(max_upload_bytes, int) or max_upload_bytes < 1:
        raise ValueError(f"Invalid argument `max_upload_bytes`: expected a positive number of bytes. Received: max_upload_bytes={max_upload_bytes!r}")
    token = os.environ.get(TOKEN_ENV) if token is None else token
    service = _Service(model_dir, examples_dir, classifier)
    page = resources.files("ecgrhythm").joinpath("static", "index.html").read_text(encoding="utf-8")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await run_in_threadpool(service.load)
        logger.info("model %s loaded; classes %s", service.model_name, service.classifier.classes_)
        yield

    app = FastAPI(title="ecgrhythm", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    app.mount("/static", StaticFiles(packages=[("ecgrhythm", "static")]), name="static")

    @app.exception_handler(_UploadTooLarge)
    async def too_large(request, exc):
        return JSONResponse({"detail": _too_large(max_upload_bytes)}, status_code=413, headers={"connection": "close"})

    @app.exception_handler(Exception)
    async def internal_error(request, exc):
        return JSONResponse({"detail": "internal server error: the server logged the failure"}, status_code=500)

    @app.get("/", include_in_schema=False)
    async def index():
        return HTMLResponse(page)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(status_code=204)

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": service.model_name, "classes": list(service.classifier.classes_), "max_upload_bytes": max_upload_bytes}

    @app.post("/v1/classify")
    async def classify(request: Request):
        async with request.form(max_files=MAX_FILES, max_fields=4) as form:
            fs = _parse_fs(form.get("fs"))
            with tempfile.TemporaryDirectory(prefix="ecgrhythm-upload-") as tmp:
                names = await run_in_threadpool(_save_uploads, form.getlist("files"), Path(tmp))
                target = Path(tmp) / _pick_record(names, fs)
                result = await run_in_threadpool(service.classify_path, target, fs, hide=tmp)
        return JSONResponse(result)

    @app.get("/v1/examples")
    async def examples():
        return {"examples": [{"name": name, "reference": label} for name, (_, label) in service.examples.items()]}

    @app.get("/v1/examples/{name}")
    async def classify_example(name: str):
        if name not in service.examples:
            known = ", ".join(service.examples) or "none (no example data on this server)"
            raise HTTPException(404, f"unknown example {name[:40]!r}: choose one of {known}")
        path, label = service.examples[name]
        result = await run_in_threadpool(service.classify_path, path, None, hide=str(path.parent))
        return JSONResponse({**result, "reference": label})

    app.add_middleware(_Guard, token=token, max_bytes=max_upload_bytes)
    return app


def serve(host: str = "127.0.0.1", port: int = 8000, model_dir=None, token=None) -> None:
    """Run the service with uvicorn until interrupted.

    Args:
        host: address to listen on (`0.0.0.0` for every interface).
        port: TCP port.
        model_dir: model folder (default: the shipped model).
        token: bearer token (default `$ECGRHYTHM_TOKEN`; none if unset).

    Raises:
        ModelFolderError: the model folder is missing, incomplete or altered
            (loaded here, before the server starts, so the error is one line).
    """
    import uvicorn

    from .inference import RhythmClassifier

    classifier = RhythmClassifier.load(model_dir)
    token = os.environ.get(TOKEN_ENV) if token is None else token
    if not token and host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("serving on %s without an access token: anyone who reaches the port can use it (pass --token or set %s)", host, TOKEN_ENV)
    uvicorn.run(create_app(model_dir, token=token, classifier=classifier), host=host, port=port, log_level="info")


@contextlib.contextmanager
def background_server(app, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 120.0):
    """Run an ASGI app with uvicorn in a daemon thread (tests and benchmarks).

    Args:
        app: the application, e.g. from :func:`create_app`.
        host: address to bind.
        port: port, 0 for a free one.
        timeout: seconds to wait for start-up (the model loads first).

    Yields:
        The base URL, e.g. `"http://127.0.0.1:45321"`.

    Raises:
        RuntimeError: the server did not start (its log says why).
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="ecgrhythm-server")
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ecgrhythm server did not start: see the log above")
            time.sleep(0.02)
        bound_port = sock.getsockname()[1]
        yield f"http://[{host}]:{bound_port}" if ":" in host else f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
