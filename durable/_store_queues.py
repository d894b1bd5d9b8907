"""What the store does with queues' flow control: list queues, set their terms, pause them.

A base of :class:`durable.Store`. Workers claim by the terms the store
holds, read in the claiming transaction, so a change here holds at the
next claim of every worker on every host.
"""

from __future__ import annotations

from durable._clock import real_time
from durable._queues import KEEP, QueueInfo, RateLimit, define, terms_of
from durable._store_changes import Source
from durable.backends._limits import QUEUE_CHARS, check_text


class QueueControl:
    """List queues, set their flow control, pause and resume them."""

    _runtime: Source

    def queues(self) -> list[QueueInfo]:
        """Every queue with terms in the store or work left, by name, with what it holds.

        Example::

            for q in store.queues():
                print(q.name, q.enqueued, q.running, q.concurrency, "paused" if q.paused else "")
        """
        backend = self._runtime.backend
        rows = {row.name: row for row in backend.run_sync(backend.queues)}
        clock = self._runtime.engine.clock
        # The store's clock, which claims time starts by (a virtual one's in tests).
        now = backend.run_sync(backend.now) if real_time(clock) else clock.time()
        windows = {
            row.name: now - row.rate_period for row in rows.values() if row.rate_period is not None
        }
        counts = backend.run_sync(backend.queue_counts, windows, now)
        names = sorted(set(rows) | {name for name, c in counts.items() if c.enqueued or c.running})
        return [QueueInfo.of(name, rows.get(name), counts.get(name)) for name in names]

    def get_queue(self, name: str) -> QueueInfo:
        """One queue, with what it holds (a queue nobody declared has no limits)."""
        check_text(name, "queue name", QUEUE_CHARS)
        found = [q for q in self.queues() if q.name == name]
        if found:
            return found[0]
        return QueueInfo.of(name, None, None)

    def set_queue(
        self,
        name: str,
        *,
        concurrency: int | None = KEEP,
        worker_concurrency: int | None = KEEP,
        rate_limit: RateLimit | None = KEEP,
        partition_concurrency: int | None = KEEP,
    ) -> QueueInfo:
        """Change a queue's terms from any process: those given (None lifts one); its info.

        The terms not given stay as they are, and so does a pause. Workers
        claim by the new terms from their next claim. A worker whose code
        declares the queue (:class:`durable.Queue`) puts the declared terms
        back when it starts.

        Example::

            store.set_queue("emails", rate_limit=(100, 60))   # its concurrency stays
            store.set_queue("emails", concurrency=None)       # no limit any more
        """
        check_text(name, "queue name", QUEUE_CHARS)
        backend = self._runtime.backend
        found = backend.run_sync(backend.queues, name)
        standing = terms_of(found[0]) if found else {}
        given = {
            "concurrency": concurrency,
            "worker_concurrency": worker_concurrency,
            "rate_limit": rate_limit,
            "partition_concurrency": partition_concurrency,
        }
        merged = {k: standing.get(k) if v is KEEP else v for k, v in given.items()}
        row = define(name, **merged)  # type: ignore[arg-type]
        backend.run_sync(backend.put_queue, row, True)
        return self.get_queue(name)

    def pause_queue(self, name: str) -> None:
        """Stop every worker claiming from the queue; what runs goes on, and enqueues are kept."""
        self._pause_queue(name, True)

    def resume_queue(self, name: str) -> None:
        """Let workers claim from a paused queue again."""
        self._pause_queue(name, False)

    def delete_queue(self, name: str) -> bool:
        """Drop a queue's terms (it works on, without limits); whether it had any.

        Its workflows stay. A worker whose code declares it puts it back.
        """
        check_text(name, "queue name", QUEUE_CHARS)
        backend = self._runtime.backend
        return backend.run_sync(backend.delete_queue, name)

    def _pause_queue(self, name: str, paused: bool) -> None:
        check_text(name, "queue name", QUEUE_CHARS)
        backend = self._runtime.backend
        backend.run_sync(backend.set_queue_paused, name, paused)
