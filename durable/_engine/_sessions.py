"""Session state in workflows: each read and write of a session's keys recorded, once.

A read records the value it got; a write commits the key's new value and its
record in one transaction; a compare-and-set reads, compares, and writes over
the version it read (reading again when another writer came in between), and
records whether it wrote. A resumed workflow gets every outcome from its
records and writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from durable._engine import _context
from durable._engine._core import Engine
from durable._engine._steps import OverSteps, cancel_hinted, replayable
from durable._records import StepKind, StepRow
from durable._serialization import place
from durable._session import Session

MISSING: Any = object()


class SessionStates(OverSteps):
    """Reads and writes of session state, recorded in the workflow that makes them."""

    def fill(self, engine: Engine) -> None:
        engine.session_state = self.session_state

    async def session_state(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        position: int,
        action: str,
        session_id: str,
        key: str,
        values: tuple[Any, ...],
    ) -> Any:
        """``get`` (values: default), ``set`` (value) or ``cas`` (expected, new), recorded."""
        name = f"session.{action}({key!r})"
        recorded = replayable(ctx, position, name, StepKind.SESSION)
        if recorded is not None:
            return self.engine.decode_step(recorded, ctx.workflow_id)
        if cancel_hinted(ctx):
            await self.engine.stop_if_cancelled(ctx, session, name)
        started = self.engine.clock.time()
        while True:
            current, version = await current_value(self.engine, session, session_id, key)
            done, outcome, payload = decide(self.engine, action, session_id, key, current, values)
            if done:
                return await self._record(ctx, session, position, name, started, outcome)
            expected = None if action == "set" else version
            writes = self._writing(ctx, session, session_id, key, payload, expected)
            try:
                return await self._record(ctx, session, position, name, started, outcome, writes)
            except _Changed:
                continue  # another writer came in between: read and compare again

    async def _record(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        position: int,
        name: str,
        started: float,
        outcome: Any,
        via: Callable[[StepRow], Awaitable[StepRow | None]] | None = None,
    ) -> Any:
        return await self.steps.commit(
            ctx, session, position, name, started, 1, value=outcome, kind=StepKind.SESSION, via=via
        )

    @staticmethod
    def _writing(
        ctx: _context.WorkflowContext,
        session: Session,
        session_id: str,
        key: str,
        payload: bytes,
        expected: int | None,
    ) -> Callable[[StepRow], Awaitable[StepRow | None]]:
        """Commit a record with the key's new value, in one transaction."""

        async def write(row: StepRow) -> StepRow | None:
            written, standing = await session.write(
                session.backend.session_write,
                session_id,
                key,
                payload,
                expected,
                (ctx.workflow_id, ctx.epoch, row),
            )
            if standing is not None:
                return standing
            if not written:
                raise _Changed()
            return None

        return write


async def current_value(
    engine: Engine, session: Session, session_id: str, key: str
) -> tuple[Any, int]:
    """A key's value (MISSING if it has none) and its version (0 then)."""
    entries = await session.run(session.backend.session_read, session_id, key)
    if not entries:
        return MISSING, 0
    value = engine.codec.loads(
        entries[0].value,
        value_place(session_id, key),
        what=f"key {key!r} of session {session_id!r}",
    )
    return value, entries[0].version


def decide(
    engine: Engine,
    action: str,
    session_id: str,
    key: str,
    current: Any,
    values: tuple[Any, ...],
) -> tuple[bool, Any, bytes]:
    """What an action does with the value read: done with its outcome, or write (pickled)."""
    if action == "get":
        return True, values[0] if current is MISSING else current, b""
    # A key with no value compares equal to None: so a compare-and-set from
    # None creates a key only if nobody has.
    if action == "cas" and (None if current is MISSING else current) != values[0]:
        return True, False, b""
    new = values[0] if action == "set" else values[1]
    payload = engine.codec.dumps(
        new, value_place(session_id, key), what=f"key {key!r} of session {session_id!r}"
    )
    return False, None if action == "set" else True, payload


class _Changed(Exception):
    """The key changed between the read and the write: compare again."""


def value_place(session_id: str, key: str) -> bytes:
    """Where a session's value lives, for its signature (a value cannot move to another key)."""
    return place(f"session:{session_id}", f"key:{key}")
