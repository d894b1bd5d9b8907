"""The dashboard's ASGI app: its pages, over one store, read through ``durable.Store``.

Handlers are plain functions: Starlette runs them in its thread pool, where
the store's blocking methods belong. Changes (cancel, resume, restore,
fork, send an event) are in :mod:`durable.ui._actions`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from durable._display import duration_text, size_text
from durable._engine._runtime import Runtime
from durable._errors import ConfigurationError, DurableError
from durable.ui import _actions, _charts
from durable.ui._board import HERE, Dashboard, dashboard, when
from durable.ui._data import Filters, Previews, list_page, workflow_page
from durable.ui._security import TokenGate, new_csrf_token


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = when
    env.filters["duration"] = duration_text
    env.filters["size"] = size_text
    return env


def _compiled() -> jinja2.Environment:
    """The templates' environment, every template compiled now (not by the first visitor)."""
    env = _environment()
    for template in (HERE / "templates").glob("*.html"):
        env.get_template(template.name)
    return env


def list_view(request: Request) -> Response:
    """The workflow list: filters, counts by status, one page of workflows."""
    board = dashboard(request)
    params = request.query_params
    filters = Filters.of(params, params.getlist("status"))
    try:
        page = list_page(board.store, filters, counts=board.counts)
    except DurableError as exc:  # a filter that cannot be read
        return board.render(request, "list.html", 400, filters=filters, page=None, error=str(exc))
    return board.render(request, "list.html", filters=filters, page=page, error=None)


def workflow_view(request: Request) -> Response:
    """One workflow: card, timeline, children, snapshots, events, published keys, streams."""
    board = dashboard(request)
    workflow_id = request.query_params.get("id", "")
    info = board.store.get_workflow(workflow_id) if workflow_id else None
    if info is None:
        return board.render(request, "missing.html", 404, workflow_id=workflow_id, what="workflow")
    page = workflow_page(board.store, info, board.previews)
    return board.render(request, "workflow.html", page=page, wf=info)


def value_view(request: Request) -> Response:
    """A step record's value, or why it is hidden: a fragment the page asks for on demand."""
    board = dashboard(request)
    workflow_id = request.query_params.get("id", "")
    try:
        position = int(request.query_params.get("position", ""))
    except ValueError:
        return PlainTextResponse("position: a whole number", status_code=400)
    shown = board.previews.show(lambda: board.store.step_result(workflow_id, position))
    return board.templates.TemplateResponse(request, "_value.html", {"p": shown})


def queues_view(request: Request) -> Response:
    """Queues (depth, running, limits) and the processes that run workflows now."""
    board = dashboard(request)
    return board.render(
        request,
        "queues.html",
        queues=board.store.queues(),
        workers=_charts.workers(board.store),
        now=time.time(),
    )


def metrics_view(request: Request) -> Response:
    """The store's metrics, and charts of the recent workflows."""
    board = dashboard(request)
    window = _charts.window(request.query_params.get("window", "1h"))
    return board.render(
        request,
        "metrics.html",
        metrics=board.metrics(),
        charts=_charts.recent(board.store, window),
        window=window,
        recent=_charts.RECENT,
    )


def app(
    url: str | None = None,
    *,
    read_only: bool = False,
    trust_store: bool = False,
    token: str | None = None,
    runtime: Runtime | None = None,
    **options: Any,
) -> Starlette:
    """The dashboard over the store at ``url``, as an ASGI app (see :func:`durable.ui.app`)."""
    owned = runtime is None
    if runtime is None:
        runtime = Runtime(url, **options)
    elif url is not None or options:
        given = ", ".join(["url" if url is not None else "", *options]).strip(", ")
        raise ConfigurationError(
            f"durable.ui.app() got runtime= and {given}: the runtime already chose its store "
            "and options. Pass one or the other."
        )
    signed = runtime.options.secret_key is not None
    board = Dashboard(
        runtime=runtime,
        previews=Previews(signed=signed, trusted=trust_store),
        read_only=read_only,
        csrf=new_csrf_token(),
        templates=Jinja2Templates(env=_compiled()),
    )
    routes = [
        Route("/", list_view, name="list"),
        Route("/workflow", workflow_view, name="workflow"),
        Route("/value", value_view, name="value"),
        Route("/queues", queues_view, name="queues"),
        Route("/metrics", metrics_view, name="metrics"),
        Route("/action/{action}", _actions.act, methods=["POST"], name="act"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    gate = [Middleware(TokenGate, token=token)] if token is not None else []

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if owned:  # a runtime passed in is its owner's to close
            runtime.close()

    starlette = Starlette(routes=routes, middleware=gate, lifespan=lifespan)
    starlette.state.dashboard = board
    return starlette
