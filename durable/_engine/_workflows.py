"""Workflows: start, claim, own, wait for and finish one workflow call."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from durable import _registry, _tracing
from durable._aio import require_asyncio
from durable._arguments import NAMED, call_fingerprint, named_fingerprint
from durable._digests import sha256
from durable._durations import deadline_after, format_utc
from durable._engine import _context
from durable._engine._core import (
    CHILD,
    DeadlinePassed,
    Engine,
    Invocation,
    Lost,
    Suspended,
    check_deadline,
    log,
    log_extra,
    quarantined,
)
from durable._engine._steps import OverSteps, cancel_hinted, replayable
from durable._errors import (
    BackendUnavailableError,
    ConfigurationError,
    DurableError,
    OwnershipLostError,
    PayloadIntegrityError,
    PayloadTooLargeError,
    SerializationError,
    WorkflowAlreadyRunningError,
    WorkflowConflictError,
    WorkflowDeduplicatedError,
    WorkflowTimeoutError,
)
from durable._identity import MAX_WORKFLOW_ID_LENGTH, derive_workflow_id, validate_workflow_id
from durable._owner import current_owner
from durable._records import (
    NewWorkflow,
    Placement,
    StepKind,
    WorkflowRow,
    WorkflowStatus,
)
from durable._serialization import (
    call_columns,
    place,
)
from durable._session import Session
from durable._specs import WorkflowSpec
from durable.backends._notify import Subscription, event_topic


class _Finished(NamedTuple):
    """A workflow found finished: the call returns its recorded outcome."""

    row: WorkflowRow


class Workflows(OverSteps):
    """Runs workflow calls: as their owner, or waiting for the live owner elsewhere."""

    def fill(self, engine: Engine) -> None:
        engine.run_workflow, engine.enqueue = self.run, self.enqueue

    async def run(self, inv: Invocation, session: Session) -> Any:
        """Run (or resume, or return the recorded outcome of) one workflow call."""
        if inv.parent is None:
            if not session.sync:
                require_asyncio(f"workflow {inv.spec.name!r}")
            workflow_id = inv.requested_id or validate_workflow_id(
                derive_workflow_id(inv.spec.name, inv.args_fingerprint)
            )
            try:
                return await self._execute(inv, session, workflow_id, parent_id=None)
            except Suspended as suspended:
                raise suspended.error(workflow_id) from None
        parent, position = inv.parent, inv.position
        assert position is not None
        recorded = replayable(parent, position, inv.spec.name, StepKind.CHILD)
        if recorded is not None:
            return self.engine.decode_step(recorded, parent.workflow_id)
        workflow_id = inv.requested_id or _child_id(parent.workflow_id, position)
        if workflow_id in (parent.workflow_id, *parent.ancestors):
            raise ConfigurationError(
                f"workflow {workflow_id!r} calls itself as its own descendant, which would "
                "wait for itself forever; give the child another workflow_id",
                workflow_id=workflow_id,
            )
        self.engine.site("before_step", parent, position, inv.spec.name)
        if cancel_hinted(parent):
            await self.engine.stop_if_cancelled(parent, session, f"child workflow {workflow_id!r}")
        started = self.engine.clock.time()
        try:
            value = await self._execute(inv, session, workflow_id, parent_id=parent.workflow_id)
        except Exception as exc:
            return await self.steps.commit(
                parent, session, position, inv.spec.name, started, 1, error=exc, kind=StepKind.CHILD
            )
        return await self.steps.commit(
            parent, session, position, inv.spec.name, started, 1, value=value, kind=StepKind.CHILD
        )

    async def enqueue(
        self,
        inv: Invocation,
        session: Session,
        placement: Placement,
    ) -> str:
        """Record a workflow call as enqueued, for a worker (idempotent per id); its id.

        Raises:
            WorkflowDeduplicatedError: the placement's ``dedup_id`` is pending in its queue.
        """
        workflow_id = inv.requested_id or validate_workflow_id(
            derive_workflow_id(inv.spec.name, inv.args_fingerprint)
        )
        new = self._new_workflow(inv, workflow_id, parent_id=None, starts=False)
        enqueue = session.backend.enqueue_workflow
        row, created = await session.run(enqueue, new, placement)
        queue, dedup_id = placement.queue, placement.dedup_id
        if not created and row.workflow_id != workflow_id:
            raise WorkflowDeduplicatedError(
                f"not enqueued: workflow {row.workflow_id!r} of queue {queue!r} has dedup_id "
                f"{dedup_id!r} and is {row.status.value}. Wait for it to finish, or use "
                "wf.options(dedup_id=..., on_duplicate='return') to get its handle instead.",
                workflow_id=row.workflow_id,
                dedup_id=dedup_id,
                queue=queue,
            )
        if not created:
            self.check_same_call(row, inv)
        return workflow_id

    def _new_workflow(
        self, inv: Invocation, workflow_id: str, parent_id: str | None, starts: bool = True
    ) -> NewWorkflow:
        """The row of a new workflow for this call, its arguments sealed for their place.

        One that ``starts`` now has its deadline; an enqueued one gets it when
        a worker starts it (time in the queue does not count).
        """
        return NewWorkflow(
            workflow_id=workflow_id,
            name=inv.spec.name,
            args_fingerprint=inv.args_fingerprint,
            args=self.engine.codec.seal(
                inv.args_body,
                place(workflow_id, "args"),
                what=f"arguments of workflow {workflow_id!r}",
                bound=(
                    call_columns(inv.spec.name, inv.args_fingerprint)
                    if self.engine.codec.signing
                    else b""
                ),
            ),
            parent_id=parent_id,
            timeout=inv.timeout,
            deadline=self._deadline(inv, inv.timeout) if starts else None,
        )

    def _deadline(self, inv: Invocation, timeout: float | None) -> float | None:
        """A run's deadline if it starts now: its timeout's, or its parent's if sooner."""
        inherited = inv.parent.deadline if inv.parent is not None else None
        if timeout is None:
            return inherited
        own = deadline_after(self.engine.clock.time(), timeout, "timeout")
        return own if inherited is None else min(own, inherited)

    async def _execute(
        self, inv: Invocation, session: Session, workflow_id: str, parent_id: str | None
    ) -> Any:
        new = self._new_workflow(inv, workflow_id, parent_id)
        # A worker's claimed row is held already, by the worker, for this call.
        token = inv.hold if inv.hold is not None else object()
        delay = 0.005
        waited = False
        while not self.leases.holds(workflow_id, token) and not (
            self.leases.try_hold(workflow_id, token)
        ):
            # Another call in this process runs it: never race it for ownership.
            if inv.spec.on_running == "raise" or _context.blocking_a_loop.get():
                raise WorkflowAlreadyRunningError(
                    f"workflow {workflow_id!r} is running in this process; not waiting "
                    "for it ("
                    + (
                        "on_running='raise'"
                        if inv.spec.on_running == "raise"
                        else "run_sync() blocks the event loop that runs it: await it instead"
                    )
                    + "). Call it again later to get its result.",
                    workflow_id=workflow_id,
                )
            await session.sleep(delay)
            delay = min(delay * 1.5, self.engine.options.poll_interval)
            waited = True
        try:
            return await self._execute_held(inv, session, new, waited)
        finally:
            self.leases.release(workflow_id, token)

    async def _execute_held(
        self, inv: Invocation, session: Session, new: NewWorkflow, waited: bool
    ) -> Any:
        """Run, resume or wait for a workflow that no other call here runs."""
        # Listening from before the claim, so no cancel slips in unseen.
        with self.engine.backend.notifier.subscribe(event_topic(new.workflow_id)) as stop_hint:
            return await self._execute_listening(inv, session, new, waited, stop_hint)

    async def _execute_listening(
        self,
        inv: Invocation,
        session: Session,
        new: NewWorkflow,
        waited: bool,
        stop_hint: Subscription,
    ) -> Any:
        workflow_id = new.workflow_id
        if inv.preclaimed is not None and inv.preclaimed.workflow_id == workflow_id:
            row, owned = inv.preclaimed, True
        else:
            row, owned = await session.write(
                session.backend.start_workflow,
                new,
                current_owner(),
                self.engine.options.lease_seconds,
            )
        while True:
            if not owned:
                taken = await self._take(inv, session, row, waited)
                if isinstance(taken, _Finished):
                    return self.engine.outcome(taken.row)
                row, owned = taken
            try:
                return await self._own(inv, session, row, owned, stop_hint)
            except Lost:
                log.warning(
                    "workflow %r: taken over by another executor",
                    workflow_id,
                    extra=log_extra(workflow_id),
                )
                row, owned, waited = await self.reload(session, workflow_id), False, True

    async def _take(
        self, inv: Invocation, session: Session, row: WorkflowRow, waited: bool
    ) -> tuple[WorkflowRow, bool] | _Finished:
        """Claim a workflow someone else started, once it may be run here.

        Returns the claimed row (and whether it starts fresh, from its queue),
        or the finished row whose outcome the call returns. Waits for a live
        owner elsewhere, unless the call must never wait.
        """
        workflow_id = row.workflow_id
        while True:
            self.check_same_call(row, inv)
            if row.status is WorkflowStatus.CANCELLED:
                raise self.engine.cancelled(row)
            if row.status is WorkflowStatus.QUARANTINED:
                raise quarantined(row)
            if row.status is WorkflowStatus.SUCCESS or (
                waited and row.status is WorkflowStatus.ERROR
            ):
                return _Finished(row)
            started = row.status in (WorkflowStatus.RUNNING, WorkflowStatus.WAITING)
            if started and self.leases.owner_alive(row, holding=True):
                if inv.never_wait:
                    raise WorkflowAlreadyRunningError(
                        f"workflow {workflow_id!r} is running under another live owner",
                        workflow_id=workflow_id,
                    )
                row, waited = await self._wait(session, row, inv.spec), True
                continue
            claimed = await self._claim(session, row)
            if claimed is not None:
                return claimed, row.status is WorkflowStatus.ENQUEUED
            row = await self.reload(session, workflow_id)

    async def _claim(self, session: Session, row: WorkflowRow) -> WorkflowRow | None:
        """Claim a workflow whose owner is gone (or that was never started); None if beaten."""
        workflow_id = row.workflow_id
        started = row.status in (WorkflowStatus.RUNNING, WorkflowStatus.WAITING)
        # Its owner process died holding it: one more recovery in a row. Not
        # so for a suspended or released workflow (no owner), nor one this
        # process dropped (an interrupt in a notebook).
        recovery = started and row.owner is not None and row.owner != current_owner()
        if recovery and row.recoveries >= self.engine.options.max_recoveries:
            if await session.run(session.backend.quarantine, workflow_id, row.epoch):
                log.error(
                    "workflow %r: quarantined after %d recoveries in a row",
                    workflow_id,
                    row.recoveries,
                    extra=log_extra(workflow_id),
                )
                raise quarantined(row)
            return None
        rerun_failed = row.status is WorkflowStatus.ERROR
        if rerun_failed:
            self.engine.verify_failed(row)
        claimed = await session.run(
            session.backend.claim_workflow,
            workflow_id,
            row.epoch,
            row.status,
            current_owner(),
            self.engine.options.lease_seconds,
            rerun_failed=rerun_failed,
            recovery=recovery,
            check_superseded=(
                functools.partial(self.engine.verify_steps, workflow_id)
                if rerun_failed and self.engine.codec.signing
                else None
            ),
        )
        if claimed is not None:
            log.info(
                "workflow %r: %s",
                workflow_id,
                {
                    WorkflowStatus.ERROR: f"new attempt {claimed.attempts}",
                    WorkflowStatus.ENQUEUED: "starting from its queue",
                }.get(row.status, "resuming after its owner died" if recovery else "resuming"),
                extra=log_extra(workflow_id),
            )
        return claimed

    async def _fail(self, session: Session, workflow_id: str, epoch: int, exc: Exception) -> bool:
        """Record a workflow's error as its outcome; False if it is no longer ours."""
        error = self.engine.codec.dumps_error(
            exc, place(workflow_id, "error"), what=f"error of workflow {workflow_id!r}"
        )
        return await session.write(
            session.backend.finish_workflow, workflow_id, epoch, WorkflowStatus.ERROR, error=error
        )

    async def _own(
        self,
        inv: Invocation,
        session: Session,
        row: WorkflowRow,
        fresh: bool,
        stop_hint: Subscription,
    ) -> Any:
        """Run the workflow body as its owner, replaying what is recorded."""
        workflow_id, epoch = row.workflow_id, row.epoch
        deadline, timeout = row.deadline, inv.timeout if inv.timeout is not None else row.timeout
        if deadline is None:
            # Not started before, or a new attempt: its time starts now.
            deadline = self._deadline(inv, timeout)
            if deadline is not None and not await session.run(
                session.backend.set_deadline, workflow_id, epoch, deadline
            ):
                raise Lost()
        recorded = {} if fresh else await session.run(session.backend.load_steps, workflow_id)
        for record in recorded.values():
            session.backend.check_output(record.output)  # before the body can catch it
        ctx = _context.WorkflowContext(
            engine=self.engine,
            session=session,
            workflow_id=workflow_id,
            name=row.name,
            epoch=epoch,
            attempt=row.attempts,
            recorded=recorded,
            ancestors=(inv.parent.workflow_id, *inv.parent.ancestors) if inv.parent else (),
            on_code_change=inv.spec.on_code_change,
            stop_hint=stop_hint,
            deadline=deadline,
            timeout=timeout,
        )
        self.leases.hold(workflow_id, epoch)
        token = _context.current.set(ctx)
        with _tracing.span(
            f"workflow {row.name}",
            lambda: {
                "durable.workflow.id": workflow_id,
                "durable.workflow.name": row.name,
                "durable.workflow.attempt": row.attempts,
                "durable.workflow.resumed": not fresh,
            },
        ):
            return await self._own_body(inv, session, ctx, token)

    async def _own_body(
        self, inv: Invocation, session: Session, ctx: _context.WorkflowContext, token: Any
    ) -> Any:
        workflow_id, epoch = ctx.workflow_id, ctx.epoch
        try:
            self.engine.site("workflow_start", ctx)
            try:
                check_deadline(ctx)  # resumed after its time was up
                value = inv.call()
                if inv.spec.is_async:
                    value = await value
                if ctx.streams:
                    await _close_streams(ctx)
            except OwnershipLostError:
                raise Lost() from None
            except DeadlinePassed as passed:
                if passed.workflow_id != workflow_id:
                    raise
                raise await self._time_out(session, ctx, ctx.timeout) from None
            except Suspended as suspended:
                if suspended.current != workflow_id:
                    # A child suspended: so does this parent, which replays
                    # down to it when resumed.
                    await session.run(
                        session.backend.set_waiting,
                        workflow_id,
                        epoch,
                        suspended.wake_at,
                        f"{CHILD}{suspended.current}",
                        suspend=True,
                    )
                    suspended.current = workflow_id
                raise
            except BackendUnavailableError:
                # The store failed, not the workflow: it stays running, for
                # the next call or a recovery to resume from its records.
                raise
            except Exception as exc:
                if ctx.streams:
                    await _close_streams(ctx)
                if isinstance(exc, WorkflowTimeoutError) and _past(ctx):
                    # Its child shared its deadline and timed out first.
                    raise await self._time_out(session, ctx, ctx.timeout) from None
                if not await self._fail(session, workflow_id, epoch, exc):
                    raise Lost() from None
                raise
            try:
                payload = self.engine.codec.dumps(
                    value, place(workflow_id, "result"), what=f"result of workflow {workflow_id!r}"
                )
            except (SerializationError, PayloadTooLargeError) as exc:
                await self._fail(session, workflow_id, epoch, exc)
                raise
            if not await session.write(
                session.backend.finish_workflow,
                workflow_id,
                epoch,
                WorkflowStatus.SUCCESS,
                result=payload,
            ):
                raise Lost()
            return value
        finally:
            _context.current.reset(token)
            self.leases.drop(workflow_id)

    async def _time_out(
        self, session: Session, ctx: _context.WorkflowContext, timeout: float | None
    ) -> WorkflowTimeoutError:
        """Record a workflow past its deadline as cancelled, its outcome the timeout error."""
        workflow_id, deadline = ctx.workflow_id, ctx.deadline
        assert deadline is not None
        limit = f"its timeout of {timeout:g} s" if timeout is not None else "its parent's deadline"
        error = WorkflowTimeoutError(
            f"workflow {workflow_id!r} timed out: {limit} was up at {format_utc(deadline)}, "
            "so it was cancelled there. store.resume() (durable resume) goes on with it from "
            "its records, its timeout counted afresh.",
            workflow_id=workflow_id,
            deadline=deadline,
            timeout=timeout,
        )
        payload = self.engine.codec.dumps_error(
            error, place(workflow_id, "error"), what=f"error of workflow {workflow_id!r}"
        )
        if not await session.write(
            session.backend.finish_workflow,
            workflow_id,
            ctx.epoch,
            WorkflowStatus.CANCELLED,
            error=payload,
        ):
            raise Lost()
        log.warning("workflow %r: timed out (%s)", workflow_id, limit, extra=log_extra(workflow_id))
        return error

    async def reload(self, session: Session, workflow_id: str) -> WorkflowRow:
        row = await session.run(session.backend.get_workflow, workflow_id)
        if row is None:
            raise DurableError(
                f"workflow {workflow_id!r} disappeared from the store while it was "
                "being run (was it deleted by a cleanup?)",
                workflow_id=workflow_id,
            )
        return row

    def check_same_call(self, row: WorkflowRow, inv: Invocation) -> None:
        if row.name == inv.spec.name and row.args_fingerprint == inv.args_fingerprint:
            return
        if row.name == inv.spec.name and row.args_fingerprint == named_fingerprint(
            inv.args, inv.kwargs
        ):
            return  # enqueued by name (a client), with these arguments as given
        try:
            _, args, kwargs = self.engine.codec.loads(
                row.args or b"",
                place(row.workflow_id, "args"),
                what=f"recorded arguments of workflow {row.workflow_id!r}",
                bound=call_columns(row.name, row.args_fingerprint),
            )
            if row.name == inv.spec.name and _same_by_name(row, args, kwargs, inv):
                return  # a call by name (a client's) and a call in code: the same call
            stored = _args_repr(args, kwargs)
        except PayloadIntegrityError:
            raise  # its name or fingerprint was edited: no conflict to report
        except Exception:
            stored = "<arguments that can no longer be unpickled>"
        called = _args_repr(inv.args, inv.kwargs)
        raise WorkflowConflictError(
            f"workflow id {row.workflow_id!r} is already recorded for "
            f"{row.name}{stored}, but was now called as {inv.spec.name}{called}. "
            "A workflow id names one call: pass another workflow_id for a "
            "different call, or the same arguments to resume or fetch this one.",
            workflow_id=row.workflow_id,
            recorded=f"{row.name}{stored}",
            called=f"{inv.spec.name}{called}",
        )

    async def _wait(self, session: Session, row: WorkflowRow, spec: WorkflowSpec) -> WorkflowRow:
        """Wait until a live owner finishes the workflow, or dies."""
        owner = row.owner
        if spec.on_running == "raise":
            raise WorkflowAlreadyRunningError(
                f"workflow {row.workflow_id!r} is running in process {owner.pid if owner else '?'}"
                f" on {owner.host.split('/')[0] if owner else '?'}; not waiting for it "
                "(on_running='raise'). Call it again later to get its result.",
                workflow_id=row.workflow_id,
            )
        log.info(
            "workflow %r is running elsewhere; waiting for its result",
            row.workflow_id,
            extra=log_extra(row.workflow_id),
        )
        delay = 0.01
        while True:
            await session.sleep(delay)
            delay = min(delay * 1.5, self.engine.options.poll_interval)
            row = await self.reload(session, row.workflow_id)
            started = row.status in (WorkflowStatus.RUNNING, WorkflowStatus.WAITING)
            if not started or not self.leases.owner_alive(row, True):
                return row


