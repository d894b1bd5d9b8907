"""``durable ui``: a local web dashboard over any store, offline.

Needs the ``ui`` extra (``pip install "durable-sdk[ui]"``: Starlette,
uvicorn, Jinja2); ``import durable`` never imports this package.

- :func:`app` gives the dashboard as an ASGI app, to mount in a service;
- :func:`serve` runs it with uvicorn (what ``durable ui`` does).

Example::

    from starlette.applications import Starlette
    from starlette.routing import Mount
    import durable.ui

    service = Starlette(routes=[Mount("/durable", durable.ui.app("sqlite:///jobs.db"))])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durable.ui._serve import serve

if TYPE_CHECKING:
    from starlette.applications import Starlette


def app(
    url: str | None = None,
    *,
    read_only: bool = False,
    trust_store: bool = False,
    token: str | None = None,
    **options: Any,
) -> Starlette:
    """The dashboard over the store at ``url``, as an ASGI (Starlette) app.

    Args:
        url: The store (default: the configured one, as :class:`durable.Runtime`).
        read_only: Show everything, change nothing: no cancel, resume,
            restore, fork or event (such requests get 403).
        trust_store: Show previews of every stored value. Unpickling runs
            code: without this, values are shown only when the store is
            opened with its secret key (``secret_key=`` or
            ``$DURABLE_SECRET_KEY``), whose signatures they must carry.
        token: An access token every request must carry (``?token=`` once,
            then a cookie; or ``Authorization: Bearer``).
        **options: Further :class:`durable.Runtime` options (``secret_key``...).

    Example::

        dashboard = durable.ui.app("sqlite:///jobs.db", read_only=True)
    """
    from durable.ui._app import app as build

    return build(url, read_only=read_only, trust_store=trust_store, token=token, **options)


__all__ = ["app", "serve"]
