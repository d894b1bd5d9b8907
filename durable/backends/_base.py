"""The Backend contract: everything the runtime asks of a store.

The runtime never speaks SQL. It asks a backend to create, claim, fence and
finish workflows and to record steps; a backend answers with the plain rows
below. Each operation is one database transaction, so a crash between two
of them leaves a state the runtime knows how to resume from.

Async forms (``a``-prefixed) default to the sync ones: right for an embedded
database whose calls take microseconds, where a thread hop would cost more
than the call. A networked backend overrides them with native async I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from durable._records import (
    CheckSteps,
    Counts,
    EventRow,
    NewWorkflow,
    Owner,
    StepAttemptRow,
    StepHistoryRow,
    StepRow,
    WorkflowQuery,
    WorkflowRow,
    WorkflowStatus,
)
from durable.backends._notify import Notifier


class Backend(ABC):
    """A durable store of workflows and their steps.

    Implementations must make every method atomic, and make ``record_step``
    and ``finish_workflow`` conditional on the fencing token (``epoch``): a
    write from an owner that lost the workflow must change nothing.
    """

    url: str
    """The URL this backend was opened from, with any password masked."""
    identity: str
    """Names the store itself: two backends with one identity share their data."""

    @abstractmethod
    def start_workflow(
        self, new: NewWorkflow, owner: Owner, lease_seconds: float
    ) -> tuple[WorkflowRow, bool]:
        """Insert ``new`` owned by ``owner``, or return the row already there.

        Returns the row and whether this call created it.
        """

    @abstractmethod
    def claim_workflow(
        self,
        workflow_id: str,
        expected_epoch: int,
        expected_status: WorkflowStatus,
        owner: Owner,
        lease_seconds: float,
        *,
        rerun_failed: bool,
        recovery: bool = False,
        check_superseded: CheckSteps | None = None,
    ) -> WorkflowRow | None:
        """Take over a workflow if its epoch and status are still as read.

        The status matters too: a workflow finished by its owner keeps its
        epoch, and must not be claimed from a read taken before it finished.

        On success the epoch and the attempt counter are incremented, the
        status set to running and the row returned; ``None`` means someone
        else claimed it first. With ``rerun_failed`` (a failed workflow run
        again), its recorded error and its steps' recorded errors are
        superseded, so that the failed steps run again; ``check_superseded``
        is called with those step records inside the claim's transaction, and
        an exception it raises rolls the whole claim back (nothing changes) and
        propagates. ``recovery`` (its owner died holding it) counts one more
        recovery in a row; any other claim resets the count.
        """

    @abstractmethod
    def load_steps(self, workflow_id: str) -> dict[int, StepRow]:
        """Every live (not superseded) step record of a workflow, by position."""

    @abstractmethod
    def record_step(self, workflow_id: str, epoch: int, step: StepRow) -> StepRow:
        """Commit a step record unless one already stands at its position.

        Returns the record that stands after the call: ``step`` itself, or the
        one another executor committed first. Raises OwnershipLostError when
        the epoch no longer matches and no record stands at the position.
        """

    @abstractmethod
    def record_step_attempt(self, workflow_id: str, epoch: int, attempt: StepAttemptRow) -> None:
        """Record a failed attempt of a step that will be retried."""

    @abstractmethod
    def step_attempts(self, workflow_id: str) -> list[StepAttemptRow]:
        """The failed, retried attempts of a workflow's steps, oldest first."""

    @abstractmethod
    def finish_workflow(
        self,
        workflow_id: str,
        epoch: int,
        status: WorkflowStatus,
        *,
        result: bytes | None = None,
        error: bytes | None = None,
    ) -> bool:
        """Record a workflow's outcome; False if the epoch no longer matches."""

    @abstractmethod
    def get_workflow(self, workflow_id: str) -> WorkflowRow | None:
        """The stored row of a workflow, or None."""

    @abstractmethod
    def renew_leases(self, owner: Owner, leases: dict[str, int], lease_seconds: float) -> list[str]:
        """Extend the leases of the workflows ``owner`` holds (id to epoch).

        Returns the ids whose lease may not have been renewed (cancelled or
        taken over, or skipped because another transaction held the row): a
        hint for their owner to look, never a verdict.
        """

    @abstractmethod
    def record_steps(self, workflow_id: str, epoch: int, steps: Sequence[StepRow]) -> None:
        """Commit several step records in one transaction (all or none).

        Raises OwnershipLostError when the epoch no longer matches or a record
        already stands at one of the positions.
        """

    @abstractmethod
    def query_workflows(self, query: WorkflowQuery) -> list[WorkflowRow]:
        """Workflows matching ``query``, newest first, without their payloads."""

    @abstractmethod
    def step_history(self, workflow_id: str) -> list[StepHistoryRow]:
        """Every step record of a workflow, superseded ones included, by position."""

    @abstractmethod
    def steps_up_to(self, workflow_id: str, position: int) -> list[StepRow]:
        """The live step records at or before ``position``, with their payloads."""

    @abstractmethod
    def supersede_from(self, workflow_id: str, epoch: int, position: int) -> None:
        """Supersede the live records at and after ``position`` (fenced by ``epoch``)."""

    async def asupersede_from(self, workflow_id: str, epoch: int, position: int) -> None:
        """Async form of :meth:`supersede_from`."""
        self.supersede_from(workflow_id, epoch, position)

    @abstractmethod
    def rewind(self, workflow_id: str, expected_epoch: int, position: int) -> bool:
        """Supersede live records after ``position`` and make the workflow resumable.

        The workflow becomes running with no owner (so the next call resumes
        it) under a new epoch (so its previous owner can write nothing more).
        False if the epoch changed meanwhile.
        """

    @abstractmethod
    def create_fork(self, new: NewWorkflow, forked_from: str, steps: Sequence[StepRow]) -> bool:
        """Create a workflow holding copies of ``steps``; False if the id is taken."""

    @abstractmethod
    def cancel(self, workflow_id: str) -> WorkflowRow | None:
        """Mark a running workflow cancelled, fencing out its owner; the row after."""

    @abstractmethod
    def cleanup(self, cutoff: float, statuses: Sequence[WorkflowStatus], dry_run: bool) -> Counts:
        """Delete finished workflows (of ``statuses``) finished before ``cutoff``."""

    @abstractmethod
    def prune(self, keep_snapshots: int, dry_run: bool) -> Counts:
        """Delete superseded records, and snapshots beyond the newest N of finished workflows."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counts by status, live steps, and payload bytes stored."""

    # Queues, waits and events ---------------------------------------------

    @abstractmethod
    def enqueue_workflow(
        self, new: NewWorkflow, queue: str, priority: int
    ) -> tuple[WorkflowRow, bool]:
        """Record ``new`` as enqueued (owned by nobody), or return the row already there."""

    @abstractmethod
    def claim_queued(
        self,
        owner: Owner,
        lease_seconds: float,
        queues: Sequence[str],
        limit: int,
        queue_limits: Mapping[str, int],
    ) -> list[WorkflowRow]:
        """Claim up to ``limit`` enqueued workflows of ``queues`` for ``owner``.

        Highest priority first, then oldest. A queue named in ``queue_limits``
        never has more running workflows than its limit, counted across every
        process that claims from the store. Claimed rows are running, owned
        by ``owner``, under a new epoch.
        """

    @abstractmethod
    def set_waiting(
        self,
        workflow_id: str,
        epoch: int,
        wake_at: float | None,
        waiting_for: str | None,
        suspend: bool,
    ) -> bool:
        """Mark a workflow waiting (fenced); ``suspend`` also gives up its ownership.

        A suspended workflow has no owner and a new epoch, so that whoever
        resumes it claims it afresh. False if the epoch no longer matches.
        """

    @abstractmethod
    def set_running(self, workflow_id: str, epoch: int) -> bool:
        """Mark a waiting workflow running again (fenced)."""

    @abstractmethod
    def release_workflow(self, workflow_id: str, epoch: int) -> bool:
        """Give up a running workflow (fenced): no owner, new epoch, anyone may resume it."""

    @abstractmethod
    def requeue_workflow(self, workflow_id: str, epoch: int) -> bool:
        """Put a claimed workflow back on its queue, unclaimed (fenced)."""

    @abstractmethod
    def owns(self, workflow_id: str, epoch: int) -> bool:
        """Whether ``epoch`` is still the workflow's (nobody cancelled or took it over)."""

    async def aowns(self, workflow_id: str, epoch: int) -> bool:
        """Async form of :meth:`owns`."""
        return self.owns(workflow_id, epoch)

    @abstractmethod
    def quarantine(self, workflow_id: str, epoch: int) -> bool:
        """Stop resuming a workflow that keeps crashing its executors (fenced)."""

    @abstractmethod
    def unquarantine(self, workflow_id: str) -> WorkflowRow | None:
        """Make a quarantined workflow resumable again (no owner, recoveries reset)."""

    @abstractmethod
    def resumable(self) -> list[WorkflowRow]:
        """Candidates for recovery, without their payloads.

        Running or waiting workflows with an owner (alive or not: the caller
        judges), and waiting ones without an owner whose timer is due or whose
        awaited event has arrived.
        """

    @abstractmethod
    def send_event(
        self, workflow_id: str, key: str, value: bytes, idempotency_key: str | None
    ) -> bool:
        """Store an event for a workflow; False if ``idempotency_key`` was sent already."""

    @abstractmethod
    def next_event(self, workflow_id: str, key: str) -> EventRow | None:
        """The oldest event of ``key`` the workflow has not consumed, or None."""

    @abstractmethod
    def take_event(self, workflow_id: str, epoch: int, event_id: int, step: StepRow) -> StepRow:
        """Consume an event and commit the step record holding it, in one transaction.

        Like :meth:`record_step`: returns the record that stands at the
        position (adopting another executor's, in which case the event is left
        unconsumed) and raises OwnershipLostError when fenced off. Raises
        EventGone, committing nothing, when the event was consumed meanwhile.
        """

    notifier: Notifier
    """Wakes waiters when an event or a queued workflow arrives."""

    @abstractmethod
    def now(self) -> float:
        """The store's clock, in seconds since the epoch."""

    @abstractmethod
    def health(self) -> dict[str, object]:
        """Check the store answers: its kind, server version, schema version, latency."""

    @abstractmethod
    def close(self) -> None:
        """Release connections. The backend must not be used afterwards."""

    async def astart_workflow(
        self, new: NewWorkflow, owner: Owner, lease_seconds: float
    ) -> tuple[WorkflowRow, bool]:
        """Async form of :meth:`start_workflow`."""
        return self.start_workflow(new, owner, lease_seconds)

    async def aclaim_workflow(
        self,
        workflow_id: str,
        expected_epoch: int,
        expected_status: WorkflowStatus,
        owner: Owner,
        lease_seconds: float,
        *,
        rerun_failed: bool,
        recovery: bool = False,
        check_superseded: CheckSteps | None = None,
    ) -> WorkflowRow | None:
        """Async form of :meth:`claim_workflow`."""
        return self.claim_workflow(
            workflow_id,
            expected_epoch,
            expected_status,
            owner,
            lease_seconds,
            rerun_failed=rerun_failed,
            recovery=recovery,
            check_superseded=check_superseded,
        )

    async def aload_steps(self, workflow_id: str) -> dict[int, StepRow]:
        """Async form of :meth:`load_steps`."""
        return self.load_steps(workflow_id)

    async def arecord_step(self, workflow_id: str, epoch: int, step: StepRow) -> StepRow:
        """Async form of :meth:`record_step`."""
        return self.record_step(workflow_id, epoch, step)

    async def arecord_step_attempt(
        self, workflow_id: str, epoch: int, attempt: StepAttemptRow
    ) -> None:
        """Async form of :meth:`record_step_attempt`."""
        self.record_step_attempt(workflow_id, epoch, attempt)

    async def afinish_workflow(
        self,
        workflow_id: str,
        epoch: int,
        status: WorkflowStatus,
        *,
        result: bytes | None = None,
        error: bytes | None = None,
    ) -> bool:
        """Async form of :meth:`finish_workflow`."""
        return self.finish_workflow(workflow_id, epoch, status, result=result, error=error)

    async def arecord_steps(self, workflow_id: str, epoch: int, steps: Sequence[StepRow]) -> None:
        """Async form of :meth:`record_steps`."""
        self.record_steps(workflow_id, epoch, steps)

    async def aget_workflow(self, workflow_id: str) -> WorkflowRow | None:
        """Async form of :meth:`get_workflow`."""
        return self.get_workflow(workflow_id)

    async def aenqueue_workflow(
        self, new: NewWorkflow, queue: str, priority: int
    ) -> tuple[WorkflowRow, bool]:
        """Async form of :meth:`enqueue_workflow`."""
        return self.enqueue_workflow(new, queue, priority)

    async def aset_waiting(
        self,
        workflow_id: str,
        epoch: int,
        wake_at: float | None,
        waiting_for: str | None,
        suspend: bool,
    ) -> bool:
        """Async form of :meth:`set_waiting`."""
        return self.set_waiting(workflow_id, epoch, wake_at, waiting_for, suspend)

    async def aset_running(self, workflow_id: str, epoch: int) -> bool:
        """Async form of :meth:`set_running`."""
        return self.set_running(workflow_id, epoch)

    async def aquarantine(self, workflow_id: str, epoch: int) -> bool:
        """Async form of :meth:`quarantine`."""
        return self.quarantine(workflow_id, epoch)

    async def asend_event(
        self, workflow_id: str, key: str, value: bytes, idempotency_key: str | None
    ) -> bool:
        """Async form of :meth:`send_event`."""
        return self.send_event(workflow_id, key, value, idempotency_key)

    async def anext_event(self, workflow_id: str, key: str) -> EventRow | None:
        """Async form of :meth:`next_event`."""
        return self.next_event(workflow_id, key)

    async def atake_event(
        self, workflow_id: str, epoch: int, event_id: int, step: StepRow
    ) -> StepRow:
        """Async form of :meth:`take_event`."""
        return self.take_event(workflow_id, epoch, event_id, step)