async def _close_streams(ctx: _context.WorkflowContext) -> None:
    """Close the streams the body left unread: each records what it yielded so far."""
    while ctx.streams:
        await ctx.streams.pop().aclose()


def _past(ctx: _context.WorkflowContext) -> bool:
    return ctx.deadline is not None and ctx.engine.clock.time() >= ctx.deadline


def _child_id(parent_id: str, position: int) -> str:
    """A child's derived id: the parent's and its position, hashed if too long."""
    child = f"{parent_id}/{position}"
    if len(child) > MAX_WORKFLOW_ID_LENGTH:
        digest = sha256(parent_id.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        child = f"{parent_id[:150]}~{digest}/{position}"
    return child


def _args_repr(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    text = f"({', '.join(parts)})"
    return text if len(text) <= 200 else text[:197] + "...)"


def _same_by_name(
    row: WorkflowRow, args: tuple[Any, ...], kwargs: dict[str, Any], inv: Invocation
) -> bool:
    """Whether a recorded call and a new one, one of them made by name, are the same call.

    A client's arguments are as it gave them; the code binds them to the
    signature where it has it, so ``f(42)`` is the client's ``f(order=42)``.
    """
    if inv.args_fingerprint.endswith(NAMED):  # a client now: compare as given
        return named_fingerprint(args, kwargs) == inv.args_fingerprint
    if not row.args_fingerprint.endswith(NAMED):
        return False
    workflow = _registry.lookup(row.name)
    if workflow is None:
        return False
    _, signature = workflow._self_durable
    return call_fingerprint(signature, None, args, kwargs) == inv.args_fingerprint
