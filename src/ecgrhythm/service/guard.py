"""What stands between the network and the service's endpoints: limits, timeouts and request checks.

:class:`Guard` is the ASGI middleware of :func:`ecgrhythm.service.app.create_app`; :func:`uvicorn_config`
the uvicorn settings of `ecgrhythm serve` (and of `background_server`), with a protocol that also
times out the request head. The limits are :class:`ecgrhythm.service.limits.Limits`.

Unsafe requests (POST and the like) from a web page of another site are refused (403), with or
without a token: browsers send `Sec-Fetch-Site` and `Origin`, which must name this server.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import socket

from ecgrhythm.service.bodies import DRAIN_BYTES, BodyPool, BodyTimeout, drain, timed_receive, too_large
from ecgrhythm.service.limits import LOOPBACK_HOSTS, Limits
from ecgrhythm.service.work import RETRY_AFTER_S

__all__ = ["Guard", "default_allowed_hosts", "uvicorn_config"]

SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_SAFE_METHODS = (b"GET", b"HEAD", b"OPTIONS")


def default_allowed_hosts(host: str) -> tuple[str, ...]:
    """The `Host` names a server listening on `host` answers to: that address, and for a loopback or
    wildcard address (`0.0.0.0`, `::`) the loopback names; a wildcard adds this machine's name and addresses."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_HOSTS:
        return LOOPBACK_HOSTS
    if host not in ("0.0.0.0", "::", ""):
        return (host,)
    names = {*LOOPBACK_HOSTS, socket.gethostname().lower(), socket.getfqdn().lower()}
    try:
        names |= {info[4][0].lower() for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        pass
    return tuple(sorted(names))


async def send_json(send, status: int, detail: str, headers=()) -> None:
    """Send a whole `{"detail": ...}` response through an ASGI `send`."""
    body = json.dumps({"detail": detail}).encode()
    length = str(len(body)).encode()
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), (b"content-length", length), *headers]}
    )
    await send({"type": "http.response.body", "body": body})


def _has_body(headers) -> bool:
    """Whether a request announces a body: a `Content-Length` over 0, or a chunked one."""
    return headers.get(b"content-length", b"0") not in (b"0", b"") or b"chunked" in headers.get(b"transfer-encoding", b"").lower()


def _host_name(value: bytes) -> str:
    """The name in a `Host` header value or an origin's authority, without the port."""
    text = value.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


