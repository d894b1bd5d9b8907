"""Steps: replay a recorded step, or run it (retries, code-change policy) and commit it."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from durable import _tracing
from durable._caller import warn
from durable._clock import Clock, jumps_ahead, real_time
from durable._codehash import fingerprint
from durable._engine import _context
from durable._engine._core import (
    DeadlinePassed,
    Engine,
    Part,
    check_deadline,
    log,
    log_extra,
)
from durable._engine._leases import Leases
from durable._engine._watch import StepEvent
from durable._errors import (
    CodeChangedError,
    CodeChangedWarning,
    NonDeterminismError,
    StepTimeoutError,
)
from durable._records import (
    StepAttemptRow,
    StepKind,
    StepRow,
    StepStatus,
    built,
)
from durable._serialization import (
    place,
    step_columns,
    step_slot,
)
from durable._session import Session
from durable._specs import OnCodeChange, StepSpec


class OverSteps(Part):
    """A part that records through the steps and holds workflows through the leases."""

    def __init__(self, engine: Engine, steps: Steps, leases: Leases) -> None:
        self.steps, self.leases = steps, leases
        super().__init__(engine)


class Steps(Part):
    """Runs the steps of a workflow: replay or run, retry, commit."""

    def fill(self, engine: Engine) -> None:
        engine.run_step, engine.snapshot = self.run, self.snapshot
        engine.publish = self.publish

    def run(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        spec: StepSpec,
        position: int,
        call: Callable[[], Any],
    ) -> Coroutine[Any, Any, Any]:
        """Replay a step's record, or run it (with retries) and record it: a coroutine.

        A step is traced inside its span; one that is not (the common case)
        builds neither the span's name nor its attributes, and awaits no
        coroutine more than its work.
        """
        if _tracing.inner_spans():
            return self._traced(ctx, session, spec, position, call)
        return self._replay_or_run(ctx, session, spec, position, call)

    async def _traced(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        spec: StepSpec,
        position: int,
        call: Callable[[], Any],
    ) -> Any:
        recorded = replayable(ctx, position, spec.name, spec.kind)
        with _tracing.span(
            f"step {spec.name}",
            lambda: {
                "durable.workflow.id": ctx.workflow_id,
                "durable.step.name": spec.name,
                "durable.step.kind": spec.kind.value,
                "durable.step.position": position,
                "durable.step.replayed": recorded is not None,
            },
            inner=True,
        ):
            return await self._replay_or_run(ctx, session, spec, position, call)

    async def _replay_or_run(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        spec: StepSpec,
        position: int,
        call: Callable[[], Any],
    ) -> Any:
        recorded = replayable(ctx, position, spec.name, spec.kind)
        if _code_differs(ctx, recorded, spec):
            assert recorded is not None
            recorded = await self._code_changed(ctx, session, spec, position, recorded)
        watchers = self.engine.watchers
        if recorded is not None:
            if _tracing.inner_spans():  # the size is looked up only for a span
                _tracing.annotate(payload_bytes=self.engine.backend.output_size(recorded.output))
            if watchers.active:
                took = recorded.finished_at - recorded.started_at
                watchers.tell(StepEvent("replayed", ctx.workflow_id, spec.name, position, took))
            return self.engine.decode_step(recorded, ctx.workflow_id)
        if not watchers.active:
            return await self._execute(ctx, session, spec, position, call)
        return await self._watched(ctx, session, spec, position, call)

    async def _watched(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        spec: StepSpec,
        position: int,
        call: Callable[[], Any],
    ) -> Any:
        """Run a step while a live view watches: it hears when it starts and ends."""
        tell, started = self.engine.watchers.tell, time.monotonic()
        tell(StepEvent("start", ctx.workflow_id, spec.name, position))
        try:
            value = await self._execute(ctx, session, spec, position, call)
        except Exception as exc:
            took = time.monotonic() - started
            error = f"{type(exc).__name__}: {exc}"
            tell(StepEvent("failed", ctx.workflow_id, spec.name, position, took, error))
            raise
        tell(StepEvent("done", ctx.workflow_id, spec.name, position, time.monotonic() - started))
        return value

    async def _code_changed(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        spec: StepSpec,
        position: int,
        recorded: StepRow,
    ) -> StepRow | None:
        """Apply the code-change policy to a record written by other code.

        Returns the record to replay, or None when the step must run again.
        """
        # An edited fingerprint must not make a committed step run again.
        self.engine.verify_steps(ctx.workflow_id, [recorded])
        policy = spec.on_code_change or ctx.on_code_change or _default_code_policy()
        where = f"step {spec.name!r} (position {position} of workflow {ctx.workflow_id!r})"
        if policy == "error":
            raise CodeChangedError(
                f"the code of {where} changed since its record was written; refusing to "
                "replay it (on_code_change='error'). Restore the old code, or use "
                "on_code_change='rerun' to run changed steps again.",
                workflow_id=ctx.workflow_id,
                position=position,
                step=spec.name,
            )
        if policy == "rerun":
            # This step and everything after it run again on the new code.
            log.info(
                "%s: code changed, running it and what follows again",
                where,
                extra=log_extra(ctx.workflow_id, spec.name, position),
            )
            await session.run(session.backend.supersede_from, ctx.workflow_id, ctx.epoch, position)
            ctx.recorded = {p: r for p, r in ctx.recorded.items() if p < position}
            return None
        warn(
            CodeChangedWarning(
                f"the code of {where} changed since its record was written; replaying the "
                "recorded result (on_code_change='reuse'). Use on_code_change='rerun' to run "
                "changed steps again, or 'error' to refuse."
            )
        )
        return recorded

    async def _execute(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        spec: StepSpec,
        position: int,
        call: Callable[[], Any],
    ) -> Any:
        """Run a step that has no record (with its retries) and record it."""
        if self.engine.hooks:  # a crash injector or sweep: a call per site only for them
            self.engine.site("before_step", ctx, position, spec.name)
        retries = 0
        while True:
            if cancel_hinted(ctx):  # a cheap look first: this runs before every step
                await self.engine.stop_if_cancelled(ctx, session, f"step {spec.name!r}")
            started = self.engine.clock.time()
            token = _context.current.set(_context.InStep(ctx, position))
            try:
                value = call()
                if spec.is_async:
                    if spec.timeout is None and ctx.deadline is None:
                        value = await value  # no limit: no task, no timer (the common case)
                    else:
                        value = await self._bounded(ctx, spec, position, value)
                elif spec.timeout is not None:
                    _late(ctx, spec, position, self.engine.clock.time() - started)
            except Exception as exc:
                if not spec.retry.should_retry(exc, retries):
                    outcome: dict[str, Any] = {"error": exc}
                    break
                retries += 1
                await session.run(
                    session.backend.record_step_attempt,
                    ctx.workflow_id,
                    ctx.epoch,
                    StepAttemptRow(
                        position=position,
                        name=spec.name,
                        attempt=retries,
                        started_at=started,
                        finished_at=self.engine.clock.time(),
                        error_type=_qualname(type(exc)),
                        error_message=_text(str(exc)),
                    ),
                )
                log.info(
                    "workflow %r step %r (position %d) failed with %r; retry %d of %d",
                    ctx.workflow_id,
                    spec.name,
                    position,
                    exc,
                    retries,
                    spec.retry.retries,
                    extra=log_extra(ctx.workflow_id, spec.name, position),
                )
                retry = spec.retry
                wait = retry.jittered(retries) if real_time(session.clock) else retry.delay(retries)
                await session.sleep(wait)
                continue
            finally:
                _context.current.reset(token)
            outcome = {"value": value}
            break
        return await self.commit(
            ctx,
            session,
            position,
            spec.name,
            started,
            retries + 1,
            kind=spec.kind,
            code_hash=_code_hash(ctx, spec),
            **outcome,
        )

    async def _bounded(
        self, ctx: _context.WorkflowContext, spec: StepSpec, position: int, body: Any
    ) -> Any:
        """Await an async step's body, cancelling it at its timeout or the workflow's deadline."""
        import asyncio

        limit, by_deadline = spec.timeout, False
        if ctx.deadline is not None:
            left = max(ctx.deadline - self.engine.clock.time(), 0.0)
            if limit is None or left < limit:
                limit, by_deadline = left, True
        if limit is None:
            return await body
        task = asyncio.ensure_future(body)
        timer = asyncio.ensure_future(_elapse(self.engine.clock, limit))
        try:
            await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            timer.cancel()
        if task.done():
            return task.result()
        task.cancel()
        # A body that swallows its cancellation is left to finish by itself.
        await asyncio.wait((task,), timeout=1.0)
        if by_deadline:
            raise DeadlinePassed(ctx.workflow_id)
        _late(ctx, spec, position, limit)

    async def commit(
        self,
        ctx: _context.WorkflowContext,
        session: Session,
        position: int,
        name: str,
        started: float,
        tries: int,
        *,
        value: Any = None,
        error: Exception | None = None,
        kind: StepKind = StepKind.STEP,
        code_hash: str | None = None,
        via: Callable[[StepRow], Awaitable[StepRow | None]] | None = None,
    ) -> Any:
        """Record a step's outcome; hand back the outcome that stands.

        That is this one, unless another executor committed first, in which
        case its record is adopted (and this outcome dropped). Inside a
        transaction the record is held back until the transaction commits.
        ``via`` commits the record with a write of its own (a stream entry,
        a session's key) in one transaction, and returns the record that
        stands (None: this one); it is never held by a transaction block.
        """
        where = f"step {name!r} (position {position} of workflow {ctx.workflow_id!r})"
        slot = place(ctx.workflow_id, step_slot(position))
        status = StepStatus.SUCCESS if error is None else StepStatus.ERROR
        bound = (
            step_columns(kind.value, name, status.value, tries, code_hash)
            if self.engine.codec.signing
            else b""
        )
        output = (
            self.engine.codec.dumps_parts(value, slot, what=f"result of {where}", bound=bound)
            if error is None
            else self.engine.codec.dumps_error(error, slot, what=f"error of {where}", bound=bound)
        )
        row = built(
            StepRow,
            {
                "position": position,
                "name": name,
                "status": status,
                "output": output,
                "attempt": tries,
                "started_at": started,
                "finished_at": self.engine.clock.time(),
                "kind": kind.value,
                "tx_id": ctx.tx.tx_id if ctx.tx is not None else None,
                "error_type": _qualname(type(error)) if error is not None else None,
                "error_message": _text(str(error)) if error is not None else None,
                "code_hash": code_hash,
            },
        )
        _tracing.annotate(payload_bytes=len(output), attempt=tries)
        if kind is not StepKind.SNAPSHOT and self.engine.hooks:
            self.engine.site("after_step", ctx, position, name)
        if ctx.tx is not None and via is None:
            ctx.tx.hold(row)
            if error is not None:
                raise error
            return value
        write_started = time.perf_counter()
        backend = session.backend
        if via is not None:
            standing = await via(row) or row
        else:
            op = backend.publish if kind is StepKind.PUBLISH else backend.record_step
            standing = await session.write(op, ctx.workflow_id, ctx.epoch, row)
        self.engine.checkpoint_seconds.append(time.perf_counter() - write_started)
        if kind is not StepKind.SNAPSHOT and self.engine.hooks:
            self.engine.site("after_commit", ctx, position, name)
        if standing is not row:
            return self.engine.decode_step(standing, ctx.workflow_id)
        if error is not None:
            raise error
        return value

    async def snapshot(
        self, ctx: _context.WorkflowContext, session: Session, position: int, name: str
    ) -> None:
        """Record a snapshot at ``position``, unless it is recorded already."""
        if replayable(ctx, position, name, StepKind.SNAPSHOT) is None:
            started = self.engine.clock.time()
            await self.commit(ctx, session, position, name, started, 1, kind=StepKind.SNAPSHOT)

    async def publish(
        self, ctx: _context.WorkflowContext, session: Session, position: int, key: str, value: Any
    ) -> None:
        """Record ``value`` under ``key`` at ``position``, unless it is recorded already."""
        if replayable(ctx, position, key, StepKind.PUBLISH) is not None:
            return
        if cancel_hinted(ctx):
            await self.engine.stop_if_cancelled(ctx, session, f"publishing {key!r}")
        started = self.engine.clock.time()
        await self.commit(
            ctx, session, position, key, started, 1, value=value, kind=StepKind.PUBLISH
        )


def cancel_hinted(ctx: _context.WorkflowContext) -> bool:
    """Whether the workflow was woken since it last looked (then it reads its row).

    Called before anything new starts (a step, a child, a wait, a publish):
    past the workflow's deadline it raises DeadlinePassed instead.
    """
    if ctx.deadline is not None:
        check_deadline(ctx)
    hint = ctx.stop_hint
    return hint is not None and hint.take()


def replayable(
    ctx: _context.WorkflowContext, position: int, name: str, kind: StepKind = StepKind.STEP
) -> StepRow | None:
    recorded = ctx.recorded.get(position)
    if recorded is None:
        return None
    if recorded.name != name or not StepKind.same_family(recorded.kind, kind):
        # An edited name or kind is tampering, not changed code.
        ctx.engine.verify_steps(ctx.workflow_id, [recorded])
        what = recorded.kind if recorded.kind in _OWN_KINDS else "step"
        now = kind.family.value
        raise NonDeterminismError(
            f"workflow {ctx.workflow_id!r} position {position}: the record there is of "
            f"{what} {recorded.name!r}, but the code now calls {now} {name!r}. The workflow's "
            "code changed the order of its steps since this run was recorded; "
            "restore the old order to resume it, or start it under a new workflow_id.",
            workflow_id=ctx.workflow_id,
            position=position,
            expected=recorded.name,
            found=name,
        )
    return recorded


async def _elapse(clock: Clock, seconds: float) -> None:
    """Let ``seconds`` pass for a step's timeout: real ones, or a hand-moved virtual clock's.

    A virtual clock that jumps ahead by itself cannot tell how long a body's
    real work takes, so a timeout counts real seconds under it.
    """
    import asyncio

    if real_time(clock) or jumps_ahead(clock):
        await asyncio.sleep(seconds)
    else:
        await clock.asleep(seconds)


def _late(ctx: _context.WorkflowContext, spec: StepSpec, position: int, took: float) -> None:
    """Fail the attempt of a step that ran (or would run) past its timeout."""
    assert spec.timeout is not None
    if took < spec.timeout:
        return
    raise StepTimeoutError(
        f"step {spec.name!r} (position {position} of workflow {ctx.workflow_id!r}) did not "
        f"finish within its timeout of {spec.timeout:g} s"
        + (
            ""
            if spec.is_async
            else " (a sync step cannot be interrupted: it ran to the end, its result is dropped)"
        ),
        workflow_id=ctx.workflow_id,
        step=spec.name,
        position=position,
        timeout=spec.timeout,
    )


_OWN_KINDS = ("snapshot", "sleep", "event", "publish")


def _code_differs(ctx: _context.WorkflowContext, recorded: StepRow | None, spec: StepSpec) -> bool:
    return bool(
        recorded is not None
        and recorded.code_hash
        and spec.function is not None
        and recorded.code_hash != _code_hash(ctx, spec)
    )


def _code_hash(ctx: _context.WorkflowContext, spec: StepSpec) -> str | None:
    """A step's code fingerprint, computed once per execution of its workflow."""
    function = spec.function
    if function is None:
        return None
    found = ctx.code_hashes.get(id(function))
    if found is None or found[0] is not function:
        found = ctx.code_hashes[id(function)] = (function, fingerprint(function))
    return found[1]


def _default_code_policy() -> OnCodeChange:
    """``rerun`` in a notebook (fix a cell, re-run: changed steps run again), else ``reuse``."""
    return "rerun" if _in_a_kernel() else "reuse"


def _in_a_kernel() -> bool:
    """Whether this process is a running IPython kernel (a notebook's), not one that imported it.

    Tools that drive notebooks (nbclient, a test suite) import ipykernel
    without being one; only a kernel's shell has a ``kernel``.
    """
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    return getattr(shell, "kernel", None) is not None


def _text(message: str) -> str:
    """An error message as a column can hold it: no NUL, UTF-8, bounded length."""
    message = message.replace("\x00", "\\x00")
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate (bytes decoded with surrogateescape)
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return message if len(message) <= 4000 else message[:3997] + "..."


def _qualname(cls: type) -> str:
    """An error's type as the records keep it (a column of 512 characters)."""
    name = cls.__qualname__
    if cls.__module__ != "builtins":
        name = f"{cls.__module__}.{cls.__qualname__}"
    return name if len(name) <= 512 else name[:509] + "..."
