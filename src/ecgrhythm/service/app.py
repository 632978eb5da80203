"""HTTP service: classify uploaded ECG records, and a page that draws them.

`ecgrhythm serve` runs :func:`create_app` on uvicorn. Endpoints:

- `GET /health` (and `HEAD`): `{"status": "ok", "model": name, "classes": [...], "max_upload_bytes": n}`
  (never needs a token).
- `POST /v1/classify`: multipart form with the field `files` (repeated) holding
  one record, either a WFDB header with its signal files (`.hea` + `.mat`/`.dat`)
  or one `.mat`, `.csv` or `.npy` file together with an `fs` field (Hz).
- `GET /v1/examples` and `GET /v1/examples/{name}`: a few records of the default
  CinC 2017 data, listed with their reference label, and classified by name.
- `GET /`: the page (static HTML, JS and CSS from `ecgrhythm/service/static`, nothing
  fetched from elsewhere).
- `GET /docs` and `GET /openapi.json`: the API's Swagger UI page, served offline, and its
  OpenAPI 3.0 schema (:mod:`ecgrhythm.service.openapi`); neither needs a token.

A classification is `{"record", "label", "probabilities", "classes", "lead", "fs",
"duration_s", "window_s", "segments", "episodes", "af_burden", "record_class", "signal"}`: label and
probabilities are those of `ecgrhythm classify` for the same file (for a record longer than the networks'
training length, the label follows its AF episodes and `record_class` is its CPSC 2021 class, null for the
others: :mod:`ecgrhythm.episodes.answers`); `lead` is
the lead a single-lead model took (the form field `lead`, a name or 0-based
index; by default lead I, else the first, unless it is unusable and another is clean); `segments`
classifies consecutive windows of about `window_s` seconds (a rhythm timeline,
:meth:`RhythmClassifier.predict_segments`: the networks' own probabilities, each segment's `calibrated`
false, as the model's calibration was fitted on whole records); `episodes` are the rhythm episodes
covering the record, AF ones to the beat, and `af_burden` the share of time in
AF (:func:`ecgrhythm.episodes.finder.record_episodes`; both `null` for a model without
a single lead and an `A` class);
`signal` is the record in mV at no more than 250 Hz for drawing, with
`values[i]` the samples of lead `leads[i]`.

Every error is JSON `{"detail": "..."}`: 400 for a malformed request or a `Host`
header that does not name this server, 403 for a cross-site POST from a web page,
422 for a record that cannot be read or gives no finite probabilities (naming the
uploaded file, never a server path), 413 for a body over `max_upload_bytes`
(checked while it arrives) or a record that would take longer than `deadline_s` to classify,
408 for a body slower than `min_body_rate` after `body_grace_s` or not complete within `body_timeout_s`,
503 with `Retry-After` when `max_bodies` uploads are arriving already, when `max_queue` requests
wait already for one of the `max_concurrent` slots, or when a request waited until its deadline,
504 for work stopped at its deadline, 401 for a
missing or wrong bearer token, and a bare 500 for anything unexpected. Work for a
client that disconnects stops at its next step or network call, with one log line. The limits and
checks are in :mod:`ecgrhythm.service.guard`; bodies in :mod:`ecgrhythm.service.bodies`; the queue and
deadlines in :mod:`ecgrhythm.service.work`; the shared network calls in :mod:`ecgrhythm.service.batching`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path

import pydantic_core
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from ecgrhythm import __version__
from ecgrhythm.service.bodies import BodyTimeout, UploadTooLarge, too_large
from ecgrhythm.service.classify import Service
from ecgrhythm.service.guard import Guard, uvicorn_config
from ecgrhythm.service.limits import Limits, limits_of
from ecgrhythm.service.openapi import DOCS_PATHS, DOCS_PREFIX, add_docs, endpoint
from ecgrhythm.service.uploads import parse_fs, pick_record, save_uploads, text_field, upload_form
from ecgrhythm.service.work import ClientGone, DeadlineExceeded, WorkQueue

__all__ = ["create_app", "access_token", "background_server", "AnswerResponse", "TOKEN_ENV"]

logger = logging.getLogger(__name__)

TOKEN_ENV = "ECGRHYTHM_TOKEN"
MAX_FILES = 8
_PUBLIC_PATHS = ("/", "/health", "/favicon.ico", *DOCS_PATHS)
_PUBLIC_PREFIXES = ("/static/", DOCS_PREFIX)


def create_app(model_dir=None, *, token=None, examples_dir=None, classifier=None, limits: Limits | None = None, **limit_options):
    """The FastAPI application (see the module docstring for the endpoints).

    The model is loaded once, when the server starts (lifespan). A request is admitted to classification
    once its body is complete (:mod:`ecgrhythm.service.bodies`), waits in a bounded queue for one of
    `max_concurrent` slots (:mod:`ecgrhythm.service.work`), and its network calls share the batching threads
    (`Limits.network_runners`) with those of the other requests at work (:mod:`ecgrhythm.service.batching`), so the
    event loop never waits on them.

    Args:
        model_dir: model folder (default: the shipped CinC 2017 model).
        token: bearer token required by every endpoint but `/health`, the
            pages (`/`, `/docs`, `/openapi.json`) and their static files; `None` reads `$ECGRHYTHM_TOKEN`, and an empty
            string (or an unset variable) means no token.
        examples_dir: folder of example records (default: the CinC 2017 data
            of :func:`ecgrhythm.config.default_data_dir`); none if missing.
        classifier: an already loaded `RhythmClassifier` of `model_dir` to use
            instead of loading the folder at start-up.
        limits: the :class:`~ecgrhythm.service.limits.Limits` (default: their defaults).
        **limit_options: limits to set instead of those of `limits`, by name:
            `max_upload_bytes` (largest request body accepted, default 20 MB);
            `max_bodies`, `min_body_rate`, `body_grace_s`, `body_timeout_s` (the pool of bodies being received and
            their clocks); `max_concurrent`, `max_queue`, `deadline_s`, `seconds_per_sample` (classification: slots,
            the queue, the deadline per request and the cost estimate); `batch_window_s`, `max_batch`, `network_runners`
            (shared network calls): see :class:`~ecgrhythm.service.limits.Limits`;
            `header_timeout_s` (seconds a connection may take to send a request head; needs
            the server of :func:`serve` or :func:`background_server`);
            `keep_alive_s` (seconds an idle connection stays open, the server's setting like `header_timeout_s`);
            `allowed_hosts` (names the `Host` header may give, `"*"` for any; default the loopback names).

    Returns:
        The FastAPI application; `app.state.service` holds the loaded model, `app.state.work` the
        :class:`~ecgrhythm.service.work.WorkQueue` and `app.state.limits` the :class:`~ecgrhythm.service.limits.Limits`.

    Raises:
        ValueError: a limit is not a positive number, or the token has surrounding whitespace.
        TypeError: a limit option is not a field of `Limits`.
    """
    limits = limits_of(limits, **limit_options)
    token = access_token(token)
    service = Service(model_dir, examples_dir, classifier, limits)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await run_in_threadpool(service.load)
        logger.info("model %s loaded; classes %s", service.model_name, service.classifier.classes_)
        try:
            yield
        finally:
            await run_in_threadpool(service.close)

    description = 'Classify ECG records into rhythm classes, with a rhythm timeline, AF episodes and AF burden. Errors are JSON `{"detail": ...}`.'
    app = FastAPI(title="ecgrhythm", version=__version__, description=description, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    app.state.limits = limits
    app.mount("/static", StaticFiles(packages=[("ecgrhythm.service", "static")]), name="static")
    _add_error_handlers(app, limits)
    _add_page(app)
    add_docs(app)
    app.state.work = WorkQueue(limits)
    _add_api(app, service, app.state.work, limits, token)
    hint = "the server's --token or $" + TOKEN_ENV
    app.add_middleware(Guard, token=token, limits=limits, public_paths=_PUBLIC_PATHS, public_prefixes=_PUBLIC_PREFIXES, token_hint=hint)
    return app


class AnswerResponse(Response):
    """A classification as JSON, written by pydantic-core (FastAPI's own serialiser, in Rust) rather than `json`: a 30 s
    record's answer, with its 7,500 signal values, in about 0.4 ms instead of 1.8 ms; the same values, floats written
    in their shortest form. A value JSON cannot hold fails (500), as with `JSONResponse`; NaN or infinity, which the
    answers never hold (:meth:`~ecgrhythm.service.classify.Service.classify_path`), would be `null`."""

    media_type = "application/json"

    def render(self, content) -> bytes:
        return pydantic_core.to_json(content, inf_nan_mode="null", serialize_unknown=False)


def access_token(token: str | None) -> str | None:
    """The token the API requires: `token`, else `$ECGRHYTHM_TOKEN`; refused with surrounding whitespace."""
    source = "token" if token is not None else f"${TOKEN_ENV}"
    token = os.environ.get(TOKEN_ENV) if token is None else token
    if token and token != token.strip():
        raise ValueError(f"the access token ({source}) starts or ends with whitespace, which no client would send: remove it")
    return token


def _add_error_handlers(app: FastAPI, limits: Limits) -> None:
    """The JSON answers to a body over the limit (413), too slow (408), work past its deadline (504), a client gone
    (499, one log line, whether it left during its upload or its work) and anything unexpected (500)."""
    from starlette.requests import ClientDisconnect

    @app.exception_handler(UploadTooLarge)
    async def upload_too_large(request, exc):
        return JSONResponse({"detail": too_large(limits.max_upload_bytes)}, status_code=413, headers={"connection": "close"})

    @app.exception_handler(BodyTimeout)
    async def body_timeout(request, exc):
        logger.info("%s %s: %s", request.method, request.url.path, exc.detail)
        return JSONResponse({"detail": exc.detail}, status_code=408, headers={"connection": "close"})

    @app.exception_handler(DeadlineExceeded)
    async def deadline_exceeded(request, exc):
        logger.warning("%s %s: stopped at its deadline (%g s)", request.method, request.url.path, limits.deadline_s)
        return JSONResponse({"detail": str(exc)}, status_code=504)

    @app.exception_handler(ClientGone)
    @app.exception_handler(ClientDisconnect)
    async def client_gone(request, exc):
        logger.info("%s %s: the client disconnected; its work was dropped", request.method, request.url.path)
        return JSONResponse({"detail": "client closed request"}, status_code=499)

    @app.exception_handler(Exception)
    async def internal_error(request, exc):
        return JSONResponse({"detail": "internal server error: the server logged the failure"}, status_code=500)


def _add_page(app: FastAPI) -> None:
    """`GET /` (the page) and `GET /favicon.ico` (none)."""
    page = resources.files("ecgrhythm.service").joinpath("static", "index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def index():
        return HTMLResponse(page)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(status_code=204)


def _add_api(app: FastAPI, service: Service, work: WorkQueue, limits: Limits, token: str | None) -> None:
    """`/health`, `POST /v1/classify` and the examples, described for the OpenAPI schema (bearer token where `token` is set)."""

    @app.get("/health", **endpoint("health", token))
    async def health():
        classes = list(service.classifier.classes_)
        return {"status": "ok", "model": service.model_name, "classes": classes, "max_upload_bytes": limits.max_upload_bytes}

    app.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)  # one operation in the schema

    @app.post("/v1/classify", **endpoint("classify", token))
    async def classify(request: Request):
        async with upload_form(request, max_files=MAX_FILES, max_fields=4) as form:
            fs = parse_fs(text_field(form, "fs"))
            lead = (text_field(form, "lead") or "").strip()[:40] or None
            uploads = form.getlist("files")

            def classify_upload(ticket):  # in a worker thread, once admitted
                with tempfile.TemporaryDirectory(prefix="ecgrhythm-upload-") as tmp:
                    target = Path(tmp) / pick_record(save_uploads(uploads, Path(tmp)), fs)
                    return AnswerResponse(service.classify_path(target, fs, ticket=ticket, lead=lead, hide=tmp))

            return await work.run(request, classify_upload)

    @app.get("/v1/examples", **endpoint("examples", token))
    async def examples():
        return {"examples": [{"name": name, "reference": label} for name, (_, label) in service.examples.items()]}

    @app.get("/v1/examples/{name}", **endpoint("example", token))
    async def classify_example(name: str, request: Request):
        if name not in service.examples:
            known = ", ".join(service.examples) or "none (no example data on this server)"
            raise HTTPException(404, f"unknown example {name[:40]!r}: choose one of {known}")
        path, label = service.examples[name]

        def classify_example(ticket):
            return AnswerResponse({**service.classify_path(path, None, ticket=ticket, hide=str(path.parent)), "reference": label})

        return await work.run(request, classify_example)


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
    limits = getattr(getattr(app, "state", None), "limits", None)  # an app of create_app: its timeouts
    config = uvicorn_config(app, limits, log_level="warning", lifespan="on") if limits else uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
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
