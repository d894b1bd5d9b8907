"""The two decorators, ``@durable.step`` and ``@durable.durable_workflow``.

Both are ``wrapt`` function wrappers, so the decorated function keeps its
name, docstring, signature and ``inspect.iscoroutinefunction``, and works as
an instance method, classmethod or staticmethod.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

import wrapt

from durable import _registry
from durable._aio import drive, drive_iterator, loop_running
from durable._arguments import args_body, call_fingerprint
from durable._caller import awaited_by_caller, named
from durable._calls import (
    OnDuplicate,
    Where,
    WithOptions,
    as_called,
    bound_instance,
    check_timeout,
    enqueue,
    enqueue_in_form,
    refuse_clashes,
)
from durable._engine import _context
from durable._engine._core import Invocation
from durable._engine._runtime import current_runtime
from durable._engine._sync import run_coroutine_sync
from durable._errors import ConfigurationError
from durable._identity import derive_workflow_id, validate_workflow_id
from durable._queues import Queue
from durable._records import built
from durable._retry import RetryPolicy
from durable._specs import (
    OnCodeChange,
    OnRunning,
    StepSpec,
    WorkflowSpec,
)
from durable._workflow_types import AsyncWorkflow, StepDecorator, SyncWorkflow, WorkflowDecorator
from durable.backends._limits import (
    DEFAULT_QUEUE,
    EVENT_KEY_CHARS,
    NAME_CHARS,
    check_text,
)

_NO_OPTIONS = _context.CallOptions()
_watched: Any = None  # durable._live.watched, once a workflow was called

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")
T_co = TypeVar("T_co", covariant=True)


# Steps ----------------------------------------------------------------------


@overload
def step(fn: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def step(
    *,
    name: str | None = None,
    retries: int = 0,
    backoff: float | dt.timedelta = 1.0,
    backoff_multiplier: float = 2.0,
    max_backoff: float | dt.timedelta = 300.0,
    retry_on: type[Exception] | tuple[type[Exception], ...] = (Exception,),
    retry: RetryPolicy | None = None,
    on_code_change: OnCodeChange | None = None,
    timeout: float | dt.timedelta | None = None,
    stream: str | None = None,
) -> StepDecorator: ...
def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    backoff: float | dt.timedelta = 1.0,
    backoff_multiplier: float = 2.0,
    max_backoff: float | dt.timedelta = 300.0,
    retry_on: type[Exception] | tuple[type[Exception], ...] = (Exception,),
    retry: RetryPolicy | None = None,
    on_code_change: OnCodeChange | None = None,
    timeout: float | dt.timedelta | None = None,
    stream: str | None = None,
) -> Any:
    """Make a function a durable step: run once, its result recorded, replayed after.

    Inside a workflow, a step's outcome (its return value, or the exception it
    raised) is pickled into the store when it finishes; when the workflow is
    resumed, the recorded outcome is returned instead of running the step
    again. Outside a workflow, and inside another step, it is a plain call.

    Args:
        fn: The function (``async def`` or ``def``); omit it to pass options.
        name: The name recorded for the step, checked on replay. Defaults to
            the function's ``__qualname__``.
        retries: How many times to retry after a failure (each failed attempt
            is recorded).
        backoff: Seconds to wait before the first retry.
        backoff_multiplier: Growth factor of the wait between retries.
        max_backoff: Upper bound of one wait, in seconds.
        retry_on: Exception types worth retrying; others fail at once.
        retry: A whole :class:`durable.RetryPolicy` instead of the four
            options above (to share one policy between steps).
        on_code_change: What to do on resume when this step's code (or
            project code it calls) changed since its record was written:
            ``"reuse"`` the record (with a CodeChangedWarning), ``"rerun"``
            it and every step after it, or raise CodeChangedError
            (``"error"``). Defaults to the workflow's policy.
        timeout: Seconds (or a timedelta) one attempt may take. An async
            step's body is cancelled then; a sync step cannot be interrupted,
            so it runs to its end and, if that was late, its result is
            dropped. Either way the attempt fails with
            :class:`durable.StepTimeoutError`, retried if ``retry_on`` allows.
        stream: For a generator step (``def`` or ``async def`` with ``yield``):
            the key of the stream its chunks go to, for
            :func:`durable.read_stream` (default: the step's name; its
            second call in a workflow writes ``<key>#2``, and so on).

    A generator step streams: in a workflow, iterate its call (``async
    for`` for an async generator) and each chunk comes as it is yielded,
    while readers elsewhere see it live; the list of chunks is recorded when
    it ends, and replayed without running it. A crash mid-stream runs it
    again from the start. It is not retried (its chunks reached the workflow
    already) and takes no ``timeout``.

    Example::

        @durable.step(retries=3, backoff=0.5, retry_on=(TimeoutError,))
        async def fetch(url: str) -> bytes:
            ...
    """
    policy = _retry_policy(retry, retries, backoff, backoff_multiplier, max_backoff, retry_on)
    step_timeout = check_timeout(timeout) if timeout is not None else None

    def decorate(fn: Callable[..., Any]) -> Any:
        raw = _check_decoratable(fn, "step")
        step_name = _check_name(raw.__qualname__ if name is None else name)
        generator = inspect.isgeneratorfunction(raw) or inspect.isasyncgenfunction(raw)
        spec = StepSpec(
            name=step_name,
            is_async=inspect.iscoroutinefunction(raw) or inspect.isasyncgenfunction(raw),
            retry=policy,
            function=raw,
            on_code_change=_check_code_policy(on_code_change),
            timeout=step_timeout,
            stream=_stream_key(step_name, stream, policy, step_timeout) if generator else None,
        )

        def wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            ctx = _context.current.get()
            if not isinstance(ctx, _context.WorkflowContext):
                return wrapped(*args, **kwargs)
            if spec.is_async and ctx.session.sync:
                raise ConfigurationError(
                    f"async step {spec.name!r} was called from the sync workflow "
                    f"{ctx.name!r}, which cannot await it; make the workflow "
                    "`async def` or the step a plain `def`"
                )
            if not spec.is_async and not ctx.session.sync and awaited_by_caller():
                raise _awaited_sync("step", spec.name)
            position = ctx.allocate(spec.name)
            call = functools.partial(wrapped, *args, **kwargs)
            if spec.stream is not None:
                return _streamed(ctx, spec, position, call)
            run_step = ctx.engine.run_step
            if spec.is_async:
                return named(run_step(ctx, ctx.session, spec, position, call), raw)
            return drive(run_step(ctx, ctx.engine.session(sync=True), spec, position, call))

        return wrapt.FunctionWrapper(fn, wrapper)

    return decorate if fn is None else decorate(fn)


# Workflows ------------------------------------------------------------------


class _RunMethods:
    """``run`` and ``run_sync``, on the workflow and on its bound forms."""

    __slots__ = ()

    def run(
        self,
        *args: Any,
        workflow_id: str | None = None,
        timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> Any:
        if workflow_id is not None:
            validate_workflow_id(workflow_id)
        given = _context.next_call.get() or _context.CallOptions()
        token = _context.next_call.set(
            dataclasses.replace(
                given,
                workflow_id=workflow_id,
                timeout=check_timeout(timeout) if timeout is not None else given.timeout,
            )
        )
        try:
            return self._as_called()(*args, **kwargs)
        finally:
            _context.next_call.reset(token)

    def run_sync(
        self,
        *args: Any,
        workflow_id: str | None = None,
        timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> Any:
        outcome = self.run(*args, workflow_id=workflow_id, timeout=timeout, **kwargs)
        if inspect.iscoroutine(outcome):
            return run_coroutine_sync(outcome)
        return outcome

    def enqueue(
        self,
        *args: Any,
        workflow_id: str | None = None,
        queue: str | Queue = DEFAULT_QUEUE,
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        delay: float | dt.timedelta | None = None,
        start_at: dt.datetime | None = None,
        dedup_id: str | None = None,
        partition: str | None = None,
        queue_timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> Any:
        where = Where.checked(
            workflow_id,
            queue,
            priority,
            timeout,
            delay,
            start_at,
            dedup_id,
            partition=partition,
            queue_timeout=queue_timeout,
        )
        refuse_clashes(self, where, args)
        return enqueue_in_form(self._as_called(), args, kwargs, where)

    def enqueue_sync(
        self,
        *args: Any,
        workflow_id: str | None = None,
        queue: str | Queue = DEFAULT_QUEUE,
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        delay: float | dt.timedelta | None = None,
        start_at: dt.datetime | None = None,
        dedup_id: str | None = None,
        partition: str | None = None,
        queue_timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> Any:
        where = Where.checked(
            workflow_id,
            queue,
            priority,
            timeout,
            delay,
            start_at,
            dedup_id,
            partition=partition,
            queue_timeout=queue_timeout,
        )
        refuse_clashes(self, where, args)
        return drive(enqueue(self._as_called(), args, kwargs, where, sync=True))

    def options(
        self,
        *,
        workflow_id: str | None = None,
        timeout: float | dt.timedelta | None = None,
        queue: str | Queue = DEFAULT_QUEUE,
        priority: int = 0,
        delay: float | dt.timedelta | None = None,
        start_at: dt.datetime | None = None,
        dedup_id: str | None = None,
        on_duplicate: OnDuplicate = "raise",
        partition: str | None = None,
        queue_timeout: float | dt.timedelta | None = None,
    ) -> WithOptions:
        where = Where.checked(
            workflow_id,
            queue,
            priority,
            timeout,
            delay,
            start_at,
            dedup_id,
            on_duplicate,
            partition,
            queue_timeout,
        )
        return WithOptions(self._as_called(), where)

    def id_for(self, *args: Any, **kwargs: Any) -> str:
        called = self._as_called()
        workflow: Any = getattr(called, "_self_parent", None) or called
        spec, signature = workflow._self_durable
        instance = bound_instance(called) if workflow is not called else None
        fp = call_fingerprint(signature, instance, args, kwargs)
        return validate_workflow_id(derive_workflow_id(spec.name, fp))

    def _as_called(self) -> Any:
        return as_called(self)


class _BoundWorkflowFunction(_RunMethods, wrapt.BoundFunctionWrapper):  # type: ignore[type-arg]
    pass


class _WorkflowFunction(_RunMethods, wrapt.FunctionWrapper):  # type: ignore[type-arg]
    __bound_function_wrapper__ = _BoundWorkflowFunction
    _self_durable: tuple[WorkflowSpec, inspect.Signature]


@overload
def durable_workflow(  # type: ignore[overload-overlap]
    fn: Callable[P, Coroutine[Any, Any, T]], /
) -> AsyncWorkflow[P, T]: ...
@overload
def durable_workflow(fn: Callable[P, T], /) -> SyncWorkflow[P, T]: ...
@overload
def durable_workflow(
    *,
    name: str | None = None,
    on_running: OnRunning = "wait",
    on_code_change: OnCodeChange | None = None,
    timeout: float | dt.timedelta | None = None,
) -> WorkflowDecorator: ...
def durable_workflow(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    on_running: OnRunning = "wait",
    on_code_change: OnCodeChange | None = None,
    timeout: float | dt.timedelta | None = None,
) -> Any:
    """Make a function a durable workflow: resumable, its steps never redone.

    Calling the workflow records it under a workflow id (derived from its
    name and arguments, or given with ``.run(..., workflow_id=...)``) and runs
    it. Calling it again with the same id returns the recorded result of a
    finished run, resumes a crashed one where it stopped, starts a new attempt
    of a failed one that reuses every step that succeeded, and waits for (or,
    with ``on_running="raise"``, refuses) one still running in another live
    process. A workflow called inside another is its child.

    Args:
        fn: The function (``async def`` or ``def``); omit it to pass options.
        name: The registered name, stored with each run and used by
            :func:`durable.recover`. Defaults to ``module.qualname``; set it to
            keep old runs resumable when you move or rename the function.
        on_running: ``"wait"`` (default) for the live owner to finish and
            return its result, or ``"raise"`` WorkflowAlreadyRunningError.
        on_code_change: The policy for steps whose code changed since their
            record was written (see :func:`step`): ``"reuse"`` (the default;
            ``"rerun"`` in a Jupyter kernel), ``"rerun"`` or ``"error"``.
        timeout: Seconds (or a timedelta) a run may take, counted from its
            first start and kept across crashes and resumes (a resumed run
            gets what is left). At the deadline the workflow is cancelled
            and its caller gets :class:`durable.WorkflowTimeoutError`. Its
            child workflows inherit the deadline (their own timeout can only
            shorten it). ``wf.run(..., timeout=)`` overrides it per call.

    Example::

        @durable.durable_workflow
        async def digest(url: str) -> str:
            page = await fetch(url)
            return await summarize(page)

        await digest("https://example.org")
        await digest.run("https://example.org", workflow_id="job-42")
        digest.run_sync("https://example.org")
    """
    if on_running not in ("wait", "raise"):
        raise ConfigurationError(f"on_running must be 'wait' or 'raise', not {on_running!r}")
    workflow_timeout = check_timeout(timeout) if timeout is not None else None

    def decorate(fn: Callable[..., Any]) -> Any:
        raw = _check_decoratable(fn, "workflow")
        spec = WorkflowSpec(
            name=_check_name(f"{_module_name(raw)}.{raw.__qualname__}" if name is None else name),
            is_async=inspect.iscoroutinefunction(raw),
            on_running=on_running,
            on_code_change=_check_code_policy(on_code_change),
            timeout=workflow_timeout,
        )
        signature = inspect.signature(raw)

        def wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            in_loop = loop_running()
            if not spec.is_async and in_loop and awaited_by_caller():
                raise _awaited_sync("workflow", spec.name)
            options = _context.next_call.get() or _NO_OPTIONS
            if options is not _NO_OPTIONS:
                _context.next_call.set(None)  # not for its children
            ctx = _context.current.get()
            parent = ctx if isinstance(ctx, _context.WorkflowContext) else None
            if parent is not None and spec.is_async and parent.session.sync:
                raise ConfigurationError(
                    f"async workflow {spec.name!r} was called from the sync workflow "
                    f"{parent.name!r}, which cannot await it; make the parent "
                    "`async def` or the child a plain `def`"
                )
            engine = parent.engine if parent is not None else current_runtime().engine
            inv = built(
                Invocation,
                {
                    "spec": spec,
                    "call": functools.partial(wrapped, *args, **kwargs),
                    # The payload first: it says clearly which argument does not pickle.
                    "args_body": args_body(spec, signature, instance, args, kwargs),
                    "args_fingerprint": call_fingerprint(signature, instance, args, kwargs),
                    "args": args,
                    "kwargs": kwargs,
                    "requested_id": options.workflow_id,
                    "parent": parent,
                    "position": parent.allocate(spec.name) if parent is not None else None,
                    "never_wait": options.never_wait,
                    "preclaimed": options.preclaimed,
                    "hold": options.hold,
                    "timeout": options.timeout if options.timeout is not None else spec.timeout,
                },
            )
            global _watched
            if _watched is None:  # imported by the first call only: import durable stays light
                from durable._live import watched as _watched

            if spec.is_async:
                coro = engine.run_workflow(inv, engine.session(sync=False))
                return named(coro if parent else _watched(engine, coro), raw)
            coro = engine.run_workflow(inv, engine.session(sync=True))
            return drive(coro if parent or options.preclaimed else _watched(engine, coro))

        workflow = _WorkflowFunction(fn, wrapper)
        workflow._self_durable = (spec, signature)
        _registry.register(spec.name, workflow)
        return workflow

    return decorate if fn is None else decorate(fn)


# Helpers --------------------------------------------------------------------


def _check_decoratable(fn: object, kind: str) -> Callable[..., Any]:
    """The plain function behind ``fn`` (unwrapping classmethod/staticmethod)."""
    raw = getattr(fn, "__func__", fn)
    if inspect.isclass(raw):
        decorator = "step" if kind == "step" else "durable_workflow"
        raise ConfigurationError(
            f"@durable.{decorator} decorates a function, not the class {raw.__qualname__}; "
            f"decorate its methods instead (each one is a {kind} of its own)"
        )
    if not callable(raw) or not hasattr(raw, "__qualname__"):
        raise ConfigurationError(
            f"@durable.{'step' if kind == 'step' else 'durable_workflow'} decorates a "
            f"function, not {type(fn).__name__} {fn!r}"
        )
    generator = inspect.isgeneratorfunction(raw) or inspect.isasyncgenfunction(raw)
    if generator and kind != "step":
        raise ConfigurationError(
            f"{raw.__qualname__} is a generator function; a durable {kind} must return "
            "its result (collect the items into a list and return that, or yield them from "
            "a generator step: @durable.step streams)"
        )
    namespace = getattr(raw, "__globals__", None)
    if isinstance(namespace, dict):
        # A script's classes and functions are pickled by name and found here.
        _registry.note_namespace(raw.__module__, namespace)
    return raw


def _module_name(fn: Callable[..., Any]) -> str:
    """The module part of a workflow's default name: a script is ``__main__`` however run.

    ``runpy.run_path`` runs it as ``<run_path>`` and a spawned process
    imports it as ``__mp_main__``; the same workflow must keep its name (and
    so its derived ids) under each.
    """
    return "__main__" if fn.__module__ in _registry.SCRIPT_MODULES else fn.__module__


def _awaited_sync(kind: str, name: str) -> ConfigurationError:
    """The error for ``await`` on a sync workflow or step, raised before it runs."""
    return ConfigurationError(
        f"{kind} {name!r} is a plain `def`, and the calling line awaits it: it returns "
        f"its result, not an awaitable. Call it without `await`, or make the {kind} "
        "`async def`. Nothing was run."
    )


def _check_code_policy(policy: OnCodeChange | None) -> OnCodeChange | None:
    if policy not in (None, "reuse", "rerun", "error"):
        raise ConfigurationError(
            f"on_code_change must be 'reuse', 'rerun' or 'error', not {policy!r}"
        )
    return policy


def _retry_policy(
    retry: RetryPolicy | None,
    retries: int,
    backoff: float | dt.timedelta,
    backoff_multiplier: float,
    max_backoff: float | dt.timedelta,
    retry_on: type[Exception] | tuple[type[Exception], ...],
) -> RetryPolicy:
    """A step's retry policy: ``retry=`` whole, or built from the four options."""
    if retry is not None:
        if not isinstance(retry, RetryPolicy):
            raise ConfigurationError(f"retry must be a durable.RetryPolicy, not {retry!r}")
        if (retries, backoff, backoff_multiplier, max_backoff, retry_on) != (
            0,
            1.0,
            2.0,
            300.0,
            (Exception,),
        ):
            raise ConfigurationError("pass either retry=RetryPolicy(...) or retries=..., not both")
        return retry
    return RetryPolicy(
        retries=retries,
        backoff=backoff,
        backoff_multiplier=backoff_multiplier,
        max_backoff=max_backoff,
        retry_on=retry_on if isinstance(retry_on, tuple) else (retry_on,),
    )


def _streamed(
    ctx: _context.WorkflowContext, spec: StepSpec, position: int, call: Callable[[], Any]
) -> Any:
    """A generator step's call in a workflow: its chunks, as an (async) iterator."""
    assert spec.stream is not None
    nth = ctx.nth[position]
    key = spec.stream if nth == 1 else f"{spec.stream}#{nth}"
    session = ctx.session if spec.is_async else ctx.engine.session(sync=True)
    stream = ctx.engine.stream_step(ctx, session, spec, position, call, key)
    ctx.streams.append(stream)
    return stream if spec.is_async else drive_iterator(stream)


def _stream_key(name: str, stream: str | None, policy: RetryPolicy, timeout: float | None) -> str:
    """The stream of a generator step, which takes no retries and no timeout."""
    if policy.retries or timeout is not None:
        raise ConfigurationError(
            f"generator step {name!r} cannot take retries or a timeout: its chunks reach the "
            "workflow as they come, so a retry would hand it a second set. Retry inside the "
            "generator, or collect the chunks in a plain step."
        )
    key = name if stream is None else stream
    if len(key) > EVENT_KEY_CHARS - 8:
        raise ConfigurationError(
            f"the stream key of generator step {name[:40]!r}... is {len(key)} characters, more "
            f"than {EVENT_KEY_CHARS - 8}; give it a shorter one with stream='...'"
        )
    return check_text(key, "stream key", EVENT_KEY_CHARS)


def _check_name(name: object) -> str:
    """A workflow's or step's name (given, or its function's): recorded with every run."""
    return check_text(name, "name", NAME_CHARS, blank_ok=False)
