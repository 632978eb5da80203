"""The service's API description: OpenAPI schema, response models and the offline `/docs` page.

`GET /docs` is Swagger UI served from this server alone: its script and style come from the installed
`swagger-ui-bundle` package, mounted under `/docs/static/`, and the page's start-up script is a file of
`ecgrhythm/service/static` (`docs.js`), not an inline script, so the page keeps the service's
Content-Security-Policy (`default-src 'self'`) whole. FastAPI's own page is off because it fetches Swagger UI
from a CDN and starts it with an inline script, which that policy blocks.

The bundled Swagger UI (4.x) reads OpenAPI 3.0 only, so `/openapi.json` is written as OpenAPI 3.0.3
(:func:`openapi_30`: pydantic's `anyOf [..., {"type": "null"}]` becomes `nullable: true`). `/docs`, its
assets and `/openapi.json` need no token: they describe the API and hold no data, and Swagger UI must read
the schema before anyone can press its Authorize button, which then sends the bearer token declared in the
schema (`bearer`, on the `/v1/` endpoints of a server started with a token) with every call it makes.
"""

from __future__ import annotations

from importlib import resources

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

__all__ = ["DOCS_PATHS", "DOCS_PREFIX", "ENDPOINTS", "ErrorDetail", "Classification", "add_docs", "endpoint", "errors", "openapi_30"]

DOCS_PATHS = ("/docs", "/openapi.json")
DOCS_PREFIX = "/docs/static/"  # Swagger UI's script and style, from the swagger-ui-bundle package
OPENAPI_VERSION = "3.0.3"

BEARER = HTTPBearer(
    auto_error=False,  # the Guard middleware checks the token; this only declares it in the schema
    scheme_name="bearer",
    description="The server's access token (`ecgrhythm serve --token` or `$ECGRHYTHM_TOKEN`), sent as `Authorization: Bearer TOKEN`.",
)


class ErrorDetail(BaseModel):
    """Every error the service answers with."""

    detail: str = Field(description="What went wrong and how to fix it; names the uploaded file, never a server path.")


class Health(BaseModel):
    status: str = Field(description="`ok` once the model is loaded.")
    model: str = Field(description="Name of the loaded model folder.")
    classes: list[str] = Field(description="The model's classes, in the order of its probabilities.")
    max_upload_bytes: int = Field(description="Largest request body the server accepts (413 above it).")


class Example(BaseModel):
    name: str = Field(description="Record name, to pass to `GET /v1/examples/{name}`.")
    reference: str | None = Field(description="The record's label in the data's `REFERENCE.csv`, if it has one.")


class ExampleList(BaseModel):
    examples: list[Example]


class Segment(BaseModel):
    start_s: float
    end_s: float
    label: str
    probabilities: dict[str, float] = Field(description="Class to probability for this window (the networks' own, uncalibrated).")
    calibrated: bool


class Episode(BaseModel):
    start_s: float
    end_s: float
    label: str = Field(description="The rhythm class of the episode (`A`: atrial fibrillation).")
    probability: float = Field(description="The mean probability of that class over the episode.")
    lead: str | None = Field(None, description="The lead the episode was found on (a long record's lead is chosen per 10-minute stretch).")


class DisplaySignal(BaseModel):
    fs: float = Field(description="Sampling rate of `values` (at most 250 Hz).")
    leads: list[str]
    values: list[list[float]] = Field(description="`values[i]`: the samples of lead `leads[i]`, in mV.")


class Classification(BaseModel):
    record: str = Field(description="The record's name.")
    label: str = Field(
        description="The record's class. For a record longer than the networks' training length it follows the record's AF episodes: "
        "A when they hold AF (`record_class` paroxysmal or persistent), else the most probable of the other classes."
    )
    probabilities: dict[str, float] = Field(description="Class to probability for the whole record (calibrated where the model is).")
    classes: list[str]
    lead: str | None = Field(description="The lead a single-lead model took.")
    fs: float = Field(description="The record's sampling rate (Hz).")
    duration_s: float
    window_s: float = Field(description="About how long each of `segments` is.")
    segments: list[Segment] = Field(description="Consecutive windows covering the record: a rhythm timeline.")
    episodes: list[Episode] | None = Field(
        description="Rhythm episodes covering the record, AF ones to the beat; null for a model without one lead and an `A` class."
    )
    af_burden: float | None = Field(description="Share of the record's time in AF (0 to 1); null as `episodes`.")
    record_class: str | None = Field(
        description="non-AF, paroxysmal or persistent (CPSC 2021), for a record longer than the networks' training length; null otherwise."
    )
    picture: str | None = Field(
        None,
        description="For a record longer than the networks' training length, the picture of `ecgrhythm episodes --plot` (its rhythm "
        "strip, AF episodes and 8 s of ECG) as a `data:image/png;base64,` URL; null otherwise.",
    )
    signal: DisplaySignal = Field(description="The record for drawing.")


class ExampleClassification(Classification):
    reference: str | None = Field(description="The record's label in `REFERENCE.csv`, if it has one.")


