"""Queues' flow control: declared in code (:class:`Queue`), and what a store says of a queue.

Every queue works without being declared: a name given to ``enqueue`` is a
queue. Declaring one gives it flow control, kept in the store (a row of
``durable_queues``) so that every worker on every host claims by the same
terms: how many run at once in all and in one worker, how many start per
period, and how many of one partition key run at once. Workers put the
queues declared in the code they import when they start;
:meth:`durable.Store.set_queue` and ``durable queues set`` change them at
run time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from durable._durations import duration
from durable._errors import ConfigurationError
from durable._records import QueueCounts, QueueRow
from durable.backends._limits import QUEUE_CHARS, check_int, check_text

RateLimit = tuple[int, "float | dt.timedelta"]
"""At most this many starts per period: ``(10, 60)`` or ``(10, timedelta(minutes=1))``
(a list of two, as read from a config file, is taken too)."""

_DECLARED: dict[str, Queue] = {}

KEEP: Any = type("Keep", (), {"__repr__": lambda self: "KEEP"})()
"""A term not given to :meth:`durable.Store.set_queue`: it stays as it is."""


class Queue:
    """A queue's flow control, declared in code; workers put it in the store as they start.

    Args:
        name: The queue's name (what ``enqueue(..., queue=)`` takes; this
            object is accepted there too).
        concurrency: Most of its workflows running at once, across every
            worker on every host.
        worker_concurrency: Most of its workflows running at once in one
            worker (beside the worker's own ``concurrency``).
        rate_limit: At most N starts per period across all workers, e.g.
            ``(100, 60)`` for 100 a minute. A start is a worker claiming an
            enqueued workflow; retries and resumes of a started one are not
            counted again.
        partition_concurrency: Most workflows of one partition key running
            at once (``enqueue(..., partition="tenant-7")``), so one
            tenant's burst leaves room for the others. Workflows enqueued
            without a key share one partition.

    Declaring a queue of the same name again replaces its terms (a notebook
    re-running a cell). Terms changed at run time (``Store.set_queue``) hold
    until a worker whose code declares the queue starts; pausing a queue
    holds until it is resumed.

    Example::

        emails = durable.Queue("emails", concurrency=10, rate_limit=(100, 60),
                               partition_concurrency=2)
        await send_digest.enqueue(user, queue=emails, partition=user.tenant)
    """

    __slots__ = ("_row",)

    def __init__(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        worker_concurrency: int | None = None,
        rate_limit: RateLimit | None = None,
        partition_concurrency: int | None = None,
    ) -> None:
        self._row = define(name, concurrency, worker_concurrency, rate_limit, partition_concurrency)
        _DECLARED[name] = self

    @property
    def name(self) -> str:
        """The queue's name."""
        return self._row.name

    def as_row(self) -> QueueRow:
        """Its row for the store (not paused)."""
        return self._row

    @staticmethod
    def declared() -> list[Queue]:
        """The queues declared in code in this process, by name (what a worker here puts)."""
        return [_DECLARED[name] for name in sorted(_DECLARED)]

    def undeclare(self) -> None:
        """Forget this declaration in this process (its row in any store stays)."""
        if _DECLARED.get(self.name) is self:
            del _DECLARED[self.name]

    def __repr__(self) -> str:
        terms = ", ".join(f"{k}={v!r}" for k, v in terms_of(self._row).items() if v is not None)
        return f"durable.Queue({self.name!r}{', ' if terms else ''}{terms})"

    def __str__(self) -> str:
        return self.name


def define(
    name: str,
    concurrency: int | None = None,
    worker_concurrency: int | None = None,
    rate_limit: RateLimit | None = None,
    partition_concurrency: int | None = None,
) -> QueueRow:
    """A queue's row from its terms as given, each checked (ConfigurationError)."""
    check_text(name, "queue name", QUEUE_CHARS)
    for value, what in (
        (concurrency, "concurrency"),
        (worker_concurrency, "worker_concurrency"),
        (partition_concurrency, "partition_concurrency"),
    ):
        if value is not None:
            check_int(value, f"{what} of queue {name!r}", minimum=1)
    most: int | None = None
    period: float | None = None
    if rate_limit is not None:
        if not isinstance(rate_limit, (tuple, list)) or len(rate_limit) != 2:
            raise ConfigurationError(
                f"rate_limit of queue {name!r} must be (starts, period), e.g. (100, 60) for "
                f"100 starts a minute, not {rate_limit!r}"
            )
        most = check_int(rate_limit[0], f"the starts of queue {name!r}'s rate_limit", minimum=1)
        period = duration(
            rate_limit[1], f"the period of queue {name!r}'s rate_limit", positive=True
        )
    return QueueRow(
        name=name,
        concurrency=concurrency,
        worker_concurrency=worker_concurrency,
        rate_limit=most,
        rate_period=period,
        partition_concurrency=partition_concurrency,
    )


def queue_name(queue: object) -> str:
    """The name an ``enqueue(queue=...)`` means: a name, or a declared :class:`Queue`'s."""
    return queue.name if isinstance(queue, Queue) else queue  # type: ignore[return-value]


def terms_of(row: QueueRow) -> dict[str, object]:
    """A queue's terms as :class:`Queue` takes them."""
    rate = None if row.rate_limit is None else (row.rate_limit, row.rate_period)
    return {
        "concurrency": row.concurrency,
        "worker_concurrency": row.worker_concurrency,
        "rate_limit": rate,
        "partition_concurrency": row.partition_concurrency,
    }


@dataclasses.dataclass(frozen=True)
class QueueInfo:
    """A queue as the store knows it: its terms and what it holds now.

    Listed by :meth:`durable.Store.queues` and ``durable queues``: every
    queue with terms in the store, and every queue with work left.
    """

    name: str
    concurrency: int | None
    """Most running at once, across all workers (None: no limit)."""
    worker_concurrency: int | None
    """Most running at once in one worker."""
    rate_limit: tuple[int, float] | None
    """At most this many starts per this many seconds."""
    partition_concurrency: int | None
    """Most running at once of one partition key."""
    paused: bool
    """Whether workers claim nothing from it (what runs goes on)."""
    enqueued: int
    """Workflows waiting to start (delayed ones included)."""
    delayed: int
    """Of those, the ones no claim may take yet: a delay (``enqueue(..., delay=)``) not
    passed, or a worker that lacked their code put them back to wait a moment."""
    running: int
    """Workflows an owner runs or waits in (what ``concurrency`` counts)."""
    recent_starts: int | None
    """Starts within the last rate period (None without a rate limit)."""
    declared: bool
    """Whether the store holds a row for it (terms, or a pause; else a name with work)."""

    @classmethod
    def of(cls, name: str, row: QueueRow | None, counts: QueueCounts | None) -> QueueInfo:
        """The info of one queue from its row (if any) and its counts (if any)."""
        row = row or QueueRow(name=name)
        counts = counts or QueueCounts()
        rate = None
        if row.rate_limit is not None and row.rate_period is not None:
            rate = (row.rate_limit, row.rate_period)
        return cls(
            name=name,
            concurrency=row.concurrency,
            worker_concurrency=row.worker_concurrency,
            rate_limit=rate,
            partition_concurrency=row.partition_concurrency,
            paused=row.paused,
            enqueued=counts.enqueued,
            delayed=counts.enqueued - counts.ready,
            running=counts.running,
            recent_starts=counts.started if rate is not None else None,
            declared=row.updated_at > 0,
        )
