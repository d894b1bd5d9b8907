"""Serving the dashboard with uvicorn: the address, the token, the banner."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from typing import Any

from durable.ui._security import check_binding, is_loopback

DEFAULT_PORT = 8765


def address(host: str, port: int, token: str | None) -> str:
    """The URL to open: the token in it once (the page then keeps it in a cookie)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(
    url: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token: str | None = None,
    read_only: bool = False,
    trust_store: bool = False,
    announce: Callable[[str], None] = print,
    **options: Any,
) -> None:
    """Run the dashboard until interrupted, and announce its address.

    Binding to an address other than loopback (127.0.0.1, ::1) needs
    ``token``: without one this raises :class:`durable.ConfigurationError`
    and serves nothing.

    Args:
        url: The store (see :func:`durable.ui.app`).
        host: The address to listen on.
        port: The port (0: any free one).
        token: The access token (at least 16 characters).
        read_only: See :func:`durable.ui.app`.
        trust_store: See :func:`durable.ui.app`.
        announce: Called with the line that gives the address.
        **options: Further :class:`durable.Runtime` options.

    Example::

        durable.ui.serve("sqlite:///jobs.db", port=8765)
    """
    import uvicorn

    from durable.ui._app import app

    check_binding(host, token)
    dashboard = app(url, read_only=read_only, trust_store=trust_store, token=token, **options)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    config = uvicorn.Config(dashboard, log_level="warning", lifespan="on")
    announce(f"durable ui on {dashboard.state.dashboard.store.url}: {address(host, bound, token)}")
    uvicorn.Server(config).run(sockets=[sock])


def random_token() -> str:
    """A fresh access token."""
    return secrets.token_urlsafe(24)


__all__ = ["address", "is_loopback", "random_token", "serve"]
