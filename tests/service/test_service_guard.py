"""The service's limits and request checks, over real HTTP on loopback with the tiny model and real CinC 2017 records."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")

from ecgrhythm.service.app import TOKEN_ENV, background_server, create_app  # noqa: E402
from ecgrhythm.service.limits import Limits  # noqa: E402
from ecgrhythm.service.work import ClientGone  # noqa: E402

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.5


@pytest.fixture(scope="module")
def server(tiny_model_dir, cinc2017_dir):
    """`(base_url, app)`: one request at a time, short timeouts, no token."""
    app = create_app(
        tiny_model_dir,
        token="",
        examples_dir=cinc2017_dir,
        max_concurrent=1,
        header_timeout_s=HEADER_TIMEOUT_S,
        body_timeout_s=BODY_TIMEOUT_S,
        keep_alive_s=1,
    )
    with background_server(app) as url:
        yield url, app


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server[0], timeout=60) as c:
        yield c


def _address(url):
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _upload(cinc2017_dir, name="A00001"):
    return [("files", (f"{name}{s}", (cinc2017_dir / f"{name}{s}").read_bytes())) for s in (".hea", ".mat")]


def test_head_health_answers_200(client):
    r = client.head("/health")
    assert r.status_code == 200 and r.content == b""


def test_host_header_must_name_this_server(server, client, tiny_model_dir):
    for host in ("evil.example", "evil.example:80", "127.0.0.2"):
        r = client.get("/health", headers={"Host": host})
        assert r.status_code == 400 and "Host header" in r.json()["detail"] and "--allowed-hosts" in r.json()["detail"], host
    host, port = _address(server[0])
    assert client.get("/health", headers={"Host": f"localhost:{port}"}).status_code == 200
    app = create_app(tiny_model_dir, token="", examples_dir=Path("/nonexistent"), allowed_hosts=["ecg.example"])
    with background_server(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        assert c.get("/health", headers={"Host": "ecg.example"}).status_code == 200
        assert c.get("/health").status_code == 400  # 127.0.0.1 is no longer in the list


def test_cross_site_form_posts_are_refused_without_a_token(server, client, cinc2017_dir):
    files = _upload(cinc2017_dir)
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": server[0]},
        {"Origin": server[0].replace("http:", "https:")},
    ):
        r = client.post("/v1/classify", files=files, headers=headers)
        assert r.status_code == 403 and "cross-site" in r.json()["detail"], headers
    for headers in ({}, {"Origin": server[0], "Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}):
        assert client.post("/v1/classify", files=files, headers=headers).status_code == 200, headers
    assert client.get("/v1/examples", headers={"Origin": "http://evil.example"}).status_code == 200  # reads are not form posts


def test_a_token_with_surrounding_whitespace_is_refused(tiny_model_dir, monkeypatch):
    with pytest.raises(ValueError, match="whitespace"):
        create_app(tiny_model_dir, token="secret\n")
    monkeypatch.setenv(TOKEN_ENV, " secret")
    with pytest.raises(ValueError, match=rf"\${TOKEN_ENV}.*whitespace"):
        create_app(tiny_model_dir)


@pytest.mark.parametrize(
    "limit",
    [
        "max_concurrent",
        "max_queue",
        "max_bodies",
        "min_body_rate",
        "max_batch",
        "header_timeout_s",
        "body_timeout_s",
        "body_grace_s",
        "deadline_s",
        "seconds_per_sample",
        "batch_window_s",
        "keep_alive_s",
        "max_upload_bytes",
    ],
)
def test_limits_must_be_positive(tiny_model_dir, limit):
    with pytest.raises(ValueError, match=f"`{limit}`"):
        create_app(tiny_model_dir, token="", **{limit: 0})


def test_limits_come_as_one_object_or_by_name(tiny_model_dir):
    grouped = Limits(max_upload_bytes=1000, max_concurrent=2, allowed_hosts=("ecg.example",))
    assert create_app(tiny_model_dir, token="", limits=grouped).state.limits == grouped
    by_name = create_app(tiny_model_dir, token="", limits=grouped, max_concurrent=3, allowed_hosts=None).state.limits
    assert (by_name.max_upload_bytes, by_name.max_concurrent, by_name.allowed_hosts) == (1000, 3, ("ecg.example",))
    assert create_app(tiny_model_dir, token="").state.limits == Limits()
    with pytest.raises(TypeError, match="'max_upload_mb'.*max_upload_bytes"):
        create_app(tiny_model_dir, token="", max_upload_mb=5)


def test_a_client_trickling_its_headers_is_cut_off(server):
    with socket.create_connection(_address(server[0]), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        start = time.monotonic()
        closed = None
        while time.monotonic() - start < 10:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                sock.settimeout(0.25)
                if sock.recv(1024) == b"":
                    closed = time.monotonic() - start
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = time.monotonic() - start
                break
    assert closed is not None and closed >= HEADER_TIMEOUT_S * 0.8  # cut off within the 10 s loop, not before the timeout


def test_a_slow_body_gets_408(server):
    with socket.create_connection(_address(server[0]), timeout=10) as sock:
        head = b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 5000\r\n\r\n"
        start = time.monotonic()
        sock.sendall(head + b"--x\r\n")
        reply = sock.recv(4096)
        elapsed = time.monotonic() - start
        while chunk := sock.recv(4096):  # the body may come in a later segment; the server closes the connection after it
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 408") and b"--body-timeout" in reply
    assert elapsed >= BODY_TIMEOUT_S * 0.8  # not before the timeout; how soon after depends on the load (the socket gives up at 10 s)


def test_work_for_a_client_that_left_stops_before_the_model(server, client, monkeypatch):
    service = server[1].state.service
    calls, outcomes, tickets = [], [], []
    release = threading.Event()
    original_predict, original_classify = service.classifier.predict_prepared, service.classify_record

    def classify_record(record, ticket, **options):
        tickets.append(ticket)
        release.wait(30)  # the client leaves while its record is being prepared
        try:
            return original_classify(record, ticket, **options)
        except BaseException as exc:
            outcomes.append(type(exc))
            raise

    monkeypatch.setattr(service.classifier, "predict_prepared", lambda signals, **kwargs: calls.append(1) or original_predict(signals, **kwargs))
    monkeypatch.setattr(service, "classify_record", classify_record)
    with socket.create_connection(_address(server[0]), timeout=10) as sock:
        sock.sendall(b"GET /v1/examples/A00001 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        _wait_for(lambda: tickets)
    _wait_for(lambda: tickets[0].cancelled.is_set())
    release.set()
    _wait_for(lambda: outcomes)
    assert outcomes == [ClientGone] and calls == []
    monkeypatch.setattr(service, "classify_record", original_classify)
    assert client.get("/v1/examples/A00001").status_code == 200 and calls  # the server goes on


def test_non_finite_model_output_is_a_422_naming_the_file(tiny_model_dir, cinc2017_dir):
    from ecgrhythm.inference.classifier import RhythmClassifier

    broken = RhythmClassifier.load(tiny_model_dir)
    for v in broken.model_.trainable_variables:
        v.assign(np.full(v.shape, np.nan, dtype=v.dtype))
    app = create_app(tiny_model_dir, token="", classifier=broken, examples_dir=Path("/nonexistent"))
    with background_server(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/v1/classify", files=_upload(cinc2017_dir, "A00003"))
    assert r.status_code == 422
    assert r.json()["detail"].startswith("A00003.hea: cannot be classified: the model gave non-finite probabilities")


def test_reader_errors_never_show_a_server_path(client):
    # An upper-case header suffix makes the WFDB reader work in a folder of its own; wfdb names its file on failure.
    header = b"r 1 300 3000\nr.dat 508 1000/mV 10 0 0 0 0 ECG\n"
    r = client.post("/v1/classify", files=[("files", ("r.HEA", header)), ("files", ("r.dat", bytes(range(256)) * 16))])
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail.startswith("r.HEA: ") and "r.dat" in detail
    assert tempfile.gettempdir() not in detail and "ecgrhythm-" not in detail
