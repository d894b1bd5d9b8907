"""Who may use the dashboard, and which requests may change the store.

- An access token, required when the dashboard listens beyond the loopback
  interface: given once as ``?token=...`` (then kept in a same-site,
  HTTP-only cookie) or as ``Authorization: Bearer ...`` on every request.
- Against cross-site requests: every request that changes the store must
  carry the page's CSRF token (a hidden form field), and its ``Origin`` (or
  ``Referer``), when the browser sends one, must be this dashboard's own.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from durable._errors import ConfigurationError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "durable_ui_token"
MIN_TOKEN_CHARS = 16


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token (or with a guessable one)."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigurationError(
            f"the dashboard's token must be at least {MIN_TOKEN_CHARS} characters; make one "
            'with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    if not is_loopback(host) and token is None:
        raise ConfigurationError(
            f"refusing to serve the dashboard on {host}, beyond this machine, without an "
            "access token: set $DURABLE_UI_TOKEN (or pass token=) to a long random "
            "secret, or bind to 127.0.0.1"
        )


def new_csrf_token() -> str:
    """A fresh random CSRF token (one per dashboard)."""
    return secrets.token_urlsafe(32)


def same(given: str | None, expected: str) -> bool:
    """Whether ``given`` is ``expected``, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def same_origin(headers: MutableMapping[str, str] | Any, host: str | None) -> bool:
    """Whether the request's ``Origin`` (else ``Referer``), if any, is this host's."""
    origin = headers.get("origin") or headers.get("referer")
    if origin is None:
        return True  # not a browser's cross-site request; the CSRF token still decides
    if origin == "null" or host is None:
        return False
    return urlsplit(origin).netloc == host


class TokenGate:
    """ASGI middleware: every request needs the access token (cookie, header or query)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if same(query.get("token"), self.token):
            await _redirect_with_cookie(scope, send, query, self.token)
            return
        bearer = headers.get("authorization", "")
        cookies = _cookies(headers.get("cookie", ""))
        if same(cookies.get(COOKIE), self.token) or same(
            bearer.removeprefix("Bearer ").strip() if bearer else None, self.token
        ):
            await self.app(scope, receive, send)
            return
        body = b"this dashboard needs its access token: open the address it printed (?token=...)"
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _cookies(header: str) -> dict[str, str]:
    pairs = (part.strip().partition("=") for part in header.split(";"))
    return {name: value for name, _, value in pairs if name}


async def _redirect_with_cookie(
    scope: Scope, send: Send, query: dict[str, str], token: str
) -> None:
    """Keep the token in a cookie and take it out of the address bar (and history)."""
    rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
    # Mounted, the path holds the mount's prefix (Starlette >= 0.35) or not (older).
    root, path = scope.get("root_path", ""), scope["path"]
    path = path if path.startswith(root) else root + path
    location = path + (f"?{rest}" if rest else "")
    cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1")),
                (b"set-cookie", cookie.encode("latin-1")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
