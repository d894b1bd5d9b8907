"""``durable.session(session_id)``: key-value state that several workflows read and write.

A session is a named scope (a user's conversation, a tenant, a batch) whose
keys any workflow or process reads and writes. Inside a workflow every read
and write is recorded at its position, so a resumed workflow sees what it
saw the first time and writes nothing twice. Concurrent workflows coordinate
with :meth:`SessionState.compare_and_set`, which writes only over the value
it expects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any

from durable._aio import drive, here
from durable._caller import called
from durable._engine import _context
from durable._engine._sessions import current_value, decide
from durable._engine._sync import run_coroutine_sync
from durable._session import Session
from durable.backends._limits import EVENT_KEY_CHARS, check_text

if TYPE_CHECKING:
    from durable._engine._core import Engine


def session(session_id: str) -> SessionState:
    """The state of the session ``session_id``, on the current runtime.

    Example::

        chat = durable.session(f"user:{user_id}")
        history = await chat.get("history", [])
        await chat.set("history", [*history, question])
    """
    return SessionState(session_id)


class SessionState:
    """The keys of one session: ``get``, ``set`` and ``compare_and_set`` (and ``_sync`` forms).

    In an async workflow ``await`` the methods; in a sync one call the
    ``_sync`` forms. Values are pickled and signed like step results.
    Writes are last-write-wins; :meth:`compare_and_set` is how concurrent
    workflows update a key safely (a counter, a claim, a list).

    Example::

        counter = durable.session("batch-7")
        while True:
            seen = await counter.get("done")              # None before the first
            if await counter.compare_and_set("done", seen, (seen or 0) + 1):
                break
    """

    def __init__(self, session_id: str) -> None:
        self.session_id = _check(session_id, "session id")

    def __repr__(self) -> str:
        return f"<durable.SessionState {self.session_id!r}>"

    def get(self, key: str, default: Any = None) -> Awaitable[Any]:
        """The value of ``key`` (``default`` if it has none); recorded in a workflow."""
        return self._async("get", key, (default,))

    def get_sync(self, key: str, default: Any = None) -> Any:
        """Blocking form of :meth:`get`."""
        return self._sync("get", key, (default,))

    def set(self, key: str, value: Any) -> Awaitable[None]:
        """Write ``value`` under ``key`` (last write wins); done once in a workflow."""
        return self._async("set", key, (value,))

    def set_sync(self, key: str, value: Any) -> None:
        """Blocking form of :meth:`set`."""
        self._sync("set", key, (value,))

    def compare_and_set(self, key: str, expected: Any, new: Any) -> Awaitable[bool]:
        """Write ``new`` under ``key`` only if its value equals ``expected``; whether it did.

        A key with no value compares equal to ``None`` (as :meth:`get` reads
        it), so ``compare_and_set(key, None, first)`` creates the key only if
        nobody has. Compared with ``==`` on the unpickled values, and written
        over the version compared, so a write by anyone in between makes it
        compare again.
        """
        return self._async("cas", key, (expected, new))

    def compare_and_set_sync(self, key: str, expected: Any, new: Any) -> bool:
        """Blocking form of :meth:`compare_and_set`."""
        return bool(self._sync("cas", key, (expected, new)))

    def _async(self, action: str, key: str, values: tuple[Any, ...]) -> Awaitable[Any]:
        coro, sync = self._operation(action, key, values, sync=False)
        return here(called(coro, f"SessionState.{_API[action]}"), sync)

    def _sync(self, action: str, key: str, values: tuple[Any, ...]) -> Any:
        coro, sync = self._operation(action, key, values, sync=True)
        return drive(coro) if sync else run_coroutine_sync(coro)

    def _operation(
        self, action: str, key: str, values: tuple[Any, ...], sync: bool
    ) -> tuple[Coroutine[Any, Any, Any], bool]:
        _check(key, "session key")
        if isinstance(_context.current.get(), _context.WorkflowContext):
            api = _API[action]
            ctx = _context.calling_workflow(
                f"SessionState.{api}{'_sync' if sync else ''}({key!r})",
                sync,
                other_form=f"SessionState.{api}_sync()" if not sync else f"`await ...{api}()`",
                outside="",
            )
            position = ctx.allocate(f"session.{action}({key!r})")
            coro = ctx.engine.session_state(
                ctx, ctx.session, position, action, self.session_id, key, values
            )
            return coro, ctx.session.sync
        from durable._engine._runtime import current_runtime

        engine = current_runtime().engine
        return _plain(engine, engine.session(sync=sync), action, self.session_id, key, values), sync


_API = {"get": "get", "set": "set", "cas": "compare_and_set"}


async def _plain(
    engine: Engine,
    session: Session,
    action: str,
    session_id: str,
    key: str,
    values: tuple[Any, ...],
) -> Any:
    """A read or write outside a workflow: the same, recorded nowhere."""
    while True:
        current, version = await current_value(engine, session, session_id, key)
        done, outcome, payload = decide(engine, action, session_id, key, current, values)
        if done:
            return outcome
        expected = None if action == "set" else version
        written, _ = await session.run(
            session.backend.session_write, session_id, key, payload, expected
        )
        if written:
            return outcome


def _check(text: object, what: str) -> str:
    return check_text(text, what, EVENT_KEY_CHARS)