_MEANINGS = {
    400: "A malformed request: a `Host` header that does not name this server, a bad `Content-Length`, a multipart body "
    "without its closing boundary (cut short), no file, an unsupported file type or a set of files that is not one record.",
    401: "Missing or wrong access token (only on a server started with one): send `Authorization: Bearer TOKEN`.",
    403: "An unsafe request (POST) sent by a web page of another site.",
    404: "No example of that name on this server.",
    408: "The request body arrived too slowly: under the server's `--min-body-rate` after its first seconds, "
    "or not complete within its `--body-timeout`.",
    413: "The request body is larger than the server's `--max-upload-mb` (see `max_upload_bytes` of `/health`), "
    "or the record is too long to classify within the server's `--deadline`.",
    415: "A compressed body (`Content-Encoding` other than identity): send the files as they are.",
    422: "The record cannot be read or used (the message names the uploaded file), `fs` is not a usable rate, "
    "a header-less file came without `fs`, or the model gives no finite probabilities for it.",
    500: "An unexpected failure; the server logged it.",
    503: "The server is busy: `--max-bodies` uploads arriving already, `--max-queue` requests waiting for one of its "
    "`--max-concurrent` slots, or this request waited until its `--deadline`: try again after `Retry-After` seconds.",
    504: "The classification did not finish within the server's `--deadline` and was stopped.",
}


def errors(*codes: int) -> dict:
    """The `responses` of an endpoint that can answer with the error `codes` (each a JSON `{"detail": ...}`)."""
    responses = {}
    for code in codes:
        responses[code] = {"model": ErrorDetail, "description": _MEANINGS[code]}
        if code == 503:
            responses[code]["headers"] = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}
    return responses


CLASSIFY_REQUEST = {
    "requestBody": {
        "required": True,
        "description": "One record as a multipart form: a WFDB header with its signal files (`A00001.hea` and `A00001.mat`, "
        "or `.hea` and `.dat`), or one `.mat`, `.csv` or `.npy` signal file with its sampling rate in `fs`. At most 8 files.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "The record's files (the field repeated for each).",
                        },
                        "fs": {
                            "type": "number",
                            "description": "Sampling rate in Hz of a file without a header (`.mat`, `.csv`, `.npy`); ignored with a WFDB header.",
                        },
                        "lead": {
                            "type": "string",
                            "description": "The lead a single-lead model takes, by name (`II`) or 0-based index; default lead I, else the first, unless it is unusable and another is clean.",
                        },
                    },
                }
            }
        },
    }
}


def _endpoint(summary: str, description: str, codes: tuple[int, ...], *, secured: bool = True, **more) -> dict:
    return {"summary": summary, "description": description, "responses": errors(*codes), "secured": secured, **more}


ENDPOINTS = {
    "health": _endpoint(
        "Whether the server is up, and its model",
        "The loaded model's name and classes and the upload limit. Never needs a token (for load balancers and the page).",
        (400, 500),
        secured=False,
        response_model=Health,
    ),
    "classify": _endpoint(
        "Classify an uploaded record",
        "Reads the uploaded record and answers its class and probabilities (as `ecgrhythm classify` gives them for the same file), "
        "a rhythm timeline of about 10 s windows, its rhythm episodes and AF burden, and the signal to draw. "
        "The body is checked while it arrives: over the size limit it is refused with 413, too slow with 408. Once complete, the "
        "request waits its turn in a bounded queue and is answered within the server's deadline, or refused with 503 (busy, with "
        "`Retry-After`), 413 (a record too long to classify within the deadline) or 504 (work stopped at the deadline).",
        (400, 401, 403, 408, 413, 415, 422, 500, 503, 504),
        response_model=Classification,
        openapi_extra=CLASSIFY_REQUEST,
    ),
    "examples": _endpoint(
        "List the example records",
        "A few records of the server's example data (the CinC 2017 records by default; none if it has no data), with their reference labels.",
        (400, 401, 500),
        response_model=ExampleList,
    ),
    "example": _endpoint(
        "Classify an example record",
        "Classifies the example record `name` as `POST /v1/classify` would, and adds its `reference` label.",
        (400, 401, 404, 422, 500, 503, 504),
        response_model=ExampleClassification,
    ),
}


def endpoint(name: str, token: str | None) -> dict:
    """The keyword arguments of FastAPI's route decorator for the endpoint `name` (see `ENDPOINTS`) on a server
    with the access `token`: its summary, description, responses, and the bearer token where the server asks for one."""
    docs = dict(ENDPOINTS[name])
    if docs.pop("secured") and token:
        return {**docs, "dependencies": [Depends(BEARER)]}
    return {**docs, "responses": {code: response for code, response in docs["responses"].items() if code != 401}}


def openapi_30(node):
    """An OpenAPI 3.1 schema (or part of one) with its `null` types written as OpenAPI 3.0's `nullable`.

    Example:
        >>> openapi_30({"anyOf": [{"type": "number"}, {"type": "null"}], "title": "Af Burden"})
        {'title': 'Af Burden', 'type': 'number', 'nullable': True}
    """
    if isinstance(node, list):
        return [openapi_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        one = rest[0] if len(rest) == 1 else {"anyOf": rest}
        one = {"allOf": [one]} if "$ref" in one else one  # a $ref ignores the keywords beside it
        node = {**{key: value for key, value in node.items() if key != "anyOf"}, **one, "nullable": True}
    return {key: openapi_30(value) for key, value in node.items()}


def add_docs(app: FastAPI) -> None:
    """`GET /docs` (Swagger UI from this server's files), its assets under `/docs/static/`, and `GET /openapi.json` in OpenAPI 3.0."""
    from swagger_ui_bundle import swagger_ui_path

    page = resources.files("ecgrhythm.service").joinpath("static", "docs.html").read_text(encoding="utf-8")

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = {**openapi_30(schema), "openapi": OPENAPI_VERSION}
        return app.openapi_schema

    app.openapi = openapi
    app.mount(DOCS_PREFIX.rstrip("/"), StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return HTMLResponse(page)
