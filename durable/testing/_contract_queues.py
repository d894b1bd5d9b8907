"""The contract's checks of queues' flow control: their rows, claims within terms, expiry."""

from __future__ import annotations

from durable.backends import NewWorkflow, Placement, QueueRow, WorkflowRow, WorkflowStatus
from durable.testing._contract_parts import LEASE, OTHER, OWNER, Store, checks


def _enqueue(store: Store, workflow_id: str, placement: Placement) -> None:
    new = NewWorkflow(workflow_id, "contract.q", f"fp-{workflow_id}", None, None)
    row, created = store(store.backend.enqueue_workflow, new, placement)
    assert created
    assert (row.partition_key, row.start_by) == (placement.partition, placement.start_by)


def _ids(rows: list[WorkflowRow]) -> list[str]:
    return sorted(r.workflow_id for r in rows)


class QueueChecks:
    """Checks of the operations behind ``durable.Queue``, ``Store.set_queue`` and queue timeouts."""

    @checks("put_queue", "queues", "set_queue_paused", "delete_queue")
    def test_queue_rows_are_put_listed_paused_and_deleted(self, store: Store) -> None:
        """A queue's terms are put (keeping its pause or not), listed by name, and deleted."""
        b = store.backend
        assert store(b.queues) == []
        row = QueueRow("mail", concurrency=4, rate_limit=10, rate_period=60.0)
        assert store(b.put_queue, row, True) is True
        store(b.set_queue_paused, "mail", True)
        (paused,) = store(b.queues, "mail")
        assert (paused.paused, paused.concurrency, paused.rate_period) == (True, 4, 60.0)
        changed = QueueRow("mail", concurrency=2, worker_concurrency=1, partition_concurrency=3)
        assert store(b.put_queue, changed, True) is False
        (stored,) = store(b.queues, "mail")
        assert (stored.concurrency, stored.worker_concurrency, stored.rate_limit) == (2, 1, None)
        assert (stored.partition_concurrency, stored.paused) == (3, True)
        assert stored.updated_at > 0
        store(b.put_queue, changed, False)  # the row as given: not paused
        assert store(b.queues, "mail")[0].paused is False
        store(b.set_queue_paused, "adhoc", True)  # a queue with no row gets one
        assert [(q.name, q.paused, q.concurrency) for q in store(b.queues)] == [
            ("adhoc", True, None),
            ("mail", False, 2),
        ]
        assert store(b.delete_queue, "adhoc") is True
        assert store(b.delete_queue, "adhoc") is False
        assert [q.name for q in store(b.queues)] == ["mail"]

    @checks("claim_queued", "queue_counts")
    def test_claims_keep_to_a_queues_terms(self, store: Store) -> None:
        """Paused, concurrency, per-worker, rate and partition terms all hold in a claim."""
        b = store.backend
        for n in range(4):
            _enqueue(store, f"j{n}", Placement("jobs", priority=-n))
        store(b.set_queue_paused, "jobs", True)
        assert store(b.claim_queued, OWNER, LEASE, ["jobs"], 10, None, 1000.0) == []
        store(b.put_queue, QueueRow("jobs", concurrency=3, worker_concurrency=2), False)
        first = store(b.claim_queued, OWNER, LEASE, ["jobs"], 10, None, 1000.0, {"jobs": 1})
        assert _ids(first) == ["j0"], first  # this worker runs one already: one more
        second = store(b.claim_queued, OTHER, LEASE, ["jobs"], 10, None, 1000.0)
        assert _ids(second) == ["j1", "j2"]  # three running in all
        assert store(b.claim_queued, OTHER, LEASE, ["jobs"], 10, None, 1000.0) == []
        counts = store(b.queue_counts)["jobs"]
        assert (counts.enqueued, counts.ready, counts.running) == (1, 1, 3)
        # A queue with only a per-worker limit (no lock) is claimed beside a
        # locked one, its terms read again under the lock.
        _enqueue(store, "wc1", Placement("worker-only"))
        store(b.put_queue, QueueRow("worker-only", worker_concurrency=2), False)
        both = store(b.claim_queued, OTHER, LEASE, ["jobs", "worker-only"], 10, None, 1000.0)
        assert _ids(both) == ["wc1"]  # "jobs" is full
        # A delayed one is enqueued, and ready once its time has come (by ``now``).
        _enqueue(store, "d1", Placement("delayed", not_before=4e9))  # in 2096
        assert store(b.queue_counts, None, 1000.0)["delayed"].ready == 0
        assert store(b.queue_counts, None, 4e9)["delayed"].ready == 1
        assert store(b.queue_counts)["delayed"].ready == 0  # by the store's clock

        # A rate limit counts first starts within the period before the claim.
        for n in range(4):
            _enqueue(store, f"r{n}", Placement("rated"))
        store(b.put_queue, QueueRow("rated", rate_limit=2, rate_period=100.0), True)
        assert len(store(b.claim_queued, OWNER, LEASE, ["rated"], 10, None, 1000.0)) == 2
        assert store(b.claim_queued, OWNER, LEASE, ["rated"], 10, None, 1099.0) == []
        window = store(b.queue_counts, {"rated": 999.0})["rated"]
        assert (window.started, window.first_started) == (2, 1000.0)
        assert len(store(b.claim_queued, OWNER, LEASE, ["rated"], 10, None, 1100.0)) == 2

        # Each partition runs at most its share, and a burst of one leaves room.
        for wid, key in (("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("n1", None)):
            _enqueue(store, wid, Placement("tenants", partition=key))
        store(b.put_queue, QueueRow("tenants", partition_concurrency=1), True)
        claimed = store(b.claim_queued, OWNER, LEASE, ["tenants"], 10, None, 1000.0)
        assert _ids(claimed) == ["a1", "b1", "n1"]
        assert store(b.claim_queued, OWNER, LEASE, ["tenants"], 10, None, 1000.0) == []
        done = next(r for r in claimed if r.workflow_id == "a1")
        assert store(b.finish_workflow, "a1", done.epoch, WorkflowStatus.SUCCESS, b"r")
        after = store(b.claim_queued, OWNER, LEASE, ["tenants"], 10, None, 1000.0)
        assert _ids(after) == ["a2"]

    @checks("expire_queued")
    def test_a_queue_timeout_cancels_what_did_not_start(self, store: Store) -> None:
        """Past its start_by, an enqueued workflow is never claimed, and expires with its error."""
        b = store.backend
        _enqueue(store, "late", Placement("jobs", start_by=500.0))
        _enqueue(store, "other", Placement("elsewhere", start_by=500.0))
        assert store(b.claim_queued, OWNER, LEASE, ["jobs"], 10, None, 500.0) == []
        assert store(b.expire_queued, ["jobs"], 499.0, lambda *a: b"never") == []
        given: list[tuple[str, str, float]] = []

        def error_for(workflow_id: str, queue: str, start_by: float) -> bytes:
            given.append((workflow_id, queue, start_by))
            return b"timed out"

        with b.notifier.subscribe("event:late") as waiters:
            assert store(b.expire_queued, ["jobs"], 500.0, error_for) == ["late"]
            assert waiters.take()  # its waiting callers are woken
        assert given == [("late", "jobs", 500.0)]
        row = store.row("late")
        assert (row.status, row.error) == (WorkflowStatus.CANCELLED, b"timed out")
        assert store(b.expire_queued, ["jobs"], 600.0, error_for) == []
        assert store.row("other").status is WorkflowStatus.ENQUEUED  # not its queues
        # Past its queue timeout, a row is not ready (no claim may take it).
        _enqueue(store, "gone", Placement("expiring", start_by=500.0))
        assert store(b.queue_counts, None, 499.0)["expiring"].ready == 1
        assert store(b.queue_counts, None, 500.0)["expiring"].ready == 0
        # ``now`` None: the store's clock, long past 500 s after the epoch.
        assert store(b.expire_queued, ["elsewhere", "expiring"], None, error_for) == [
            "other",
            "gone",
        ]
