"""What the store tells about its workflows: infos, histories, snapshots, metrics.

Plain values, returned by :class:`durable.Store` and shown by the CLI and
notebooks. A :class:`WorkflowInfo` loads its result and history on demand,
through the store that made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from durable import _display
from durable._errors import ConfigurationError, DurableError
from durable._records import StreamSummary, WorkflowStatus


class Records(Protocol):
    """What a :class:`WorkflowInfo` asks of the store that made it."""

    def result(self, workflow_id: str) -> Any:
        """The recorded result (raises the recorded error)."""
        ...

    def history(self, workflow_id: str) -> History:
        """The workflow's step attempts."""
        ...

    def published(self, workflow_id: str) -> dict[str, Any]:
        """The latest value of each key the workflow published."""
        ...

    def streams(self, workflow_id: str) -> list[StreamSummary]:
        """The workflow's streams."""
        ...


@dataclass(frozen=True)
class WorkflowInfo:
    """A recorded workflow. Its result or error is loaded only when asked for."""

    workflow_id: str
    name: str
    status: WorkflowStatus
    attempts: int
    """How many times it was started: 1, plus one per resume or re-run."""
    parent_id: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    owner_host: str | None = None
    """Host (with boot and pid-namespace ids) of the process that owns or owned it."""
    owner_pid: int | None = None
    forked_from: str | None = None
    """``"<workflow id>@<snapshot>"`` for a workflow made by :meth:`Store.fork`."""
    queue: str | None = None
    """The queue it was enqueued on (None for a direct call)."""
    priority: int = 0
    wake_at: float | None = None
    """While waiting: when its timer fires or its event wait times out; while enqueued
    with a delay (``delay=``, ``start_at=``): when a worker may start it."""
    waiting_for: str | None = None
    """While waiting for an event: its key (``child:<id>`` while a child waits)."""
    recoveries: int = 0
    """Resumes in a row after the process running it died (quarantined past the limit)."""
    timeout: float | None = None
    """Seconds it may run from its first start (``timeout=``), or None."""
    deadline: float | None = None
    """When it times out (Unix time): set when it starts, kept across resumes."""
    started_at: float | None = None
    """When it first began running (Unix time; an enqueued one: when a worker claimed it)."""
    partition: str | None = None
    """An enqueued one's partition of its queue (``enqueue(..., partition=)``), or None."""
    start_by: float | None = None
    """An enqueued one's queue timeout: cancelled if not started by then (Unix time)."""
    lease_expires_at: float | None = None
    """While an owner runs it: when that owner's lease runs out unless its heartbeats renew
    it (Unix time); past it, another host's worker may take the workflow over."""
    _store: Records | None = field(default=None, repr=False, compare=False)

    @property
    def enqueued_at(self) -> float | None:
        """When it was enqueued (Unix time), for a workflow of a queue; else None."""
        return self.created_at if self.queue is not None else None

    def result(self) -> Any:
        """The recorded result (raises the recorded error of a failed workflow)."""
        if self._store is None:
            raise ConfigurationError("this WorkflowInfo is not attached to a store")
        return self._store.result(self.workflow_id)

    def history(self) -> History:
        """Its step attempts (see :meth:`Store.history`)."""
        if self._store is None:
            raise ConfigurationError("this WorkflowInfo is not attached to a store")
        return self._store.history(self.workflow_id)

    def published(self) -> dict[str, Any]:
        """The latest value of each key it published (see :meth:`Store.published`)."""
        if self._store is None:
            raise ConfigurationError("this WorkflowInfo is not attached to a store")
        return self._store.published(self.workflow_id)

    def streams(self) -> list[StreamSummary]:
        """Its streams: key, chunks, restarts, ended (see :meth:`Store.streams`)."""
        if self._store is None:
            raise ConfigurationError("this WorkflowInfo is not attached to a store")
        return self._store.streams(self.workflow_id)

    def __str__(self) -> str:
        return _display.workflow_summary(self)

    def _repr_html_(self) -> str:
        if self._store is None:
            return _display.workflow_html(self, History(), {}, [])
        try:
            history, streams = self.history(), self.streams()
        except DurableError as exc:
            # The store is closed (or gone): show the card this info holds.
            note = f"steps not shown: {exc}"
            return _display.workflow_html(self, History(), {"(store)": note}, [])
        try:
            published = {key: repr(value) for key, value in self.published().items()}
        except Exception as exc:  # a value whose type cannot be imported here
            published = {"(not shown)": f"{type(exc).__name__}: {exc}"}
        return _display.workflow_html(self, history, published, streams)


class History(list["HistoryEntry"]):
    """A workflow's step attempts, in order; a table in a terminal or a notebook."""

    def __str__(self) -> str:
        return _display.history_text(self)

    def _repr_html_(self) -> str:
        return _display.history_html(self)


@dataclass(frozen=True)
class HistoryEntry:
    """One step attempt in a workflow's history."""

    position: int
    name: str
    kind: str
    """``step``, ``child``, ``snapshot`` or ``compensation``."""
    status: str
    """``success``, ``error`` (recorded), or ``retried`` (a failed attempt retried)."""
    started_at: float
    finished_at: float
    payload_bytes: int
    error: str | None
    """``"ErrorType: message"`` of a failed attempt or recorded error."""
    superseded: bool
    """Rewound by :meth:`Store.restore` or a re-run: kept for audit, never replayed."""
    transaction_id: str | None
    attempt: int
    """Which try of the step this was (1-based)."""

    @property
    def duration(self) -> float:
        """Seconds from start to end."""
        return self.finished_at - self.started_at


@dataclass(frozen=True)
class SnapshotInfo:
    """A named point of a workflow, to restore or fork from."""

    name: str
    position: int
    created_at: float
    steps: tuple[str, ...]
    """Names of the steps recorded before it, in order."""


@dataclass(frozen=True)
class CleanupReport:
    """What :meth:`Store.cleanup` or :meth:`Store.prune` deleted (or would delete)."""

    workflows: int
    steps: int
    attempts: int
    dry_run: bool


@dataclass(frozen=True)
class Metrics:
    """The store at a glance."""

    by_status: dict[str, int]
    workflows: int
    steps: int
    """Live (replayable) step records (snapshots not counted)."""
    step_ms_mean: float | None
    """Mean run time of those steps (body and retries), from their records."""
    step_ms_max: float | None
    """Longest run time of those steps."""
    storage_bytes: int
    """Bytes of stored payloads: arguments, results, errors, step outcomes."""
    checkpoint_ms_mean: float | None
    """Mean time to commit a step record, as this process measured it."""
    checkpoint_ms_p99: float | None
    checkpoints_measured: int
