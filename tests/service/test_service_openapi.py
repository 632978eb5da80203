"""The service's OpenAPI schema and its offline `/docs` page, over real HTTP on loopback with the tiny model."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from fastapi.routing import APIRoute

httpx = pytest.importorskip("httpx")

from ecgrhythm.service.app import background_server, create_app  # noqa: E402
from ecgrhythm.service.guard import SECURITY_HEADERS  # noqa: E402
from ecgrhythm.service.openapi import openapi_30  # noqa: E402

TOKEN = "docs-test-token"


@pytest.fixture(scope="module")
def served(tiny_model_dir, cinc2017_dir):
    """`(client, app)` of a server that asks for a token."""
    app = create_app(tiny_model_dir, token=TOKEN, examples_dir=cinc2017_dir)
    with background_server(app) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client, app


@pytest.fixture(scope="module")
def schema(served):
    r = served[0].get("/openapi.json")  # no token: the schema is public
    assert r.status_code == 200
    return r.json()


class _Assets(HTMLParser):
    """The `src` of every script and the `href` of every stylesheet and icon of a page, and its inline scripts."""

    def __init__(self):
        super().__init__()
        self.urls, self.inline_scripts, self._in_script = [], 0, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in attrs
            if "src" in attrs:
                self.urls.append(attrs["src"])
        elif tag == "link":
            self.urls.append(attrs["href"])

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag):
        self._in_script = False


def test_docs_page_loads_its_assets_from_this_server_without_a_token(served):
    client, _ = served
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for name, value in SECURITY_HEADERS:  # the page keeps the service's policy: scripts from this server only
        assert r.headers[name.decode()] == value.decode()
    page = _Assets()
    page.feed(r.text)
    assert page.inline_scripts == 0, "an inline script would be blocked by the Content-Security-Policy"
    assert len(page.urls) == 4  # Swagger UI's style and script, the icon, and the start-up script
    kinds = set()
    for url in page.urls:
        assert url.startswith("/") and not url.startswith("//"), f"{url} is not served by the app itself"
        asset = client.get(url)
        assert asset.status_code == 200, url
        kinds.add(asset.headers["content-type"].split(";")[0])
    assert {"text/css", "text/javascript"} <= kinds
    assert "SwaggerUIBundle" in client.get("/static/docs.js").text
    assert client.get("/v1/examples").status_code == 401  # the API itself still asks for the token


def test_every_endpoint_is_described_with_its_responses(served, schema):
    _, app = served
    assert schema["openapi"].startswith("3.0."), "the bundled Swagger UI (4.x) reads OpenAPI 3.0 only"
    routes = {
        (route.path, method.lower()) for route in app.routes if isinstance(route, APIRoute) and route.include_in_schema for method in route.methods
    }
    listed = {(path, method) for path, operations in schema["paths"].items() for method in operations}
    assert listed == routes - {("/health", "head")}
    assert {path for path, _ in listed} == {"/health", "/v1/classify", "/v1/examples", "/v1/examples/{name}"}
    for path, method in listed:
        operation = schema["paths"][path][method]
        assert operation["summary"] and len(operation["description"]) > 40, path
        assert "200" in operation["responses"] and "500" in operation["responses"]
        for code, response in operation["responses"].items():
            assert response["description"] and response["description"] != "Successful Response" or code == "200", (path, code)
        assert ("401" in operation["responses"]) == path.startswith("/v1/")
        assert (operation.get("security") == [{"bearer": []}]) == path.startswith("/v1/")
    bearer = schema["components"]["securitySchemes"]["bearer"]
    assert bearer["type"] == "http" and bearer["scheme"] == "bearer" and "Authorization: Bearer" in bearer["description"]
    busy = schema["paths"]["/v1/classify"]["post"]["responses"]["503"]
    assert "Retry-After" in busy["headers"]
    body = schema["paths"]["/v1/classify"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["files"] and set(body["properties"]) == {"files", "fs", "lead"}
    assert body["properties"]["files"]["items"] == {"type": "string", "format": "binary"}
    assert '"null"' not in str(schema).replace("'", '"'), "OpenAPI 3.0 has no null type"
    classification = schema["components"]["schemas"]["Classification"]
    assert classification["properties"]["af_burden"] == {**classification["properties"]["af_burden"], "type": "number", "nullable": True}


def test_the_status_codes_returned_are_those_documented(served, schema, tmp_path):
    client, _ = served
    auth = {"Authorization": f"Bearer {TOKEN}"}
    bad = tmp_path / "notes.csv"
    bad.write_text("time,value\nnoon,high\n")
    answers = {
        ("/v1/examples", "get"): [client.get("/v1/examples"), client.get("/v1/examples", headers=auth)],
        ("/v1/examples/{name}", "get"): [client.get("/v1/examples/A99999", headers=auth), client.get("/v1/examples/A00001", headers=auth)],
        ("/v1/classify", "post"): [
            client.post("/v1/classify", headers=auth, data={"fs": "300"}),
            client.post("/v1/classify", headers=auth, files=[("files", ("notes.csv", bad.read_bytes()))], data={"fs": "300"}),
            client.post("/v1/classify", headers=auth, files=[("files", ("notes.csv", bad.read_bytes()))], data={"fs": "-1"}),
            client.post("/v1/classify", headers={**auth, "Origin": "https://elsewhere.example"}, data={"fs": "300"}),
        ],
        ("/health", "get"): [client.get("/health"), client.get("/health", headers={"Host": "elsewhere.example"})],
    }
    seen = set()
    for (path, method), responses in answers.items():
        for r in responses:
            seen.add(r.status_code)
            assert str(r.status_code) in schema["paths"][path][method]["responses"], (path, r.status_code, r.text[:200])
            assert r.status_code == 200 or set(r.json()) == {"detail"}
    assert seen == {200, 400, 401, 403, 404, 422}


def test_a_server_without_a_token_declares_none(tiny_model_dir):
    app = create_app(tiny_model_dir, token="", examples_dir=None)
    schema = app.openapi()  # the schema needs no loaded model
    assert "securitySchemes" not in schema.get("components", {})
    for operations in schema["paths"].values():
        for operation in operations.values():
            assert "security" not in operation and "401" not in operation["responses"]


def test_openapi_30_writes_null_types_as_nullable():
    ref = {"anyOf": [{"$ref": "#/components/schemas/Signal"}, {"type": "null"}], "description": "d"}
    assert openapi_30({"a": [ref]}) == {"a": [{"description": "d", "allOf": [{"$ref": "#/components/schemas/Signal"}], "nullable": True}]}
    both = {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}
    assert openapi_30(both) == {"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": True}
    assert openapi_30({"type": "string", "enum": ["a"]}) == {"type": "string", "enum": ["a"]}
