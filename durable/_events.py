"""Events: ``durable.wait_for_event`` in a workflow, ``durable.send_event`` from anywhere."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Coroutine
from typing import Any

from durable._aio import drive, here
from durable._caller import called
from durable._durations import as_seconds
from durable._engine import _context
from durable._engine._sync import run_coroutine_sync
from durable._errors import ConfigurationError, NotInWorkflowError
from durable._identity import validate_workflow_id
from durable._serialization import event_slot, place
from durable.backends._limits import (
    EVENT_KEY_CHARS,
    NAME_COLUMN_CHARS,
    check_optional_text,
    check_text,
)


def wait_for_event(
    key: str, timeout: float | dt.timedelta | None = None, *, suspend: bool = False
) -> Awaitable[Any]:
    """Wait durably for the event ``key`` sent to this workflow, and return its value.

    Events are kept in the store until the workflow consumes them, so one sent
    before the wait starts (even before the workflow starts) is not lost;
    several events of one key are consumed one per wait, oldest first. The
    value is recorded as a step in the same transaction that consumes the
    event: a resumed workflow gets the same value back and never consumes a
    second event for the same wait.

    While it waits the workflow's status is ``waiting``, and it holds no
    database connection. A sent event wakes the waiter at once (from another
    process: PostgreSQL's LISTEN/NOTIFY, or SQLite's file, watched every
    50 ms); the wait polls only as a fallback, from ``event_poll_interval``
    backing off to 5 s while nothing comes. With ``suspend=True`` a running
    worker is told of the event and resumes the workflow at once.

    Args:
        key: The event's name (at most 255 characters).
        timeout: Give up after this long (seconds or a timedelta); ``None``
            waits for ever. The deadline is recorded when the wait starts, so
            a resumed workflow waits only what is left.
        suspend: Instead of waiting in this process, record the wait and
            unwind: the call that ran the workflow raises
            :class:`durable.WorkflowSuspendedError`, the process may exit, and
            :func:`durable.recover` or a worker resumes the workflow once the
            event arrives or the timeout passes.

    Raises:
        EventTimeoutError: The timeout passed first (recorded, so a resumed
            run raises it again at the same point).
        ConfigurationError: ``timeout`` is not seconds or a timedelta from 0
            to 100 years (nan, inf, negative, ``bool``), raised before the
            wait is recorded.

    Example::

        @durable.durable_workflow
        async def expense(claim: Claim) -> str:
            await notify_approver(claim)
            try:
                decision = await durable.wait_for_event("decision", timeout=dt.timedelta(days=7))
            except durable.EventTimeoutError:
                decision = "rejected: no answer"
            return await book(claim, decision)

        # elsewhere, any process:
        await durable.send_event(expense.id_for(claim), "decision", "approved")
    """
    _check_key(key)
    _check_timeout(timeout)
    ctx = _workflow_context(key)
    if ctx.session.sync:
        raise ConfigurationError(
            f"durable.wait_for_event({key!r}) was called in the sync workflow {ctx.name!r}, "
            "which cannot await it; call durable.wait_for_event_sync() there"
        )
    return _wait(ctx, key, timeout, suspend)


def wait_for_event_sync(
    key: str, timeout: float | dt.timedelta | None = None, *, suspend: bool = False
) -> Any:
    """:func:`wait_for_event` in a sync workflow (``def``): blocks, returns the value.

    Example::

        @durable.durable_workflow
        def expense(claim_id: int) -> str:
            return durable.wait_for_event_sync("decision", timeout=3600)
    """
    _check_key(key)
    _check_timeout(timeout)
    ctx = _workflow_context(key)
    if not ctx.session.sync:
        raise ConfigurationError(
            f"durable.wait_for_event_sync({key!r}) was called in the async workflow "
            f"{ctx.name!r}; use `await durable.wait_for_event(...)` there"
        )
    return drive(_wait(ctx, key, timeout, suspend))


def _wait(
    ctx: _context.WorkflowContext, key: str, timeout: float | dt.timedelta | None, suspend: bool
) -> Coroutine[Any, Any, Any]:
    position = ctx.allocate(f"wait_for_event({key!r}) timeout")
    ctx.allocate(f"wait_for_event({key!r})")  # the outcome's position
    coro = ctx.engine.wait_for_event(ctx, ctx.session, position, key, timeout, suspend)
    return called(coro, "durable.wait_for_event")


def _workflow_context(key: str) -> _context.WorkflowContext:
    ctx = _context.current.get()
    if not isinstance(ctx, _context.WorkflowContext):
        raise NotInWorkflowError(
            f"durable.wait_for_event({key!r}) was called outside a workflow's body; call it "
            "in a function decorated with @durable.durable_workflow (not inside a step)"
        )
    if ctx.tx is not None:
        raise ConfigurationError(
            f"durable.wait_for_event({key!r}) was called inside durable.transaction(); a "
            "transaction commits its records together at its end and cannot span a wait. "
            "Wait before or after the block."
        )
    return ctx


def send_event(
    workflow_id: str, key: str, value: Any = None, *, idempotency_key: str | None = None
) -> Awaitable[bool]:
    """Send an event to a workflow, from any process; ``await`` it.

    The event is stored (pickled with cloudpickle, signed like every payload)
    until the workflow consumes it with :func:`wait_for_event`. The workflow
    must exist (running, waiting, enqueued or even finished); otherwise
    :class:`durable.WorkflowNotFoundError`.

    Sent from a workflow's body, the send is done once: a resumed workflow
    does not send it again. Elsewhere, pass ``idempotency_key`` to make
    retries of the same send harmless.

    Returns:
        True if the event was stored, False if the ``idempotency_key`` you
        gave was already used for this workflow (the earlier event stands).
        Keys are per workflow: one request id may be sent to several.

    Example::

        await durable.send_event("expense-17", "decision", "approved")
    """
    validate_workflow_id(workflow_id)
    _check_key(key)
    _check_idempotency_key(idempotency_key)
    coro, sync = _send(workflow_id, key, value, idempotency_key, sync=None)
    return here(called(coro, "durable.send_event"), sync)


def send_event_sync(
    workflow_id: str, key: str, value: Any = None, *, idempotency_key: str | None = None
) -> bool:
    """Blocking form of :func:`send_event`, for scripts, threads and sync workflows.

    Example::

        durable.send_event_sync("expense-17", "decision", "approved")
    """
    validate_workflow_id(workflow_id)
    _check_key(key)
    _check_idempotency_key(idempotency_key)
    coro, sync = _send(workflow_id, key, value, idempotency_key, sync=True)
    return drive(coro) if sync else run_coroutine_sync(coro)


def _send(
    workflow_id: str, key: str, value: Any, idempotency_key: str | None, sync: bool | None
) -> tuple[Coroutine[Any, Any, bool], bool]:
    """The send, on the sync or the async path (``None``: as the caller's workflow is)."""
    ctx = _context.current.get()
    sent_once = idempotency_key is None  # a key of our own: a conflict is our own retry
    if isinstance(ctx, _context.WorkflowContext):
        position = ctx.allocate(f"send_event({key!r})")
        if idempotency_key is None:
            idempotency_key = f"{ctx.workflow_id}#{position}"
        engine, path = ctx.engine, ctx.session.sync
    else:
        from durable._engine._runtime import current_runtime

        engine, path = current_runtime().engine, bool(sync)
    if idempotency_key is None:
        # A key of its own even so: a send retried after a lost acknowledgement
        # (PostgreSQL) is then stored once.
        idempotency_key = f"send:{_unique()}"
    payload = engine.codec.dumps(
        value,
        place(workflow_id, event_slot(key)),
        what=f"value of event {key!r} for workflow {workflow_id!r}",
    )
    session = engine.session(sync=path)

    async def send() -> bool:
        # One coroutine, made here: a forgotten await warns once, about it.
        stored = await session.run(
            session.backend.send_event, workflow_id, key, payload, idempotency_key
        )
        return True if sent_once else stored  # False: a retry of this very send found it

    return send(), path


def _check_idempotency_key(idempotency_key: object) -> None:
    check_optional_text(idempotency_key, "idempotency_key", EVENT_KEY_CHARS)


def _check_key(key: object) -> None:
    key = check_text(key, "event key", EVENT_KEY_CHARS)
    # The key is recorded in the name of the step that holds its value.
    if len(f"wait_for_event({key!r}) timeout") > NAME_COLUMN_CHARS:
        raise ConfigurationError(
            f"event key {key[:40]!r}... is too long once quoted ({len(repr(key))} characters "
            f"as the repr in the name of the step that records it, whose column holds "
            f"{NAME_COLUMN_CHARS}); use a shorter key, or fewer characters that need escaping",
            event_key=key,
        )


def _check_timeout(timeout: object) -> None:
    # Its range is checked when the deadline is computed, before it is
    # recorded: a replay goes by the recorded deadline.
    if timeout is not None:
        as_seconds(timeout, "timeout")


def _unique() -> str:
    import uuid  # with platform: not loaded until the first one

    return uuid.uuid4().hex
