"""A workflow's call forms beyond the call itself: enqueue it, or run it with options apart.

``wf.enqueue(...)`` records a call for a worker; ``wf.options(...)`` gives an
object whose ``run``/``enqueue`` take exactly the workflow's own arguments,
the options travelling apart (the call's context, or beside the arguments).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from collections.abc import Coroutine
from typing import Any, Literal

import wrapt

from durable import _registry
from durable._aio import drive
from durable._caller import named
from durable._clock import real_time
from durable._durations import duration
from durable._engine import _context
from durable._engine._core import Engine, Invocation
from durable._engine._runtime import current_runtime, runtime_of
from durable._engine._sync import run_coroutine_sync
from durable._errors import ConfigurationError, WorkflowDeduplicatedError
from durable._handle import WorkflowHandle
from durable._identity import validate_workflow_id
from durable._queues import Queue, queue_name
from durable._records import Placement
from durable._specs import WorkflowSpec
from durable.backends._limits import (
    DEFAULT_QUEUE,
    EVENT_KEY_CHARS,
    QUEUE_CHARS,
    check_int,
    check_text,
)


async def enqueued(
    engine: Engine, inv: Invocation, sync: bool, where: Where
) -> WorkflowHandle[Any]:
    """Enqueue a call; the handle of its workflow, once its row is recorded.

    With a ``dedup_id`` pending in the queue, the pending one's handle if
    ``on_duplicate="return"``, else :class:`durable.WorkflowDeduplicatedError`.
    """
    session = engine.session(sync=sync)
    now = engine.clock.time()
    relative = isinstance(where.start, (int, float, dt.timedelta))
    counted = relative or (where.queue_timeout is not None and where.start is None)
    if real_time(engine.clock) and counted:
        # A delay and a queue timeout count on the store's clock, the one that
        # claims and expiries read: this host's clock may disagree with it.
        now = await session.run(engine.backend.now)
    start = not_before(where.start, now)
    start_by = None
    if where.queue_timeout is not None:  # counted from when it may start
        start_by = (now if start is None else start) + where.queue_timeout
    placement = Placement(
        where.queue, where.priority, start, where.dedup_id, where.partition, start_by
    )
    try:
        workflow_id = await engine.enqueue(inv, session, placement)
    except WorkflowDeduplicatedError as exc:
        if where.on_duplicate != "return":
            raise
        workflow_id = str(exc.details["workflow_id"])
    return WorkflowHandle(workflow_id, runtime_of(engine))


def enqueue_in_form(bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any], where: Where) -> Any:
    """Enqueue a call: awaited for an async workflow, done at once for a sync one."""
    workflow: Any = getattr(bound, "_self_parent", None) or bound
    spec: WorkflowSpec = workflow._self_durable[0]
    coro = enqueue(bound, args, kwargs, where, sync=not spec.is_async)
    if spec.is_async:
        return named(coro, workflow.__wrapped__, ".enqueue")
    return drive(coro)


Start = float | dt.timedelta | dt.datetime | None
"""When an enqueued call may start: after a delay (seconds, timedelta), at a time, or now."""

OnDuplicate = Literal["raise", "return"]


@dataclasses.dataclass(frozen=True)
class Where:
    """Where and how a call is enqueued (its options, checked)."""

    workflow_id: str | None = None
    queue: str = DEFAULT_QUEUE
    priority: int = 0
    timeout: float | None = None
    start: Start = None
    dedup_id: str | None = None
    on_duplicate: OnDuplicate = "raise"
    partition: str | None = None
    queue_timeout: float | None = None

    @classmethod
    def checked(
        cls,
        workflow_id: str | None = None,
        queue: str | Queue = DEFAULT_QUEUE,
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        delay: float | dt.timedelta | None = None,
        start_at: dt.datetime | None = None,
        dedup_id: str | None = None,
        on_duplicate: OnDuplicate = "raise",
        partition: str | None = None,
        queue_timeout: float | dt.timedelta | None = None,
    ) -> Where:
        """The options as the caller gave them, each checked (ConfigurationError)."""
        if workflow_id is not None:
            validate_workflow_id(workflow_id)
        queue = queue_name(queue)
        check_text(queue, "queue name", QUEUE_CHARS)
        if partition is not None:
            check_text(partition, "partition", EVENT_KEY_CHARS, blank_ok=False)
        check_int(priority, "priority")
        if dedup_id is not None:
            check_text(dedup_id, "dedup_id", EVENT_KEY_CHARS, blank_ok=False)
        if on_duplicate not in ("raise", "return"):
            raise ConfigurationError(
                f"on_duplicate must be 'raise' or 'return', not {on_duplicate!r}"
            )
        return cls(
            workflow_id=workflow_id,
            queue=queue,
            priority=priority,
            timeout=check_timeout(timeout) if timeout is not None else None,
            start=start_of(delay, start_at),
            dedup_id=dedup_id,
            on_duplicate=on_duplicate,
            partition=partition,
            queue_timeout=(
                None
                if queue_timeout is None
                else duration(queue_timeout, "queue_timeout", positive=True)
            ),
        )


def start_of(delay: float | dt.timedelta | None, start_at: dt.datetime | None) -> Start:
    """The start an enqueue asked for, checked (one of ``delay`` and ``start_at`` at most)."""
    if delay is not None and start_at is not None:
        raise ConfigurationError("give delay= or start_at=, not both")
    if start_at is not None:
        if not isinstance(start_at, dt.datetime) or start_at.tzinfo is None:
            raise ConfigurationError(
                f"start_at must be an aware datetime (e.g. with tzinfo=timezone.utc), not "
                f"{start_at!r}"
            )
        return start_at
    if delay is not None:
        return duration(delay, "delay")
    return None


def not_before(start: Start, now: float) -> float | None:
    """The time before which no worker claims the call (a delay: from ``now``)."""
    if start is None:
        return None
    if isinstance(start, dt.datetime):
        return start.timestamp()
    return now + duration(start, "delay")


def enqueue(
    bound: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    where: Where,
    sync: bool,
    engine: Engine | None = None,
) -> Coroutine[Any, Any, WorkflowHandle[Any]]:
    workflow: Any = getattr(bound, "_self_parent", None) or bound
    instance = bound_instance(bound) if workflow is not bound else None
    if engine is None:
        ctx = _context.current.get()
        if isinstance(ctx, _context.WorkflowContext):
            engine = ctx.engine
        else:
            engine = current_runtime().engine
    inv = Invocation.queued(workflow, instance, args, kwargs, where.workflow_id, where.timeout)
    return enqueued(engine, inv, sync, where)


class WithOptions:
    """A workflow (or bound method) with its call options: ``wf.options(...)``.

    Its methods take exactly the workflow's own arguments: the options go to
    the call through the context (``run``) or beside the arguments
    (``enqueue``), so a parameter of the user's named ``timeout`` or
    ``workflow_id`` is the user's.
    """

    __slots__ = ("_where", "_workflow")

    def __init__(self, workflow: Any, where: Where) -> None:
        self._workflow, self._where = workflow, where

    def __repr__(self) -> str:
        return f"<{self._workflow!r} with options>"

    def run(self, *args: Any, **kwargs: Any) -> Any:
        given = _context.next_call.get() or _context.CallOptions()
        token = _context.next_call.set(
            dataclasses.replace(
                given, workflow_id=self._where.workflow_id, timeout=self._where.timeout
            )
        )
        try:
            return self._workflow(*args, **kwargs)
        finally:
            _context.next_call.reset(token)

    def run_sync(self, *args: Any, **kwargs: Any) -> Any:
        outcome = self.run(*args, **kwargs)
        if inspect.iscoroutine(outcome):
            return run_coroutine_sync(outcome)
        return outcome

    def enqueue(self, *args: Any, **kwargs: Any) -> Any:
        return enqueue_in_form(self._workflow, args, kwargs, self._where)

    def enqueue_sync(self, *args: Any, **kwargs: Any) -> Any:
        return drive(enqueue(self._workflow, args, kwargs, self._where, sync=True))


def bound_instance(bound: Any) -> Any:
    """The instance (or class) wrapt hands the wrapper when ``bound`` is called.

    For a classmethod that is the class, which ``_self_instance`` does not
    hold (it is None when the method is reached through the class).
    """
    if bound._self_binding in ("function", "callable"):
        return bound._self_instance
    return getattr(bound.__wrapped__, "__self__", None)


def check_timeout(timeout: object) -> float:
    """A timeout: more than 0 seconds (or a timedelta), at most 100 years."""
    return duration(timeout, "timeout", positive=True)


def as_called(workflow: Any) -> Any:
    """A workflow (its wrapper) bound as ``Cls.method`` binds it, classmethods included.

    From Python 3.13 a ``classmethod`` above the decorator hands
    ``Cls.method.run`` the unbound wrapper; the class is found in its
    namespace and bound here as older Pythons did, unless subclasses make
    it ambiguous which class was meant.
    """
    if isinstance(workflow, wrapt.BoundFunctionWrapper):
        return workflow
    owner = _registry.classmethod_owner(workflow)
    if owner is None:
        return workflow
    if owner.__subclasses__():
        qualname = f"{owner.__qualname__}.{workflow.__name__}"
        raise ConfigurationError(
            f"{qualname}: @classmethod is above @durable.durable_workflow, and from "
            "Python 3.13 a classmethod no longer says which class it was reached "
            f"through, so {qualname}.run(...) cannot tell {owner.__qualname__} from "
            "its subclasses; put @durable.durable_workflow above @classmethod"
        )
    return workflow.__get__(owner, owner)


def refuse_clashes(workflow: Any, where: Where, args: tuple[Any, ...]) -> None:
    """Refuse ``wf.enqueue(..., partition=...)`` when that could be the workflow's argument.

    The keyword was taken as the enqueue option, which the caller may have
    meant for a parameter of that name (one the positional arguments left
    unbound): only ``wf.options(...)`` says which.
    """
    parent: Any = getattr(workflow, "_self_parent", None) or workflow
    _, signature = parent._self_durable
    positional = [
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    offset = 1 if workflow is not parent else 0  # a method's self (or cls) comes first
    bound = set(positional[: len(args) + offset])
    open_names = {name for name in signature.parameters if name not in bound}
    given = {
        field.name
        for field in dataclasses.fields(where)
        if getattr(where, field.name) != field.default and field.name in open_names
    }
    given |= {
        name for name in ("delay", "start_at") if where.start is not None and name in open_names
    }
    if given:
        names = ", ".join(sorted(given))
        raise ConfigurationError(
            f"{parent.__wrapped__.__qualname__}.enqueue(..., {names}=...): the workflow has a "
            f"parameter named {names}, which is also an enqueue option, so it is not clear "
            f"which you meant. Pass the option with wf.options({names}=...).enqueue(...), "
            "where the arguments are only the workflow's."
        )
