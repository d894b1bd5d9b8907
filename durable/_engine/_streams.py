"""Streams: generator steps whose chunks reach the workflow (and readers) as they come.

A generator step's run opens with a ``start`` entry in its stream, appends
each chunk as it is yielded (so readers outside the workflow see it live),
then commits the step's record (the list of its chunks) together with the
``end`` entry. A replay yields the recorded chunks and runs nothing. A run
cut short by a crash leaves its chunks; the next run opens with a second
``start``, which readers see as a restart, not as more chunks.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from durable._engine import _context
from durable._engine._core import Engine
from durable._engine._steps import OverSteps, cancel_hinted, replayable
from durable._errors import ConfigurationError
from durable._records import StepKind, StepRow
from durable._serialization import place, stream_slot
from durable._session import Session
from durable._specs import StepSpec


class Streams(OverSteps):
    """Generator steps, and the streams a workflow writes with ``durable.write_stream``."""

    def fill(self, engine: Engine) -> None:
        engine.stream_step, engine.write_stream = self.stream_step, self.write_stream

    async def stream_step(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        spec: StepSpec,
        position: int,
        call: Callable[[], Any],
        key: str,
    ) -> AsyncGenerator[Any, None]:
        """Replay a generator step's recorded chunks, or run it, streaming and recording them."""
        recorded = replayable(ctx, position, spec.name, spec.kind)
        if recorded is not None:
            for chunk in self.engine.decode_step(recorded, ctx.workflow_id):
                yield chunk
            return
        if ctx.tx is not None:
            raise ConfigurationError(
                f"generator step {spec.name!r} was called inside durable.transaction(); its "
                "chunks are written as they come and cannot wait for the block's commit. Call "
                "it outside the block."
            )
        if cancel_hinted(ctx):
            await self.engine.stop_if_cancelled(ctx, session, f"step {spec.name!r}")
        self.engine.site("before_step", ctx, position, spec.name)
        started = self.engine.clock.time()
        wid, append = ctx.workflow_id, session.backend.append_stream
        await session.write(append, wid, ctx.epoch, key, "start", None)
        source = _Source(call())
        chunks: list[Any] = []
        error: Exception | None = None
        try:
            while True:
                token = _context.current.set(_context.InStep(ctx, position))
                try:
                    chunk = await source.next()
                except StopAsyncIteration:
                    break
                except Exception as exc:  # the step failed: recorded, raised in the workflow
                    error = exc
                    break
                finally:
                    _context.current.reset(token)
                chunks.append(chunk)
                payload = self.engine.codec.dumps(
                    chunk,
                    place(wid, stream_slot(key)),
                    what=f"chunk {len(chunks)} of step {spec.name!r} (position {position} "
                    f"of workflow {wid!r})",
                )
                await session.write(append, wid, ctx.epoch, key, "chunk", payload)
                yield chunk
        except GeneratorExit:
            # The workflow stopped reading: what came so far is the step's result.
            await source.close()
            await self._finish(ctx, session, spec, position, key, started, chunks, None)
            raise
        # Raises the step's error, recorded; another executor's standing record
        # is adopted (the chunks this run yielded were its own, as after a crash).
        await self._finish(ctx, session, spec, position, key, started, chunks, error)

    async def _finish(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        spec: StepSpec,
        position: int,
        key: str,
        started: float,
        chunks: list[Any],
        error: Exception | None,
    ) -> Any:
        """Commit the step's record (its chunks, or its error) with the stream's end."""
        return await self.steps.commit(
            ctx,
            session,
            position,
            spec.name,
            started,
            1,
            value=chunks,
            error=error,
            kind=spec.kind,
            via=self._appending(ctx, session, key, "end", None),
        )

    @staticmethod
    def _appending(
        ctx: _context.WorkflowContext, session: Session, key: str, kind: str, value: bytes | None
    ) -> Callable[[StepRow], Awaitable[StepRow | None]]:
        """Commit a record with a stream entry, in one transaction."""

        async def append(row: StepRow) -> StepRow | None:
            return await session.write(
                session.backend.append_stream, ctx.workflow_id, ctx.epoch, key, kind, value, row
            )

        return append

    async def write_stream(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        position: int,
        key: str,
        value: Any,
        end: bool,
    ) -> None:
        """Append a chunk (or the end) to the stream ``key``, once: recorded at ``position``."""
        name = f"{'close' if end else 'write'}_stream({key!r})"
        if replayable(ctx, position, name, StepKind.STREAM) is not None:
            return
        if cancel_hinted(ctx):
            await self.engine.stop_if_cancelled(ctx, session, name)
        payload = None
        if not end:
            payload = self.engine.codec.dumps(
                value,
                place(ctx.workflow_id, stream_slot(key)),
                what=f"chunk of stream {key!r} of workflow {ctx.workflow_id!r}",
            )
        started = self.engine.clock.time()
        await self.steps.commit(
            ctx,
            session,
            position,
            name,
            started,
            1,
            value=None,
            kind=StepKind.STREAM,
            via=self._appending(ctx, session, key, "end" if end else "chunk", payload),
        )


class _Source:
    """A step's generator, sync or async, read the same way."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator
        self.is_async = hasattr(generator, "__anext__")

    async def next(self) -> Any:
        if self.is_async:
            return await self.generator.__anext__()
        try:
            return next(self.generator)
        except StopIteration:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        if self.is_async:
            await self.generator.aclose()
        else:
            self.generator.close()
