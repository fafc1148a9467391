"""What stands between the network and the API, as one ASGI middleware.

- Host: the Host header must be a well-formed ``name[:port]`` that names this
  server (a DNS-rebinding page cannot reach a loopback server under its own name).
- Origin: a browser request to the API must come from this server's own pages
  (same scheme, host and port) or an origin the operator allowed (a simple
  cross-site POST needs no preflight). ``Origin: null`` (a sandboxed frame, a
  ``file:`` or ``data:`` page) is cross-site.
- Token: with ``--token``, every API call carries ``Authorization: Bearer <token>``
  (``?token=`` for EventSource, which cannot set headers).
- Body: refused from its Content-Length, or cut off while it streams, once over the
  cap (nothing is spooled past it); a body that stalls is timed out, and so is one
  that trickles in for longer than the upload deadline in all.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from .requests import RequestError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class GuardSettings:
    hosts: tuple[str, ...] = LOOPBACK_NAMES  # names the Host header may carry; () accepts any
    origins: tuple[str, ...] = ()  # other origins allowed to call the API, e.g. "https://app.example"
    token: str | None = None
    max_body_bytes: int = 100_000_000
    body_timeout_s: float = 30.0  # the longest a body may stall
    upload_timeout_s: float = 300.0  # the longest a whole body may take


def hosts_for(bind: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The Host names to accept for a server bound to ``bind``: loopback names for a
    loopback bind, that address (plus loopback) for one address, any for a wildcard
    bind unless names are given."""
    if bind in ("0.0.0.0", "::", ""):
        return tuple(extra)
    return tuple(dict.fromkeys((bind, *LOOPBACK_NAMES, *extra)))


def is_loopback(bind: str) -> bool:
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False


# host [":" port], as RFC 9110 allows it in Host and RFC 6454 in Origin: an IPv6 literal
# in brackets or a name of letters, digits, dots and dashes; the port only digits.
_AUTHORITY = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::([0-9]{1,5}))?")
_ORIGIN = re.compile(r"(https?)://(.+)")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_authority(value: str) -> tuple[str, int | None] | None:
    """``example.com:8765`` -> ("example.com", 8765); ``[::1]`` -> ("::1", None); None for
    anything else (``127.0.0.1:evil.example``, ``host:1@evil.example``, spaces, a path)."""
    match = _AUTHORITY.fullmatch(value.strip().lower())
    if match is None:
        return None
    port = int(match.group(2)) if match.group(2) else None
    if port is not None and not 0 < port < 65536:
        return None
    return match.group(1).strip("[]"), port


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """``https://app.example`` -> ("https", "app.example", 443); None for ``null`` and
    anything that is not a plain http(s) origin."""
    match = _ORIGIN.fullmatch(value.strip().lower().rstrip("/"))
    authority = parse_authority(match.group(2)) if match else None
    if authority is None:
        return None
    scheme, (host, port) = match.group(1), authority
    return scheme, host, port or _DEFAULT_PORTS[scheme]


async def send_error(send, error: RequestError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app, settings: GuardSettings):
        self.app, self.settings = app, settings
        self.origins = {parse_origin(origin) for origin in settings.origins} - {None}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            self._check(scope, headers)
        except RequestError as error:
            return await send_error(send, error)
        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, self._limited(receive), tracking_send)
        except RequestError as error:  # raised while reading the body, outside a route's own handling
            if not started:
                await send_error(send, error)

    def _check(self, scope, headers: dict[str, str]) -> None:
        settings = self.settings
        authority = parse_authority(headers.get("host", ""))
        if authority is None:
            raise RequestError(400, f"malformed Host header {headers.get('host', '')[:80]!r}", "bad_host")
        host, port = authority
        if settings.hosts and host not in settings.hosts:
            raise RequestError(403, f"this server does not answer to the host name {host!r}", "forbidden_host")
        if not scope["path"].startswith("/v1/"):
            return  # the editor page, its files, /healthz, /docs
        origin = headers.get("origin")
        if origin is not None:
            scheme = scope.get("scheme", "http")
            own = (scheme, host, port or _DEFAULT_PORTS.get(scheme, 80))
            parsed = parse_origin(origin)
            if parsed is None or (parsed != own and parsed not in self.origins):
                raise RequestError(403, f"requests from {origin[:80]!r} are not allowed (serve --allow-origin)",
                                   "forbidden_origin")
        if settings.token is not None:
            offered = headers.get("authorization", "")
            offered = offered[7:] if offered.lower().startswith("bearer ") else ""
            if not offered:
                offered = (parse_qs(scope.get("query_string", b"").decode()).get("token") or [""])[0]
            if not hmac.compare_digest(offered.encode(), settings.token.encode()):
                raise RequestError(401, "a valid token is needed: Authorization: Bearer <token>", "unauthorized",
                                   {"WWW-Authenticate": "Bearer"})
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise RequestError(413, f"the request body is over the {settings.max_body_bytes / 1e6:.0f} MB limit",
                               "too_large")

    def _limited(self, receive):
        """``receive`` with the body cap and, until the body is complete, the stall
        timeout and the upload deadline (afterwards receive only waits for a
        disconnect, which may take long)."""
        settings, received, complete = self.settings, 0, False
        deadline = time.monotonic() + settings.upload_timeout_s

        async def limited():
            nonlocal received, complete
            if complete:
                return await receive()
            left = deadline - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, min(settings.body_timeout_s, left)))
            except asyncio.TimeoutError:
                why = (f"stalled for {settings.body_timeout_s:g} s" if left > settings.body_timeout_s
                       else f"took over {settings.upload_timeout_s:g} s in all")
                raise RequestError(408, f"the request body {why}", "timeout") from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > settings.max_body_bytes:
                raise RequestError(413, f"the request body is over the {settings.max_body_bytes / 1e6:.0f} MB "
                                        "limit", "too_large")
            return message

        return limited