class Guard:
    """ASGI middleware: host and origin checks, the bearer token, the pool of bodies and their limits, security headers.

    The checks run before the application reads any of the body: a declared
    `Content-Length` over the limit is refused without passing the body on, and
    a body without one (chunked) is counted as it arrives and refused when it
    passes the limit. A request with a body takes a place in the pool of
    bodies being received (`max_bodies`; one more gets 503) and gives it back
    once its body is complete, before any classification. A refused request
    is answered at once and its connection kept: the server drops the rest of
    its body (within the head timeout of the next request), so that the client,
    which is still sending, receives the answer instead of a reset connection.
    Only a 413 closes the connection, after its body is read and dropped (up to
    `DRAIN_BYTES`, on the body's clocks).

    Args:
        app: the ASGI application.
        token: bearer token required by every path but `public_paths` and those under `public_prefixes`; `None` for none.
        limits: the :class:`Limits`.
        public_paths: paths that never need the token.
        public_prefixes: starts of paths that never need the token (static files).
        token_hint: how the server was given its token, for the 401 message.
    """

    def __init__(
        self, app, *, token: str | None, limits: Limits, public_paths=(), public_prefixes=("/static/",), token_hint: str = "the server's token"
    ):
        self.app = app
        self.token = token.encode() if token else None
        self.limits = limits
        self.public_paths = tuple(public_paths)
        self.public_prefixes = tuple(public_prefixes)
        self.token_hint = token_hint
        self.bodies = BodyPool(limits.max_bodies)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_secure(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        headers = dict(scope.get("headers") or [])
        refusal = self._refusal(scope, headers)
        if refusal is None and _has_body(headers) and self.bodies.full():
            # No `Connection: close`: the server drops the rest of the body after answering and keeps the connection,
            # so a client still sending reads the 503 (a close with unread data would reset the connection instead)
            detail = f"the server is receiving {self.bodies.active} uploads already (its limit, --max-bodies): try again in a moment"
            refusal = 503, detail, [(b"retry-after", str(RETRY_AFTER_S).encode())]
        if refusal is not None:
            if refusal[0] == 413 and self._drains(headers):
                with contextlib.suppress(BodyTimeout):
                    await drain(timed_receive(receive, self.limits, limited=False))
            return await send_json(send_secure, *refusal)
        if not _has_body(headers):
            return await self.app(scope, timed_receive(receive, self.limits), send_secure)
        give_back = self.bodies.take()
        try:
            await self.app(scope, timed_receive(receive, self.limits, on_done=give_back), send_secure)
        finally:
            give_back()

    def _refusal(self, scope, headers) -> tuple | None:
        """`(status, detail, headers)` of a request refused on its head alone, else None."""
        limits = self.limits
        host = _host_name(headers.get(b"host", b""))
        if "*" not in limits.allowed_hosts and host not in limits.allowed_hosts:
            shown = headers.get(b"host", b"").decode("latin-1")[:80]
            return (
                400,
                f"the Host header {shown!r} does not name this server: use {limits.allowed_hosts[0]}, or start it with --allowed-hosts NAME",
                (),
            )
        if scope.get("method", "GET").encode() not in _SAFE_METHODS:
            site = headers.get(b"sec-fetch-site", b"").lower()
            origin = headers.get(b"origin")
            cross_site = site not in (b"", b"same-origin", b"none")
            if origin is not None:
                scheme, _, authority = origin.partition(b"://")
                cross_site |= scheme.decode("latin-1").lower() != scope.get("scheme", "http") or _host_name(authority) != host
            if cross_site:
                return 403, "cross-site request refused: send it from the service's own page or a non-browser client", ()
        path = scope.get("path", "")
        if self.token and not (path in self.public_paths or path.startswith(self.public_prefixes)) and not self._authorised(headers):
            detail = f"missing or wrong access token: send 'Authorization: Bearer TOKEN' ({self.token_hint})"
            return 401, detail, [(b"www-authenticate", b"Bearer")]
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return 400, f"invalid Content-Length header {declared.decode('latin-1')[:40]!r}", ()
            if int(declared) > limits.max_upload_bytes:
                return 413, too_large(limits.max_upload_bytes), [(b"connection", b"close")]
        return None

    def _drains(self, headers) -> bool:
        """Whether the body of a request refused with 413 (whose connection then closes) is read and dropped first.

        A server that closes while the body is still arriving makes the
        client's system reset the connection, and the client, still sending,
        reads no answer. Not drained: a client waiting for `100 Continue` (it
        sends nothing unless asked), and a declared body over
        `max_upload_bytes + DRAIN_BYTES`.
        """
        if b"100-continue" in headers.get(b"expect", b"").lower():
            return False
        declared = headers.get(b"content-length")
        return declared is not None and declared.isdigit() and int(declared) <= self.limits.max_upload_bytes + DRAIN_BYTES

    def _authorised(self, headers) -> bool:
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)


def _header_timeout_protocol(header_timeout_s: float):
    """uvicorn's h11 protocol, closing a connection whose request head takes over `header_timeout_s` to arrive.

    uvicorn's own `timeout_keep_alive` only runs while a connection is idle
    between requests, and stops at the first byte: a client that trickles a
    header line would hold the connection for ever.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11Protocol(H11Protocol):
        _head_timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm_head_timer()

        def on_response_complete(self):
            if not self.transport.is_closing():
                self._arm_head_timer()  # for the next request; a pipelined one already here disarms it
            super().on_response_complete()

        def handle_events(self):
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a request head arrived
                self._disarm_head_timer()

        def connection_lost(self, exc):
            self._disarm_head_timer()
            super().connection_lost(exc)

        def _arm_head_timer(self):
            self._disarm_head_timer()
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _disarm_head_timer(self):
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self):
            self._head_timer = None
            if not self.transport.is_closing():
                self.logger.info("closing a connection whose request head did not arrive within %s s", header_timeout_s)
                self.transport.close()

    return HeaderTimeoutH11Protocol


def uvicorn_config(app, limits: Limits, **kwargs):
    """A `uvicorn.Config` for `app` with the timeouts of `limits` (other settings from `kwargs`)."""
    import uvicorn

    return uvicorn.Config(app, http=_header_timeout_protocol(limits.header_timeout_s), timeout_keep_alive=limits.keep_alive_s, **kwargs)
