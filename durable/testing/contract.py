"""The storage contract as a test suite: run it against your own backend.

Every operation of :class:`durable.backends.Backend` is checked for what its
docstring promises (fencing, first-commit-wins, all-or-none, claims that
count across processes...), once through :meth:`~durable.backends.Backend.run_sync`
and once through :meth:`~durable.backends.Backend.run_async`: the engine uses
both paths, and an operation must mean the same on either. Both built-in
backends (SQLite, PostgreSQL) pass it; ``test_every_operation_is_checked``
fails when an operation has no check.

Needs pytest. Subclass :class:`BackendContract` in a test module and give it a
``backend`` fixture that yields a fresh, empty store::

    import pytest
    from durable.testing.contract import BackendContract

    class TestMyBackend(BackendContract):
        @pytest.fixture
        def backend(self):
            store = MyBackend("mydb://localhost/test")
            yield store
            store.close()
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from durable._errors import OwnershipLostError, WorkflowNotFoundError
from durable.backends import (
    OPERATIONS,
    Backend,
    Counts,
    EventGone,
    NewWorkflow,
    Parts,
    Placement,
    StepAttemptRow,
    StepStatus,
    WorkflowQuery,
    WorkflowStatus,
)
from durable.testing._contract_parts import (
    LEASE,
    OTHER,
    OWNER,
    Store,
    checks,
    step,
)
from durable.testing._contract_queues import QueueChecks
from durable.testing._contract_state import StateChecks

__all__ = ["LEASE", "OTHER", "OWNER", "BackendContract", "Store", "checks", "step"]


class BackendContract(StateChecks, QueueChecks):
    """The checks; a subclass supplies the ``backend`` fixture (a fresh, empty store)."""

    mode_ids: ClassVar[tuple[str, ...]] = ("sync", "async")

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        """A fresh, empty store; a subclass provides it (and closes it after)."""
        raise NotImplementedError("give BackendContract a `backend` fixture")

    @pytest.fixture(params=mode_ids)
    def store(self, request: pytest.FixtureRequest, backend: Backend) -> Iterator[Store]:
        """The backend, driven through one path: each check runs once sync, once async."""
        loop = asyncio.new_event_loop()
        try:
            yield Store(backend, request.param, loop)
        finally:
            loop.close()

    def test_every_operation_is_checked(self) -> None:
        """Each operation of the contract has at least one check below."""
        checked = {
            op for name in dir(self) for op in getattr(getattr(self, name), "operations", ())
        }
        assert checked == set(OPERATIONS), sorted(set(OPERATIONS) ^ checked)

    # Workflows ----------------------------------------------------------------

    @checks("start_workflow", "get_workflow", "now")
    def test_start_creates_once(self, store: Store) -> None:
        """A start inserts the row owned by its caller, or hands back the row already there."""
        before = store(store.backend.now)
        row = store.start("w1")
        assert (row.status, row.epoch, row.attempts, row.owner) == (
            WorkflowStatus.RUNNING,
            1,
            1,
            OWNER,
        )
        assert row.args == b"args"
        assert row.lease_expires_at is not None
        assert row.lease_expires_at >= before + LEASE - 1
        # The row handed back is the row stored, as a read gives it (but its clock).
        read = store(store.backend.get_workflow, "w1")
        assert read is not None
        assert dataclasses.replace(row, db_now=0.0) == dataclasses.replace(read, db_now=0.0)
        again = NewWorkflow("w1", "contract.other", "fp-other", None, None)
        standing, created = store(store.backend.start_workflow, again, OTHER, LEASE)
        assert not created
        assert (standing.name, standing.args_fingerprint, standing.owner) == (
            "contract.wf",
            "fp-w1",
            OWNER,
        )
        assert store(store.backend.get_workflow, "nobody") is None

    @checks("claim_workflow")
    def test_claim_is_fenced_by_epoch_and_status(self, store: Store) -> None:
        """A claim takes a workflow only as it was read (epoch, status); recoveries count up."""
        store.start("w")
        claim = store.backend.claim_workflow
        assert (
            store(claim, "w", 2, WorkflowStatus.RUNNING, OTHER, LEASE, rerun_failed=False) is None
        )
        assert (
            store(claim, "w", 1, WorkflowStatus.WAITING, OTHER, LEASE, rerun_failed=False) is None
        )
        taken = store(claim, "w", 1, WorkflowStatus.RUNNING, OTHER, LEASE, rerun_failed=False)
        assert taken is not None
        assert (taken.epoch, taken.attempts, taken.owner, taken.recoveries) == (2, 2, OTHER, 0)
        again = store(
            claim, "w", 2, WorkflowStatus.RUNNING, OWNER, LEASE, rerun_failed=False, recovery=True
        )
        assert again is not None
        assert again.recoveries == 1
        assert (
            store(claim, "w", 2, WorkflowStatus.RUNNING, OWNER, LEASE, rerun_failed=False) is None
        )

    @checks("claim_workflow", "finish_workflow", "record_step", "load_steps")
    def test_rerunning_a_failure_supersedes_its_errors(self, store: Store) -> None:
        """A re-run of a failure supersedes its failed steps; a refused check rolls it back."""
        b = store.backend
        store.start("w")
        store(b.record_step, "w", 1, step(1))
        store(b.record_step, "w", 1, step(2, b"boom", status=StepStatus.ERROR))
        assert store(b.finish_workflow, "w", 1, WorkflowStatus.ERROR, error=b"err")
        seen: list[list[int]] = []

        def refuse(rows: Any) -> None:
            seen.append([r.position for r in rows])
            raise ValueError("refused")

        with pytest.raises(ValueError, match="refused"):
            store(
                b.claim_workflow, "w", 1, WorkflowStatus.ERROR, OWNER, LEASE,
                rerun_failed=True, check_superseded=refuse,
            )  # fmt: skip
        assert seen == [[2]]
        assert store.row("w").status is WorkflowStatus.ERROR  # rolled back: nothing changed
        assert sorted(store(b.load_steps, "w")) == [1, 2]
        claimed = store(
            b.claim_workflow, "w", 1, WorkflowStatus.ERROR, OWNER, LEASE, rerun_failed=True
        )
        assert claimed is not None
        assert claimed.error is None
        assert claimed.epoch == 2
        assert sorted(store(b.load_steps, "w")) == [1]

    @checks("finish_workflow")
    def test_finish_is_fenced(self, store: Store) -> None:
        """Only the current epoch records an outcome."""
        store.start("w")
        finish = store.backend.finish_workflow
        assert not store(finish, "w", 9, WorkflowStatus.SUCCESS, result=b"late")
        assert store(finish, "w", 1, WorkflowStatus.SUCCESS, result=b"done")
        row = store.row("w")
        assert (row.status, row.result, row.lease_expires_at) == (
            WorkflowStatus.SUCCESS,
            b"done",
            None,
        )
        assert row.finished_at is not None

    @checks("query_workflows")
    def test_query_filters_newest_first_without_payloads(self, store: Store) -> None:
        """Queries filter by name and status, newest first, and leave payloads out."""
        for wid in ("q1", "q2", "q3"):
            store.start(wid, name="contract.q" if wid != "q2" else "contract.other")
        assert store(store.backend.finish_workflow, "q3", 1, WorkflowStatus.SUCCESS, result=b"r")
        query = store.backend.query_workflows
        found = store(query, WorkflowQuery(name="contract.q"))
        assert [r.workflow_id for r in found] == ["q3", "q1"]
        assert all(r.args is None and r.result is None for r in found)
        done = store(query, WorkflowQuery(statuses=(WorkflowStatus.SUCCESS,)))
        assert [r.workflow_id for r in done] == ["q3"]
        assert len(store(query, WorkflowQuery(limit=2))) == 2
        store.start("Q%_x")
        prefixed = store(query, WorkflowQuery(id_prefix="q"))  # case counts; % and _ are text
        assert sorted(r.workflow_id for r in prefixed) == ["q1", "q2", "q3"]
        assert [r.workflow_id for r in store(query, WorkflowQuery(id_prefix="Q%_"))] == ["Q%_x"]

    @checks("renew_leases")
    def test_renewal_skips_stale_epochs(self, store: Store) -> None:
        """A heartbeat extends the leases it still holds, and names the others."""
        store.start("a")
        store.start("b")
        before = store.row("a").lease_expires_at
        assert before is not None
        missed = store(store.backend.renew_leases, {"a": 1, "b": 5}, 10 * LEASE)
        assert missed == ["b"] or set(missed) == {"a", "b"}  # a hint, never a verdict
        if "a" not in missed:
            renewed = store.row("a").lease_expires_at
            assert renewed is not None
            assert renewed > before
        assert store(store.backend.renew_leases, {}, LEASE) == []

    # Waiting, ownership, quarantine ---------------------------------------------

    @checks("set_waiting", "set_running", "owns")
    def test_waiting_and_running_again(self, store: Store) -> None:
        """A wait shows in the row (fenced); running again clears it."""
        b = store.backend
        store.start("w")
        assert not store(b.set_waiting, "w", 3, 99.0, None, False)
        assert store(b.set_waiting, "w", 1, 99.0, "key", False)
        row = store.row("w")
        assert (row.status, row.wake_at, row.waiting_for, row.owner) == (
            WorkflowStatus.WAITING,
            99.0,
            "key",
            OWNER,
        )
        assert store(b.owns, "w", 1)
        assert not store(b.owns, "w", 2)
        assert store(b.set_running, "w", 1)
        row = store.row("w")
        assert (row.status, row.wake_at, row.waiting_for) == (WorkflowStatus.RUNNING, None, None)
        assert not store(b.set_running, "w", 1)  # running already

    @checks("set_waiting", "resumable", "release_workflow")
    def test_suspended_and_released_workflows_have_no_owner(self, store: Store) -> None:
        """Suspending or releasing gives up ownership under a new epoch; both are resumable."""
        b = store.backend
        store.start("s")
        store.start("r")
        assert store(b.set_waiting, "s", 1, 5.0, None, True)
        suspended = store.row("s")
        assert (suspended.owner, suspended.epoch) == (None, 2)
        assert store(b.release_workflow, "r", 1)
        released = store.row("r")
        assert (released.status, released.owner, released.epoch) == (
            WorkflowStatus.RUNNING,
            None,
            2,
        )
        due = {row.workflow_id: row for row in store(b.resumable)}
        assert set(due) == {"s", "r"}
        assert due["s"].wake_at == 5.0
        assert due["s"].args is None

    @checks("quarantine", "reopen", "cancel", "owns")
    def test_quarantine_cancel_and_their_undo(self, store: Store) -> None:
        """Quarantine and cancel fence the owner out; a cancel wakes waiters; both undo."""
        b = store.backend
        store.start("q")
        store.start("c")
        assert not store(b.quarantine, "q", 7)
        assert store(b.quarantine, "q", 1)
        assert store.row("q").status is WorkflowStatus.QUARANTINED
        assert all(row.workflow_id != "q" for row in store(b.resumable))
        released = store(b.reopen, "q")
        assert released is not None
        assert (released.status, released.owner, released.recoveries) == (
            WorkflowStatus.RUNNING,
            None,
            0,
        )
        assert store(b.reopen, "q") is None
        with self._woken(store, "event:c") as woken:
            cancelled = store(b.cancel, "c")
        assert cancelled is not None
        assert cancelled.status is WorkflowStatus.CANCELLED
        assert woken.is_set(), "a cancel wakes the workflow's waiters once committed"
        assert not store(b.owns, "c", 1)
        again = store(b.cancel, "c")
        assert again is not None
        assert again.epoch == cancelled.epoch
        assert store(b.cancel, "nobody") is None
        reopened = store(b.reopen, "c")
        assert reopened is not None
        assert (reopened.status, reopened.owner, reopened.error) == (
            WorkflowStatus.RUNNING,
            None,
            None,
        )
        assert reopened.epoch > cancelled.epoch  # its old owner stays fenced out

    @checks("cancel", "reopen")
    def test_cancel_and_reopen_take_the_whole_tree(self, store: Store) -> None:
        """A cancel reaches every active descendant; a reopen every cancelled one."""
        b = store.backend
        store.start("root")
        for child, parent in (("a", "root"), ("b", "root"), ("a1", "a"), ("done", "a")):
            new = NewWorkflow(child, "contract.wf", f"fp-{child}", b"args", parent)
            store(b.start_workflow, new, OWNER, LEASE)
        assert store(b.finish_workflow, "done", 1, WorkflowStatus.SUCCESS, result=b"r")
        with self._woken(store, "event:a1") as woken:
            store(b.cancel, "root")
        assert woken.is_set(), "each cancelled descendant's waiters are woken"
        statuses = {w: store.row(w).status for w in ("root", "a", "b", "a1", "done")}
        assert statuses == {
            **dict.fromkeys(("root", "a", "b", "a1"), WorkflowStatus.CANCELLED),
            "done": WorkflowStatus.SUCCESS,  # finished: left as it was
        }
        store(b.reopen, "root")
        statuses = {w: store.row(w).status for w in ("root", "a", "b", "a1", "done")}
        assert statuses == {
            **dict.fromkeys(("root", "a", "b", "a1"), WorkflowStatus.RUNNING),
            "done": WorkflowStatus.SUCCESS,
        }

    @staticmethod
    def _woken(store: Store, topic: str) -> Any:
        """Whether the backend's notifier wakes a waiter of ``topic`` (a context manager)."""
        import contextlib

        @contextlib.contextmanager
        def watching() -> Iterator[threading.Event]:
            woken = threading.Event()
            with store.backend.notifier.subscribe(topic) as subscription:
                yield woken
                if subscription.wait(5.0):
                    woken.set()

        return watching()

    # Steps ----------------------------------------------------------------------

    @checks("record_step", "load_steps")
    def test_first_commit_wins_and_stale_epochs_write_nothing(self, store: Store) -> None:
        """A taken position is adopted, never overwritten; a stale epoch writes nothing."""
        b = store.backend
        store.start("w")
        first = step(1, b"first")
        assert store(b.record_step, "w", 1, first) == first
        standing = store(b.record_step, "w", 1, step(1, b"second"))
        assert standing.output == b"first"  # adopted, not overwritten
        with pytest.raises(OwnershipLostError):
            store(b.record_step, "w", 5, step(2))
        assert {p: r.output for p, r in store(b.load_steps, "w").items()} == {1: b"first"}

    @checks("record_step", "record_steps", "load_steps")
    def test_a_record_in_parts_reads_back_as_its_bytes(self, store: Store) -> None:
        """A record whose output comes in :class:`Parts` is stored as their bytes, in order.

        The engine hands a large step result over in parts (its header, the
        pickle's frames, the result's buffer); a store reads back ``bytes``.
        """
        b = store.backend
        store.start("w")
        big = [bytes([i]) * (100_000 + i) for i in range(3)]  # a file, if the store has them
        outputs = {1: Parts((b"h", *big)), 2: Parts((b"x" * 70_000, b"", b"y")), 3: Parts(big)}
        assert store(b.record_step, "w", 1, step(1, outputs[1])).output == outputs[1]
        store(b.record_steps, "w", 1, [step(2, outputs[2]), step(3, outputs[3])])
        loaded = store(b.load_steps, "w")
        # A large output may come back as a reference to it: step_output reads
        # it (as bytes, or a view of them).
        read = {p: bytes(b.step_output(r.output)) for p, r in loaded.items()}
        assert read == {p: b"".join(parts.pieces) for p, parts in outputs.items()}
        assert {p: b.output_size(r.output) for p, r in loaded.items()} == {
            p: parts.size for p, parts in outputs.items()
        }

    @checks("record_steps")
    def test_several_records_commit_all_or_none(self, store: Store) -> None:
        """A batch of records commits whole or not at all."""
        b = store.backend
        store.start("w")
        store(b.record_steps, "w", 1, [step(1), step(2)])
        with pytest.raises(OwnershipLostError):
            store(b.record_steps, "w", 1, [step(3), step(2, b"again")])
        assert sorted(store(b.load_steps, "w")) == [1, 2]  # not 3: none of the second batch
        with pytest.raises(OwnershipLostError):
            store(b.record_steps, "w", 9, [step(4)])

    @checks("record_step_attempt", "step_attempts")
    def test_failed_attempts_are_kept_in_order(self, store: Store) -> None:
        """Failed attempts are kept, oldest first, fenced like every write."""
        b = store.backend
        store.start("w")
        for attempt in (1, 2):
            failed = StepAttemptRow(1, "step1", attempt, 1.0, 2.0, "ValueError", f"try {attempt}")
            store(b.record_step_attempt, "w", 1, failed)
        store(b.record_step_attempt, "w", 8, StepAttemptRow(1, "step1", 3, 1.0, 2.0, "E", "stale"))
        assert [a.error_message for a in store(b.step_attempts, "w")] == ["try 1", "try 2"]

    @checks("supersede_from", "step_history", "steps_up_to")
    def test_superseded_records_stay_in_history(self, store: Store) -> None:
        """Superseded records leave the live set and stay in the history."""
        b = store.backend
        store.start("w")
        store(b.record_steps, "w", 1, [step(1), step(2, b"two"), step(3)])
        with pytest.raises(OwnershipLostError):
            store(b.supersede_from, "w", 4, 2)
        store(b.supersede_from, "w", 1, 2)
        history = store(b.step_history, "w")
        assert [(h.position, h.superseded) for h in history] == [(1, False), (2, True), (3, True)]
        assert history[1].payload_bytes == 3
        assert [r.position for r in store(b.steps_up_to, "w", 3)] == [1]

    @checks("rewind", "create_fork", "steps_up_to")
    def test_rewind_and_fork(self, store: Store) -> None:
        """A fork copies records under a new id, once; a rewind resumes from a point."""
        b = store.backend
        store.start("w")
        store(b.record_steps, "w", 1, [step(1), step(2, kind="snapshot"), step(3)])
        assert store(b.finish_workflow, "w", 1, WorkflowStatus.SUCCESS, result=b"r")
        kept = store(b.steps_up_to, "w", 2)
        new = NewWorkflow("fork", "contract.wf", "fp-w", b"args", None)
        assert store(b.create_fork, new, "w@snap", kept)
        assert not store(b.create_fork, new, "w@snap", kept)  # the id is taken
        fork = store.row("fork")
        assert (fork.forked_from, fork.owner) == ("w@snap", None)
        assert sorted(store(b.load_steps, "fork")) == [1, 2]
        assert not store(b.rewind, "w", 9, 2)
        assert store(b.rewind, "w", 1, 2)
        rewound = store.row("w")
        assert (rewound.status, rewound.owner, rewound.epoch, rewound.result) == (
            WorkflowStatus.RUNNING,
            None,
            2,
            None,
        )
        assert sorted(store(b.load_steps, "w")) == [1, 2]

    # Queues -----------------------------------------------------------------------

    @checks("enqueue_workflow", "claim_queued", "requeue_workflow")
    def test_queues_claim_by_priority_within_limits(self, store: Store) -> None:
        """Enqueued work is claimed by priority, within a queue's limit, and can go back."""
        b = store.backend
        for wid, priority in (("low", 0), ("high", 5), ("mid", 1)):
            new = NewWorkflow(wid, "contract.q", f"fp-{wid}", None, None)
            row, created = store(b.enqueue_workflow, new, Placement("jobs", priority))
            assert created
            assert row.status is WorkflowStatus.ENQUEUED
            assert row.owner is None
        again = NewWorkflow("low", "contract.q", "fp-low", None, None)
        assert store(b.enqueue_workflow, again, Placement("jobs", 9))[1] is False
        claimed = store(b.claim_queued, OWNER, LEASE, ["jobs"], 5, {"jobs": 1})  # at most 1 running
        assert [r.workflow_id for r in claimed] == ["high"]
        assert (claimed[0].status, claimed[0].owner, claimed[0].epoch) == (
            WorkflowStatus.RUNNING,
            OWNER,
            2,
        )
        assert (
            store(b.claim_queued, OWNER, LEASE, ["jobs"], 5, {"jobs": 1}) == []
        )  # the slot is taken
        assert store(b.requeue_workflow, "high", 2)
        assert store.row("high").status is WorkflowStatus.ENQUEUED
        rest = store(b.claim_queued, OTHER, LEASE, ["jobs", "other"], 2, None)
        assert [r.workflow_id for r in rest] == ["high", "mid"]
        # A delayed one waits for its time (the claimer's clock), however high its priority.
        later = NewWorkflow("later", "contract.q", "fp-later", None, None)
        row, _ = store(b.enqueue_workflow, later, Placement("jobs", 99, not_before=1000.0))
        assert row.wake_at == 1000.0
        early = store(b.claim_queued, OTHER, LEASE, ["jobs"], 5, None, 999.0)
        assert [r.workflow_id for r in early] == ["low"]
        due = store(b.claim_queued, OTHER, LEASE, ["jobs"], 5, None, 1000.0)
        assert [(r.workflow_id, r.wake_at) for r in due] == [("later", None)]
        # Put back with a not-before time: its claim's attempt given back, and
        # no claim takes it before then.
        (low,) = early
        assert store(b.requeue_workflow, "low", low.epoch, 2000.0)
        back = store.row("low")
        assert (back.status, back.wake_at, back.attempts, back.started_at) == (
            WorkflowStatus.ENQUEUED,
            2000.0,
            low.attempts - 1,
            None,  # not started: a rate limit counts its next claim as its start
        )
        assert store(b.claim_queued, OWNER, LEASE, ["jobs"], 5, None, 1999.0) == []
        assert [
            r.workflow_id for r in store(b.claim_queued, OWNER, LEASE, ["jobs"], 5, None, 2000.0)
        ] == ["low"]

    # Events -------------------------------------------------------------------------

    @checks("send_event", "next_event", "take_event")
    def test_events_are_kept_until_taken_once(self, store: Store) -> None:
        """Events wait for their workflow; a key sends once; each event is taken once."""
        b = store.backend
        store.start("w")
        with pytest.raises(WorkflowNotFoundError):
            store(b.send_event, "nobody", "k", b"v", None)
        with self._woken(store, "event:w") as woken:
            assert store(b.send_event, "w", "k", b"one", "idem-1")
        assert woken.is_set(), "an event wakes the workflow's waiters once committed"
        assert not store(b.send_event, "w", "k", b"dup", "idem-1")
        assert store(b.send_event, "w", "k", b"two", None)
        event = store(b.next_event, "w", "k")
        assert event is not None
        assert event.value == b"one"
        assert store(b.next_event, "w", "other") is None
        record = step(1, b"one", kind="event")
        assert store(b.take_event, "w", 1, event.event_id, record) == record
        with pytest.raises(EventGone):
            store(b.take_event, "w", 1, event.event_id, step(2, kind="event"))
        assert sorted(store(b.load_steps, "w")) == [1]  # the refused take recorded nothing
        after = store(b.next_event, "w", "k")
        assert after is not None
        assert after.value == b"two"

    # The store as a whole ---------------------------------------------------------------

    @checks("stats", "cleanup", "prune", "now")
    def test_totals_cleanup_and_prune(self, store: Store) -> None:
        """Totals count what is stored; prune and cleanup delete what they say (dry runs count)."""
        b = store.backend
        store.start("old")
        store.start("live")
        store(b.record_steps, "old", 1, [step(1), step(2)])
        store(b.supersede_from, "old", 1, 2)
        assert store(b.finish_workflow, "old", 1, WorkflowStatus.SUCCESS, result=b"r")
        stats = store(b.stats)
        assert stats["by_status"] == {"success": 1, "running": 1}
        assert stats["steps"] == 1
        assert stats["payload_bytes"] > 0
        assert store(b.prune, 3, True) == Counts(steps=1)
        assert store(b.prune, 3, False) == Counts(steps=1)
        later = store(b.now) + 3600
        statuses = (WorkflowStatus.SUCCESS, WorkflowStatus.ERROR)
        assert store(b.cleanup, later, statuses, True) == Counts(workflows=1, steps=1)
        assert store(b.cleanup, later, statuses, False) == Counts(workflows=1, steps=1)
        assert store(b.get_workflow, "old") is None
        assert store(b.get_workflow, "live") is not None  # running: never touched
