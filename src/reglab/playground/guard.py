"""The playground's door: who may read it, who may change its state, and how much.

As Jupyter and TensorBoard do it, every request passes, in order:

- a Host allow-list (localhost, 127.0.0.1, [::1], the address it was bound to, and
  the machine's own names when bound to every address), so a DNS-rebound name that
  points at this machine is refused;
- an access token where the server is reachable from the network (bound to a
  non-loopback address): ``?token=`` in the printed URL, then a cookie, or an
  ``Authorization: token ...`` header;
- for a request that changes state (POST): an Origin that is this server's own (a
  page on another origin, even another port of localhost, is refused), the page's
  per-server secret in ``X-Reglab-Page`` (the page carries it; a cross-site form or
  a page served by an earlier run of the server has none, or a stale one), and a JSON
  body (``application/json``, which a cross-site request may only send after a
  preflight, which is refused) of at most ``MAX_BODY`` bytes.

Each refusal is a 4xx with a one-line JSON ``error`` (and a ``reason`` code).
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable, Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

MAX_BODY = 64 * 1024  # bytes: a request is a few hundred; the largest page ~2 KiB
MAX_DEPTH = 8  # nesting of a body's JSON: the API's deepest is 2
PAGE_HEADER = "x-reglab-page"
TOKEN_COOKIE = "reglab_token"
LOOPBACK = ("localhost", "127.0.0.1", "::1")
CHANGES = ("POST", "PUT", "PATCH", "DELETE")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether only this machine reaches a bind address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(bound: str) -> frozenset[str]:
    """Return the Host names the server answers to when bound to ``bound``."""
    names = {*LOOPBACK, bound.strip("[]").lower()}
    if bound in ("0.0.0.0", "::", ""):  # every address: the machine's own names
        hostname = socket.gethostname()
        names |= {hostname.lower(), socket.getfqdn().lower()}
        with contextlib.suppress(OSError):
            names |= {i[4][0] for i in socket.getaddrinfo(hostname, None)}
    return frozenset(names)


def host_name(host: str) -> str:
    """Return a Host header's name without its port ('[::1]:8765' -> '::1')."""
    if host.startswith("["):
        return host[1 : host.find("]")].lower()
    return host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()


def check_json_shape(body: bytes) -> str | None:
    """Return why a JSON body is refused before parsing (nesting), or None."""
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                return f"the JSON nests deeper than {MAX_DEPTH} levels"
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return None


def _small_number(text: str) -> float | int:
    """Parse a JSON number of at most 32 characters (json's parse_int/parse_float)."""
    if len(text) > 32:
        raise ValueError(f"a number of {len(text)} digits (at most 32)")
    return float(text) if any(c in text for c in ".eE") else int(text)


def loads(body: bytes) -> Any:
    """Return a checked body's JSON; ValueError says why it is refused."""
    problem = check_json_shape(body)
    if problem:
        raise ValueError(problem)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the body must be UTF-8 JSON") from None
    try:
        return json.loads(text, parse_int=_small_number, parse_float=_small_number)
    except json.JSONDecodeError as e:
        raise ValueError(f"the body must be JSON ({e.msg} at {e.pos})") from None


class Guard:
    """ASGI middleware refusing what the module docstring lists, before the app."""

    def __init__(
        self,
        app: Callable,
        *,
        hosts: Iterable[str],
        page_secret: str,
        token: str | None = None,
    ) -> None:
        self.app, self.hosts = app, frozenset(h.lower() for h in hosts)
        self.page_secret, self.token = page_secret, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check an HTTP request and pass it on, or answer the refusal."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
        }
        refused = self.refusal(scope["method"], headers, scope)
        if refused is not None:
            return await _refuse(send, *refused)
        if scope["method"] in CHANGES:
            receive = await _limited(receive, scope, send)
            if receive is None:
                return None
        if self.token is not None and TOKEN_COOKIE not in headers.get("cookie", ""):
            # the page loaded with ?token=: its later requests carry a cookie
            cookie = f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"

            async def send_with_cookie(message: dict) -> None:
                if message["type"] == "http.response.start":
                    headers = [
                        *message.get("headers", []),
                        (b"set-cookie", cookie.encode()),
                    ]
                    message = {**message, "headers": headers}
                await send(message)

            return await self.app(scope, receive, send_with_cookie)
        return await self.app(scope, receive, send)

    def refusal(
        self, method: str, headers: dict[str, str], scope: Scope
    ) -> tuple[int, str, str] | None:
        """Return (status, reason, message) refusing a request, or None."""
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            return (
                403,
                "host",
                (
                    f"Host {host[:80]!r} is not this playground's (it answers to"
                    f" {sorted(self.hosts)}) — open the URL it printed"
                ),
            )
        if self.token is not None:
            given = _token(scope, headers)
            if given is None or not hmac.compare_digest(given, self.token):
                return (
                    403,
                    "token",
                    (
                        "this playground is reachable from the network and needs its"
                        " access token — open the URL with ?token= it printed at start"
                    ),
                )
        if method == "OPTIONS":  # a cross-origin preflight: never allowed
            return 403, "cross_origin", "cross-origin requests are refused (no CORS)"
        if method not in CHANGES:
            return None
        origin = headers.get("origin")
        if origin is not None and origin != f"http://{host}":
            return (
                403,
                "origin",
                (
                    f"Origin {origin[:80]!r} may not change this playground's state —"
                    f" use the page at http://{host}/"
                ),
            )
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return (
                403,
                "origin",
                (
                    "a cross-site request may not change this playground's state — use"
                    " its own page"
                ),
            )
        given = headers.get(PAGE_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.page_secret.encode()):
            return (
                403,
                "stale_page" if given else "page_secret",
                (
                    "this page was loaded from an earlier run of the server (it"
                    " restarted) or from elsewhere: its page secret is not this"
                    " server's — reload the page"
                ),
            )
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return (
                415,
                "json_only",
                (
                    "the body must be JSON sent as Content-Type: application/json, got"
                    f" {kind[:40]!r}"
                ),
            )
        return None


def _token(scope: Scope, headers: dict[str, str]) -> str | None:
    """Return the access token a request carries (query, header or cookie)."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    auth = headers.get("authorization", "")
    if auth.lower().startswith("token "):
        return auth[6:].strip()
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header: no token
        return None
    return cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else None


async def _limited(receive: Receive, scope: Scope, send: Send) -> Receive | None:
    """Read the body up to MAX_BODY (413 beyond); return a receive that replays it."""
    headers = dict(scope["headers"])
    length = headers.get(b"content-length", b"")
    if length.isdigit() and int(length) > MAX_BODY:
        await _too_large(send, int(length))
        return None
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return receive
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > MAX_BODY:
            await _too_large(send, len(body))
            return None
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _too_large(send: Send, size: int) -> None:
    message = (
        f"the body is {size:,} bytes or more, over the limit of {MAX_BODY:,} — a"
        " page's request is under 4 KiB"
    )
    await _refuse(send, 413, "too_large", message)


async def _refuse(send: Send, status: int, reason: str, message: str) -> None:
    """Answer a refusal: status, JSON {"error", "reason"}."""
    body = json.dumps({"error": message, "reason": reason}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
