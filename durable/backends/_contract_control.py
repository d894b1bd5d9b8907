"""The storage contract's last parts: schedules, queues' flow control, the store as a whole.

A base of :class:`durable.backends.Backend` (the contract's last operations,
apart so that each module stays small); see that module for what an
operation is and how it runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from durable._errors import ConfigurationError
from durable._records import Counts, QueueCounts, QueueRow, ScheduleRow, WorkflowStatus


class ControlContract(ABC):
    """Schedules, queues' flow control, the store as a whole (part of :class:`Backend`)."""

    url: str

    # Schedules ------------------------------------------------------------------

    @abstractmethod
    async def put_schedule(self, tx: Any, row: ScheduleRow, keep_state: bool) -> bool:
        """Create a schedule, or replace its definition; whether it was new.

        With ``keep_state``, a schedule that exists keeps what the store
        holds of its state (``paused``, ``last_tick``, a pending backfill,
        ``created_at``): a schedule declared in code is put again at every
        worker start. Without it, the whole row is replaced.
        """

    @abstractmethod
    async def schedules(self, tx: Any, name: str | None = None) -> list[ScheduleRow]:
        """Every schedule (or the one named), by name."""

    @abstractmethod
    async def set_schedule_paused(self, tx: Any, name: str, paused: bool) -> bool:
        """Pause or resume a schedule; whether it exists."""

    @abstractmethod
    async def delete_schedule(self, tx: Any, name: str) -> bool:
        """Delete a schedule (the workflows it started stay); whether it existed."""

    @abstractmethod
    async def advance_schedule(
        self,
        tx: Any,
        name: str,
        last_tick: float | None,
        backfilled: tuple[float, float, float] | None,
    ) -> None:
        """Move a schedule's ``last_tick`` forward (never back), and a backfill on.

        ``backfilled``: the backfill read (its start and end) and where it is
        done to: it moves only if it is still the one read; reaching its end,
        it is done and cleared.
        """

    @abstractmethod
    async def backfill_schedule(self, tx: Any, name: str, start: float, end: float) -> bool:
        """Ask for the ticks from ``start`` to ``end`` (excluded), unless one is pending; done?"""

    # Queues' flow control -----------------------------------------------------

    @abstractmethod
    async def put_queue(self, tx: Any, row: QueueRow, keep_paused: bool) -> bool:
        """Create a queue's row, or replace its settings; whether it was new.

        With ``keep_paused``, a queue that exists keeps its ``paused`` (a
        queue declared in code is put again at every worker start).
        """

    @abstractmethod
    async def queues(self, tx: Any, name: str | None = None) -> list[QueueRow]:
        """Every queue with a row (or the one named), by name."""

    @abstractmethod
    async def set_queue_paused(self, tx: Any, name: str, paused: bool) -> None:
        """Pause or resume a queue (a queue with no row gets one, with no limits).

        Under the queue's claim lock: once a pause returns, no claim that
        reads the queue's terms after it starts one of its workflows (a claim
        of a queue without flow control already under way may finish).
        """

    @abstractmethod
    async def delete_queue(self, tx: Any, name: str) -> bool:
        """Delete a queue's row, its flow control with it (its workflows stay); existed?"""

    @abstractmethod
    async def queue_counts(
        self, tx: Any, windows: Mapping[str, float] | None = None, now: float | None = None
    ) -> dict[str, QueueCounts]:
        """What each queue with work left holds: enqueued (``ready`` by ``now``), and running.

        ``now``: the time a delayed enqueue's not-before is compared with
        (default the store's clock).

        ``windows``: for these queues, also the starts after the given time
        (``started``, ``first_started``), as a rate limit counts them.
        """

    @abstractmethod
    async def expire_queued(
        self,
        tx: Any,
        queues: Sequence[str],
        now: float | None,
        error_for: Callable[[str, str, float], bytes],
    ) -> list[str]:
        """Cancel enqueued workflows of ``queues`` whose ``start_by`` is not after ``now``.

        ``now`` None: the store's clock (:meth:`now`), the one claims read.

        Each gets ``error_for(workflow_id, queue, start_by)`` as its recorded
        error, in the transaction that cancels it (atomic); at most 100 in
        one call. Their ids.
        """

    # The store as a whole -------------------------------------------------------

    @abstractmethod
    async def now(self, tx: Any) -> float:
        """The store's clock, in seconds since the epoch."""

    @abstractmethod
    async def cleanup(
        self,
        tx: Any,
        cutoff: float,
        statuses: Sequence[WorkflowStatus],
        dry_run: bool,
        *,
        name: str | None = None,
        queue: str | None = None,
    ) -> Counts:
        """Delete finished workflows (of ``statuses``) finished before ``cutoff`` (atomic).

        ``name`` and ``queue``, when given, narrow it to workflows of that
        registered name, or enqueued on that queue.
        """

    async def partition_by_month(self, tx: Any) -> int | None:
        """Keep the step records in one partition per month (atomic); how many were moved.

        None if they were kept so already. Only a PostgreSQL store can: the
        default refuses, changing nothing.
        """
        raise ConfigurationError(
            f"the store at {self.url} cannot keep its step records by month: only a "
            "PostgreSQL store can. Its cleanup deletes old workflows row by row "
            "(Store.cleanup), which is what it needs."
        )

    @abstractmethod
    async def prune(self, tx: Any, keep_snapshots: int, dry_run: bool) -> Counts:
        """Delete superseded records, and snapshots beyond the newest N of finished workflows."""

    @abstractmethod
    async def stats(self, tx: Any) -> dict[str, Any]:
        """Counts by status, live steps, and payload bytes stored."""

    async def count_by_status(self, tx: Any) -> dict[str, int]:
        """Workflows by status, without the rest of :meth:`stats` (which reads every step).

        This default reads :meth:`stats`; a backend that can count workflows
        alone (the SQL ones: on the status index) overrides it.
        """
        by_status: dict[str, int] = (await self.stats(tx))["by_status"]
        return dict(by_status)
