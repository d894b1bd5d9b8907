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

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from durable._owner import Owner


class WorkflowStatus(str, enum.Enum):
    """The life-cycle state of a recorded workflow."""

    RUNNING = "running"
    """Started and not finished: running now, or crashed and waiting to resume."""
    SUCCESS = "success"
    """Finished and returned; its result is recorded."""
    ERROR = "error"
    """Finished by raising; calling it again starts a new attempt."""

    @property
    def finished(self) -> bool:
        """True for a status that no owner will change any more by itself."""
        return self in (WorkflowStatus.SUCCESS, WorkflowStatus.ERROR)


class StepStatus(str, enum.Enum):
    """The outcome recorded for one step."""

    SUCCESS = "success"
    ERROR = "error"


@dataclass(frozen=True)
class WorkflowRow:
    """One workflow as stored."""

    workflow_id: str
    name: str
    status: WorkflowStatus
    args_fingerprint: str
    args: bytes | None
    result: bytes | None
    error: bytes | None
    attempts: int
    epoch: int
    owner: Owner | None
    lease_expires_at: float | None
    parent_id: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    db_now: float
    """The store's clock when the row was read: leases are judged against it."""


@dataclass(frozen=True)
class StepRow:
    """One committed step record (the result or error of a step, or a child workflow)."""

    position: int
    name: str
    status: StepStatus
    output: bytes
    attempt: int
    started_at: float
    finished_at: float


@dataclass(frozen=True)
class StepAttemptRow:
    """A failed attempt of a step that was retried."""

    position: int
    name: str
    attempt: int
    started_at: float
    finished_at: float
    error_type: str
    error_message: str


@dataclass(frozen=True)
class NewWorkflow:
    """What is known of a workflow when it is first started."""

    workflow_id: str
    name: str
    args_fingerprint: str
    args: bytes | None
    parent_id: str | None


class Backend(ABC):
    """A durable store of workflows and their steps.

    Implementations must make every method atomic, and make ``record_step``
    and ``finish_workflow`` conditional on the fencing token (``epoch``): a
    write from an owner that lost the workflow must change nothing.
    """

    url: str
    """The URL this backend was opened from, with any password masked."""

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
        owner: Owner,
        lease_seconds: float,
        *,
        rerun_failed: bool,
    ) -> WorkflowRow | None:
        """Take over a workflow if its epoch is still ``expected_epoch``.

        On success the epoch and the attempt counter are incremented, the
        status set to running and the row returned; ``None`` means someone
        else claimed it first. With ``rerun_failed`` (a failed workflow run
        again), its recorded error and its steps' recorded errors are
        superseded, so that the failed steps run again.
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
    def list_workflows(self, statuses: Sequence[WorkflowStatus]) -> list[WorkflowRow]:
        """Workflows in any of ``statuses``, oldest first."""

    @abstractmethod
    def renew_leases(self, owner: Owner, leases: dict[str, int], lease_seconds: float) -> None:
        """Extend the leases of the workflows ``owner`` holds (id to epoch)."""

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
        owner: Owner,
        lease_seconds: float,
        *,
        rerun_failed: bool,
    ) -> WorkflowRow | None:
        """Async form of :meth:`claim_workflow`."""
        return self.claim_workflow(
            workflow_id, expected_epoch, owner, lease_seconds, rerun_failed=rerun_failed
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

    async def aget_workflow(self, workflow_id: str) -> WorkflowRow | None:
        """Async form of :meth:`get_workflow`."""
        return self.get_workflow(workflow_id)
