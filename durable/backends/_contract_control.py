"""The storage contract's flow control: schedules, and queues' settings and counts.

A base of :class:`durable.backends.Backend` (the contract's last operations,
apart so that each module stays small); see that module for what an
operation is and how it runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from durable._records import QueueCounts, QueueRow, ScheduleRow


class ControlContract(ABC):
    """Schedules, and queues' flow control (part of :class:`Backend`)."""

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
