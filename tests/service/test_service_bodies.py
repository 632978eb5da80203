"""Request bodies arrive in their own bounded pool, outside the classification slots: slow senders never hold a slot."""

from __future__ import annotations

import contextlib
import logging
import socket
import time

import pytest

httpx = pytest.importorskip("httpx")

from ecgrhythm.service.app import background_server, create_app  # noqa: E402

SLOW_HEAD = b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 5000\r\n\r\n--x\r\n"


def _address(url):
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _upload(cinc2017_dir, name="A00001"):
    return [("files", (f"{name}{s}", (cinc2017_dir / f"{name}{s}").read_bytes())) for s in (".hea", ".mat")]


def _reply(sock) -> bytes:
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
    return reply


def test_slow_senders_hold_places_in_the_pool_of_bodies_never_a_slot(tiny_model_dir, cinc2017_dir):
    # One classification slot, five bodies at once, and a long grace so that the slow senders stay for the whole test.
    app = create_app(tiny_model_dir, token="", examples_dir=cinc2017_dir, max_concurrent=1, max_bodies=5, body_grace_s=60, body_timeout_s=60)
    with background_server(app) as url, httpx.Client(base_url=url, timeout=60) as client, contextlib.ExitStack() as stack:
        slow = [stack.enter_context(socket.create_connection(_address(url), timeout=60)) for _ in range(4)]
        for sock in slow:
            sock.sendall(SLOW_HEAD)  # then nothing more: 1 byte a second would do the same
        assert client.post("/v1/classify", files=_upload(cinc2017_dir)).status_code == 200  # the fifth place, then the one slot
        assert client.get("/v1/examples/A00001").status_code == 200  # no body: never waits for the pool
        fifth = stack.enter_context(socket.create_connection(_address(url), timeout=60))
        fifth.sendall(SLOW_HEAD)
        for _ in range(200):  # the server takes the fifth head soon; until then the upload may still find a place
            busy = client.post("/v1/classify", files=_upload(cinc2017_dir))
            if busy.status_code == 503:
                break
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1" and "--max-bodies" in busy.json()["detail"]
        assert client.get("/health").status_code == 200
        fifth.close()
        for _ in range(200):
            again = client.post("/v1/classify", files=_upload(cinc2017_dir))
            if again.status_code != 503:
                break
        assert again.status_code == 200


def _responses(sock, count: int) -> bytes:
    """Read until `count` whole JSON responses (each with a Content-Length) have arrived."""
    data = b""
    while True:
        rest, done = data, 0
        while b"\r\n\r\n" in rest:
            head, rest = rest.split(b"\r\n\r\n", 1)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            if len(rest) < length:
                break
            rest, done = rest[length:], done + 1
        if done >= count:
            return data
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection after {done} of {count} responses: {data[:300]!r}"
        data += chunk


def test_an_upload_refused_while_its_body_arrives_reads_the_503_and_keeps_its_connection(tiny_model_dir):
    # The pool's one place is taken; the refused client sends its body after the server has answered.
    app = create_app(tiny_model_dir, token="", examples_dir=None, max_bodies=1, body_grace_s=60, body_timeout_s=60)
    head = b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
    with background_server(app) as url, socket.create_connection(_address(url), timeout=60) as slow:
        slow.sendall(SLOW_HEAD)
        with socket.create_connection(_address(url), timeout=60) as sock:
            sock.sendall(head)
            time.sleep(0.2)  # a server that closed after answering, with the body unread, would reset the connection now
            for _ in range(10):
                sock.sendall(b"x" * 10_000)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # the same connection, once the body is dropped
            replies = _responses(sock, 2)
    assert replies.startswith(b"HTTP/1.1 503") and b"--max-bodies" in replies and b"retry-after: 1" in replies.lower()
    assert replies.count(b"HTTP/1.1 200") == 1


def test_a_body_under_the_minimum_rate_gets_408_long_before_the_body_timeout(tiny_model_dir):
    app = create_app(tiny_model_dir, token="", examples_dir=None, body_grace_s=0.3, min_body_rate=1000, body_timeout_s=120)
    with background_server(app) as url, socket.create_connection(_address(url), timeout=60) as sock:
        sock.sendall(SLOW_HEAD)
        sock.sendall(b"C")
        reply = _reply(sock)  # well before the 120 s body timeout, or the socket's 60 s timeout fails the test
    assert reply.startswith(b"HTTP/1.1 408") and b"--min-body-rate" in reply and b"application/json" in reply


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_a_client_leaving_during_its_upload_logs_one_line_without_a_traceback(tiny_model_dir):
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "ecgrhythm.service")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    try:
        app = create_app(tiny_model_dir, token="", examples_dir=None)
        with background_server(app) as url:
            with socket.create_connection(_address(url), timeout=60) as sock:
                sock.sendall(SLOW_HEAD + b"Content-Disposition: form-data")
            with httpx.Client(base_url=url, timeout=60) as client:
                for _ in range(500):  # the server notices the disconnect soon
                    if any("disconnected" in r.getMessage() for r in handler.records):
                        break
                    client.get("/health")
    finally:
        for lg, level in zip(loggers, levels):
            lg.removeHandler(handler)
            lg.setLevel(level)
    gone = [r for r in handler.records if "disconnected" in r.getMessage()]
    assert len(gone) == 1 and "POST /v1/classify" in gone[0].getMessage()
    assert not [r for r in handler.records if r.exc_info or r.levelno >= logging.ERROR]
