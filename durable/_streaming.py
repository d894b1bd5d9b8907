"""Streams: ``durable.write_stream`` in a workflow, ``durable.read_stream`` from anywhere.

A stream is a sequence of values a workflow produces while it runs: the
chunks of a generator step (an LLM's tokens, say), or values it writes with
:func:`write_stream`. Readers in any process follow it live and stop at its
end; what was written stays readable after the workflow finished.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

from durable._aio import drive, drive_iterator
from durable._caller import called
from durable._engine import _context
from durable._errors import ConfigurationError, WorkflowNotFoundError
from durable._identity import validate_workflow_id
from durable._serialization import place, stream_slot
from durable._session import Session
from durable.backends._limits import EVENT_KEY_CHARS, check_text
from durable.backends._notify import stream_topic

if TYPE_CHECKING:
    from durable._engine._core import Engine


class StreamRestarted:
    """Read from a stream where its producer started again: what came before was cut short.

    A generator step that crashed mid-stream runs again from its start; its
    readers get this marker between the chunks of the run cut short and
    those of the new one (so a page showing tokens clears them), instead of
    the new chunks appended silently after the old.

    Example::

        async for chunk in durable.read_stream(workflow_id, "answer"):
            if isinstance(chunk, durable.StreamRestarted):
                shown.clear()
            else:
                shown.append(chunk)
    """

    def __repr__(self) -> str:
        return "StreamRestarted()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StreamRestarted)

    def __hash__(self) -> int:
        return hash(StreamRestarted)


def write_stream(key: str, value: Any) -> Awaitable[None]:
    """Append ``value`` to this workflow's stream ``key``, for :func:`read_stream` readers.

    Written once: the append is recorded at its position like a step, so a
    resumed workflow does not append it again. In a sync workflow call
    :func:`write_stream_sync`. :func:`close_stream` ends the stream.

    Example::

        for page in range(pages):
            rows = await fetch_page(page)
            await durable.write_stream("rows", len(rows))
        await durable.close_stream("rows")
    """
    ctx = _writing(key, "write_stream", sync=False)
    return called(_write(ctx, key, value, end=False), "durable.write_stream")


def write_stream_sync(key: str, value: Any) -> None:
    """:func:`write_stream` in a sync workflow (``def``)."""
    ctx = _writing(key, "write_stream_sync", sync=True)
    drive(_write(ctx, key, value, end=False))


def close_stream(key: str) -> Awaitable[None]:
    """End this workflow's stream ``key``: its readers stop there. Recorded once."""
    ctx = _writing(key, "close_stream", sync=False)
    return called(_write(ctx, key, None, end=True), "durable.close_stream")


def close_stream_sync(key: str) -> None:
    """:func:`close_stream` in a sync workflow (``def``)."""
    ctx = _writing(key, "close_stream_sync", sync=True)
    drive(_write(ctx, key, None, end=True))


def _writing(key: str, api: str, sync: bool) -> _context.WorkflowContext:
    check_key(key)
    return _context.calling_workflow(
        f"durable.{api}({key!r})",
        sync,
        other_form=f"durable.{api}_sync()" if not sync else f"`await durable.{api[:-5]}(...)`",
        outside="write streams from a function decorated with @durable.durable_workflow "
        "(a step streams by yielding: make it a generator)",
    )


def _write(
    ctx: _context.WorkflowContext, key: str, value: Any, end: bool
) -> Coroutine[Any, Any, None]:
    position = ctx.allocate(f"{'close' if end else 'write'}_stream({key!r})")
    return ctx.engine.write_stream(ctx, ctx.session, position, key, value, end)


def read_stream(workflow_id: str, key: str) -> AsyncIterator[Any]:
    """Follow a workflow's stream ``key``: each value as it is written, until the stream ends.

    Starts from the stream's beginning, so a late reader misses nothing; ends
    when the stream is closed (a generator step finished, or
    :func:`close_stream`), or when the workflow is over and nothing more
    will come. Where a generator step started again after a crash, a
    :class:`StreamRestarted` comes between the two runs' chunks. On
    PostgreSQL new values wake readers at once; on SQLite they look every
    ``event_poll_interval``. Read it outside a workflow's body (in a step,
    or anywhere else).

    Raises:
        WorkflowNotFoundError: No workflow of that id is recorded.

    Example::

        async for token in durable.read_stream(handle.workflow_id, "answer"):
            print(token, end="", flush=True)
    """
    engine = _reader(workflow_id, key, "read_stream")
    return follow(engine, engine.session(sync=False), workflow_id, key)


def read_stream_sync(workflow_id: str, key: str) -> Iterator[Any]:
    """Blocking form of :func:`read_stream`, for scripts, threads and notebooks.

    Example::

        for token in durable.read_stream_sync("chat-7", "answer"):
            print(token, end="")
    """
    engine = _reader(workflow_id, key, "read_stream_sync")
    return drive_iterator(follow(engine, engine.session(sync=True), workflow_id, key))


def _reader(workflow_id: str, key: str, api: str) -> Engine:
    validate_workflow_id(workflow_id)
    check_key(key)
    ctx = _context.current.get()
    if isinstance(ctx, _context.WorkflowContext):
        raise ConfigurationError(
            f"durable.{api}() was called in the body of workflow {ctx.name!r}, where what it "
            "reads would not be recorded; read the stream inside a step"
        )
    from durable._engine._runtime import current_runtime

    return current_runtime().engine


async def follow(
    engine: Engine, session: Session, workflow_id: str, key: str
) -> AsyncGenerator[Any, None]:
    """The stream's values (and restart markers) as they are written, until its end."""
    backend = session.backend
    after, running = 0, False
    with backend.notifier.subscribe(stream_topic(workflow_id)) as subscription:
        while True:
            rows = await session.run(backend.read_stream, workflow_id, key, after)
            for row in rows:
                after = row.id
                if row.kind == "end":
                    return
                if row.kind == "start":
                    if running:
                        yield StreamRestarted()
                    running = True
                    continue
                running = True
                yield engine.codec.loads(
                    row.value or b"",
                    place(workflow_id, stream_slot(key)),
                    what=f"chunk of stream {key!r} of workflow {workflow_id!r}",
                )
            if rows:
                continue
            found = await session.run(backend.get_workflow, workflow_id)
            if found is None:
                raise WorkflowNotFoundError(
                    f"no workflow {workflow_id!r} in {backend.url} to read stream {key!r} of",
                    workflow_id=workflow_id,
                )
            if found.status.finished:
                # Whatever it wrote before it finished has been read: no more will come.
                if not await session.run(backend.read_stream, workflow_id, key, after):
                    return
                continue
            await session.wait_for(subscription, engine.options.event_poll_interval)


def check_key(key: object) -> str:
    """A stream key: text of at most 255 characters."""
    return check_text(key, "stream key", EVENT_KEY_CHARS)
