"""Published state: ``durable.publish`` in a workflow, ``durable.get_published`` from anywhere.

A workflow publishes values under keys (its progress, a partial answer, the
id of what it created); anyone reads the latest value of a key, waiting for
it if it is not there yet. Each publish is a record of the workflow at its
position, like a step: recorded once, replayed (not written again) on resume,
superseded by a restore to an earlier snapshot, copied by a fork.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any

from durable._aio import drive, here
from durable._caller import called
from durable._clock import jumps_ahead, real_time
from durable._durations import deadline_after, optional_duration
from durable._engine import _context
from durable._engine._sync import run_coroutine_sync
from durable._errors import (
    NotPublishedError,
    WorkflowNotFoundError,
)
from durable._identity import validate_workflow_id
from durable._retry import RetryPolicy
from durable._session import Session
from durable._specs import StepSpec
from durable.backends._limits import EVENT_KEY_CHARS, check_text
from durable.backends._notify import published_topic

if TYPE_CHECKING:
    from durable._engine._core import Engine

MISSING: Any = object()
"""No default given: a key not published in time raises :class:`NotPublishedError`."""


def publish(key: str, value: Any) -> Awaitable[None]:
    """Publish ``value`` under ``key`` for anyone to read while the workflow runs and after.

    Readers get the latest value of the key (:func:`get_published`, the
    handle's :meth:`~durable.WorkflowHandle.get_published`, ``durable show``).
    Each call is recorded at its position like a step: a resumed workflow
    does not write it again, and readers never see a value go back to an
    older one because of a crash. The value is pickled (and signed) like a
    step's result. In an async workflow ``await`` it; in a sync one call
    :func:`publish_sync`.

    Raises:
        NotInWorkflowError: Called outside a workflow's body (or in a step).
        ConfigurationError: ``key`` is not a non-empty string of at most 255
            characters.

    Example::

        @durable.durable_workflow
        async def import_rows(path: str) -> int:
            rows = await read(path)
            for done, batch in enumerate(chunks(rows, 100), 1):
                await load(batch)
                await durable.publish("progress", done / len(rows) * 100)
            return len(rows)

        # a web handler, any process:
        percent = await durable.get_published(workflow_id, "progress", timeout=0, default=0)
    """
    ctx = _publishing(key, sync=False)
    return called(_publish(ctx, key, value), "durable.publish")


def publish_sync(key: str, value: Any) -> None:
    """:func:`publish` in a sync workflow (``def``).

    Example::

        @durable.durable_workflow
        def build(target: str) -> str:
            durable.publish_sync("stage", "compiling")
            ...
    """
    ctx = _publishing(key, sync=True)
    drive(_publish(ctx, key, value))


def _publishing(key: str, sync: bool) -> _context.WorkflowContext:
    check_key(key)
    return _context.calling_workflow(
        f"durable.publish{'_sync' if sync else ''}({key!r})",
        sync,
        other_form="durable.publish_sync()" if not sync else "`await durable.publish(...)`",
        outside="publish from a function decorated with @durable.durable_workflow "
        "(not inside a step)",
    )


def _publish(ctx: _context.WorkflowContext, key: str, value: Any) -> Coroutine[Any, Any, None]:
    position = ctx.allocate(key)
    return ctx.engine.publish(ctx, ctx.session, position, key, value)


def get_published(
    workflow_id: str,
    key: str,
    timeout: float | dt.timedelta | None = None,
    *,
    default: Any = MISSING,
) -> Awaitable[Any]:
    """The latest value a workflow published under ``key``; ``await`` it.

    Waits until the key is published, for at most ``timeout`` (seconds or a
    timedelta; ``None`` waits as long as the workflow may still publish it,
    ``0`` looks once). A workflow that has finished (or was cancelled)
    without publishing the key never will: the call returns at once. Then,
    and when the timeout passes, it returns ``default`` if you gave one, and
    raises :class:`durable.NotPublishedError` otherwise.

    A workflow not recorded yet (just enqueued or started by another task)
    is waited for as long as the timeout allows; without a timeout an
    unknown id raises at once rather than wait for ever on a typo.

    Called in a workflow's body, the value it got (or its error) is recorded
    like a step's, so a resumed workflow takes the same path.

    Raises:
        WorkflowNotFoundError: No workflow of that id is recorded (within the timeout).
        NotPublishedError: Not published in time (and no ``default``).

    Example::

        handle = await report.enqueue("2026-11")
        print(await durable.get_published(handle.workflow_id, "progress", timeout=5, default=0))
    """
    coro, sync = _get(workflow_id, key, timeout, default, sync=None)
    return here(called(coro, "durable.get_published"), sync)


def get_published_sync(
    workflow_id: str,
    key: str,
    timeout: float | dt.timedelta | None = None,
    *,
    default: Any = MISSING,
) -> Any:
    """Blocking form of :func:`get_published`, for scripts, threads and sync workflows.

    Example::

        durable.get_published_sync("import-7", "progress", timeout=0, default=None)
    """
    coro, sync = _get(workflow_id, key, timeout, default, sync=True)
    return drive(coro) if sync else run_coroutine_sync(coro)


def _get(
    workflow_id: str, key: str, timeout: object, default: Any, sync: bool | None
) -> tuple[Coroutine[Any, Any, Any], bool]:
    validate_workflow_id(workflow_id)
    check_key(key)
    seconds = optional_duration(timeout, "timeout")
    ctx = _context.current.get()
    if isinstance(ctx, _context.InStep):
        ctx = None  # inside a step: a plain read, the step's result is what is recorded
    if isinstance(ctx, _context.WorkflowContext):
        engine, session = ctx.engine, ctx.session

        def look() -> Any:
            coro = wait_published(engine, session, workflow_id, key, seconds, default)
            return drive(coro) if session.sync else coro

        spec = StepSpec(
            name=f"get_published({key!r})", is_async=not session.sync, retry=RetryPolicy()
        )
        position = ctx.allocate(spec.name)
        return engine.run_step(ctx, session, spec, position, look), session.sync
    from durable._engine._runtime import current_runtime

    engine = current_runtime().engine
    session = engine.session(sync=bool(sync))
    return wait_published(engine, session, workflow_id, key, seconds, default), bool(sync)


async def wait_published(
    engine: Engine,
    session: Session,
    workflow_id: str,
    key: str,
    timeout: float | None,
    default: Any = MISSING,
) -> Any:
    """Read the latest value of ``key``, waiting for it as :func:`get_published` says."""
    clock = engine.clock
    deadline = None if timeout is None else deadline_after(clock.time(), timeout, "timeout")
    backend = session.backend
    with backend.notifier.subscribe(published_topic(workflow_id)) as subscription:
        while True:
            rows = await session.run(backend.published, workflow_id, key)
            if not rows:
                row = await session.run(backend.get_workflow, workflow_id)
                if row is None and (deadline is None or clock.time() >= deadline):
                    raise WorkflowNotFoundError(
                        f"no workflow {workflow_id!r} in {backend.url} to read {key!r} of"
                        + ("" if deadline is None else f" (waited {timeout:g} s for it)"),
                        workflow_id=workflow_id,
                    )
                if row is not None and row.status.finished:
                    # Published just before it finished, between the two reads?
                    rows = await session.run(backend.published, workflow_id, key)
                    if not rows:
                        return _missing(workflow_id, key, default, f"it is {row.status.value}")
            if rows:
                return engine.decode_step(rows[0], workflow_id)
            now = clock.time()
            if deadline is not None and now >= deadline:
                return _missing(
                    workflow_id, key, default, f"not within {timeout:g} s (still running)"
                )
            interval = engine.options.event_poll_interval
            if deadline is not None and real_time(clock):
                interval = min(interval, deadline - now)
            woken = await session.wait_for(subscription, interval)
            # A virtual clock that advances by itself jumps to the deadline
            # once a real poll brought nothing, as for event waits.
            if not woken and deadline is not None and jumps_ahead(clock):
                await session.sleep(deadline - clock.time())


def _missing(workflow_id: str, key: str, default: Any, why: str) -> Any:
    if default is not MISSING:
        return default
    raise NotPublishedError(
        f"workflow {workflow_id!r} has published nothing under {key!r}: {why}. Pass "
        "default= to get a value instead, or a longer timeout",
        workflow_id=workflow_id,
        key=key,
    )


def check_key(key: object) -> str:
    """A published key: text of at most 255 characters (it names the record)."""
    return check_text(key, "published key", EVENT_KEY_CHARS)
