"""What stands between the network and the API, as one ASGI middleware.

- Host: the Host header must name this server (a DNS-rebinding page cannot reach
  a loopback server under its own name).
- Origin: a browser request to the API must come from this server's own pages or
  an origin the operator allowed (a simple cross-site POST needs no preflight).
- Token: with ``--token``, every API call carries ``Authorization: Bearer <token>``
  (``?token=`` for EventSource, which cannot set headers).
- Body: refused from its Content-Length, or cut off while it streams, once over the
  cap (nothing is spooled past it); a body that stalls is timed out.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from .requests import RequestError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class GuardSettings:
    hosts: tuple[str, ...] = LOOPBACK_NAMES  # names the Host header may carry; () accepts any
    origins: tuple[str, ...] = ()  # other origins allowed to call the API, e.g. "https://app.example"
    token: str | None = None
    max_body_bytes: int = 100_000_000
    body_timeout_s: float = 30.0


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


def _host_name(value: str) -> str:
    """``example.com:8765`` -> ``example.com``; ``[::1]:8765`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


async def send_error(send, error: RequestError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app, settings: GuardSettings):
        self.app, self.settings = app, settings

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
        host = _host_name(headers.get("host", ""))
        if settings.hosts and host not in settings.hosts:
            raise RequestError(403, f"this server does not answer to the host name {host or '(none)'!r}",
                               "forbidden_host")
        if not scope["path"].startswith("/v1/"):
            return  # the editor page, its files, /healthz, /docs
        origin = headers.get("origin")
        if origin and origin != "null":
            parts = urlsplit(origin)
            same_origin = parts.netloc.lower() == headers.get("host", "").lower()
            if not same_origin and origin.rstrip("/") not in settings.origins:
                raise RequestError(403, f"requests from {origin} are not allowed (serve --allow-origin)",
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
        timeout (afterwards receive only waits for a disconnect, which may take long)."""
        settings, received, complete = self.settings, 0, False

        async def limited():
            nonlocal received, complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), settings.body_timeout_s)
            except asyncio.TimeoutError:
                raise RequestError(408, f"the request body stalled for {settings.body_timeout_s:g} s",
                                   "timeout") from None
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > settings.max_body_bytes:
                raise RequestError(413, f"the request body is over the {settings.max_body_bytes / 1e6:.0f} MB "
                                        "limit", "too_large")
            return message

        return limited
