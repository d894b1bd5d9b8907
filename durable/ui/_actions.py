"""What the dashboard changes: cancel, resume, restore, fork, send an event.

Each is one POST from a form the page asked the user to confirm, checked
here (read-only mode, the CSRF token, the request's origin), and done
through the same public API as the CLI (``durable.Store``, ``durable.Client``).
The answer is a redirect to the workflow's page, saying what happened.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from durable._client import Client
from durable._errors import DurableError
from durable.ui._board import Dashboard, dashboard
from durable.ui._security import same, same_origin


def _cancel(board: Dashboard, workflow_id: str, form: dict[str, str]) -> tuple[str, str]:
    if board.store.cancel(workflow_id):
        return workflow_id, f"cancelled {workflow_id} and its children; each stops at its next step"
    return workflow_id, f"{workflow_id} was not active; nothing to cancel"


def _resume(board: Dashboard, workflow_id: str, form: dict[str, str]) -> tuple[str, str]:
    if board.store.resume(workflow_id):
        return workflow_id, (
            f"reopened {workflow_id}: a worker, durable recover or its next call goes on with it"
        )
    return workflow_id, f"{workflow_id} was not cancelled, timed out or quarantined; nothing to do"


def _restore(board: Dashboard, workflow_id: str, form: dict[str, str]) -> tuple[str, str]:
    snapshot = form.get("snapshot", "")
    board.store.restore(workflow_id, snapshot)
    return workflow_id, (
        f"restored {workflow_id} to snapshot {snapshot!r}; its next run goes on from there"
    )


def _fork(board: Dashboard, workflow_id: str, form: dict[str, str]) -> tuple[str, str]:
    snapshot = form.get("snapshot", "")
    new_id = form.get("new_id", "").strip()
    board.store.fork(workflow_id, snapshot, new_id)
    return new_id, f"forked {workflow_id} at snapshot {snapshot!r} into {new_id}; run it to go on"


def _event(board: Dashboard, workflow_id: str, form: dict[str, str]) -> tuple[str, str]:
    key = form.get("key", "").strip()
    text = form.get("value", "")
    value: Any = text
    if text and not form.get("as_text"):
        try:
            value = json.loads(text)
        except ValueError:
            value = text
    idempotency_key = form.get("idempotency_key", "").strip() or None
    with Client(runtime=board.runtime) as client:
        sent = client.send_event(workflow_id, key, value, idempotency_key=idempotency_key)
    if sent:
        return workflow_id, f"sent {key!r} to {workflow_id}"
    return workflow_id, f"not sent: idempotency key {idempotency_key!r} was used already"


FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 1024 * 1024
"""A larger form is read as empty (and refused for its missing CSRF token)."""

ACTIONS: dict[str, Callable[[Dashboard, str, dict[str, str]], tuple[str, str]]] = {
    "cancel": _cancel,
    "resume": _resume,
    "restore": _restore,
    "fork": _fork,
    "event": _event,
}


def refusal(board: Dashboard, request: Request, form: dict[str, str]) -> str | None:
    """Why this change may not be made, or None."""
    if board.read_only:
        return "the dashboard is read-only (started with --read-only)"
    if not same(form.get("csrf"), board.csrf):
        return "missing or wrong CSRF token: reload the page and try again"
    if not same_origin(request.headers, request.headers.get("host")):
        return "cross-site request refused: its Origin is not this dashboard"
    return None


async def act(request: Request) -> Response:
    """Run one action on a workflow; the store is called in Starlette's thread pool."""
    board = dashboard(request)
    action = ACTIONS.get(request.path_params["action"])
    if action is None:
        return PlainTextResponse("no such action", status_code=404)
    form = await _form(request)
    if form is None:
        return PlainTextResponse("send a form (application/x-www-form-urlencoded)", 415)
    refused = refusal(board, request, form)
    if refused is not None:
        return PlainTextResponse(refused, status_code=403)
    workflow_id = form.get("id", "")
    try:
        shown, notice = await run_in_threadpool(action, board, workflow_id, form)
        query = {"id": shown, "notice": notice}
    except DurableError as exc:
        query = {"id": workflow_id, "error": str(exc)}
    base = request.scope.get("root_path", "")
    return RedirectResponse(f"{base}/workflow?{urlencode(query)}", status_code=303)


async def _form(request: Request) -> dict[str, str] | None:
    """A urlencoded form's fields (read here: no multipart parser needed), or None."""
    if request.headers.get("content-type", "").split(";")[0] != FORM:
        return None
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
