"""``durable ui``: a local web dashboard over any store, offline.

Needs the ``ui`` extra (``pip install "durable-sdk[ui]"``: Starlette,
uvicorn, Jinja2); ``import durable`` never imports this package.

- :func:`app` gives the dashboard as an ASGI app, to mount in a service;
- :func:`serve` runs it with uvicorn (what ``durable ui`` does).

Example::

    from starlette.applications import Starlette
    from starlette.routing import Mount
    import durable
    import durable.ui

    runtime = durable.Runtime("sqlite:///jobs.db")  # closed by your service at its end
    service = Starlette(routes=[Mount("/durable", durable.ui.app(runtime=runtime))])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durable.ui._serve import serve

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from durable._engine._runtime import Runtime


def app(
    url: str | None = None,
    *,
    read_only: bool = False,
    trust_store: bool = False,
    token: str | None = None,
    runtime: Runtime | None = None,
    **options: Any,
) -> Starlette:
    """The dashboard over the store at ``url``, or ``runtime``'s, as an ASGI (Starlette) app.

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
        runtime: A :class:`durable.Runtime` your service opens and closes,
            to read the store through instead of ``url`` (and its options).
            Mounted in a service, pass one: Starlette runs no mounted app's
            lifespan, so a runtime the dashboard opened itself from ``url``
            would stay open until the process ends.
        **options: Further :class:`durable.Runtime` options (``secret_key``...).

    Raises:
        ConfigurationError: Both ``runtime`` and ``url`` (or options) given.

    Example::

        dashboard = durable.ui.app("sqlite:///jobs.db", read_only=True)

        with durable.Runtime("sqlite:///jobs.db") as runtime:
            service = Starlette(routes=[Mount("/durable", durable.ui.app(runtime=runtime))])
            ...
    """
    from durable.ui._app import app as build

    return build(
        url,
        read_only=read_only,
        trust_store=trust_store,
        token=token,
        runtime=runtime,
        **options,
    )


__all__ = ["app", "serve"]
