"""The contract's checks of shared state: deadlines, publish, streams, sessions, schedules."""

from __future__ import annotations

import pytest

from durable._errors import OwnershipLostError
from durable.backends import NewWorkflow, ScheduleRow, StepRow, StepStatus
from durable.testing._contract_parts import LEASE, OWNER, Store, checks, step


class StateChecks:
    """Checks of the operations behind timeouts, ``publish``, streams, sessions and schedules."""

    @checks("set_deadline")
    def test_deadlines_are_kept_and_fenced(self, store: Store) -> None:
        """A start records its timeout and deadline; a fenced write changes the deadline."""
        b = store.backend
        new = NewWorkflow("w", "contract.wf", "fp-w", b"args", None, timeout=60.0, deadline=100.0)
        row, _ = store(b.start_workflow, new, OWNER, LEASE)
        assert (row.timeout, row.deadline) == (60.0, 100.0)
        assert store(b.set_deadline, "w", 1, 250.5)
        assert not store(b.set_deadline, "w", 2, 1.0)  # a stale epoch changes nothing
        assert store.row("w").deadline == 250.5
        assert store(b.set_deadline, "w", 1, None)
        assert (store.row("w").timeout, store.row("w").deadline) == (60.0, None)

    @checks("publish", "published")
    def test_published_values_latest_per_key_and_wake_readers(self, store: Store) -> None:
        """The latest live value of each key; a publish is fenced and wakes readers."""
        b = store.backend

        def published(key: str, position: int, value: bytes) -> StepRow:
            return StepRow(position, key, StepStatus.SUCCESS, value, 1, 1.0, 2.0, kind="publish")

        store.start("w")
        assert store(b.published, "w") == []
        with b.notifier.subscribe("published:w") as readers:
            assert store(b.publish, "w", 1, published("progress", 1, b"10")).output == b"10"
            assert readers.take()  # woken once the publish committed
        store(b.record_step, "w", 1, step(2))
        store(b.publish, "w", 1, published("stage", 3, b"load"))
        store(b.publish, "w", 1, published("progress", 4, b"50"))
        # First commit wins, as for any record; a stale epoch writes nothing.
        assert store(b.publish, "w", 1, published("progress", 4, b"99")).output == b"50"
        with pytest.raises(OwnershipLostError):
            store(b.publish, "w", 7, published("progress", 5, b"60"))
        latest = {r.name: (r.position, r.output) for r in store(b.published, "w")}
        assert latest == {"progress": (4, b"50"), "stage": (3, b"load")}
        assert [r.output for r in store(b.published, "w", "progress")] == [b"50"]
        assert store(b.published, "w", "absent") == []
        store(b.supersede_from, "w", 1, 4)  # a restore to before it: the older value stands
        assert [r.output for r in store(b.published, "w", "progress")] == [b"10"]

    @checks("append_stream", "read_stream", "streams_of")
    def test_streams_keep_order_are_fenced_and_write_a_record_once(self, store: Store) -> None:
        """Entries come back in order after an id; a record written with one appends once."""
        b = store.backend
        store.start("w")
        with b.notifier.subscribe("stream:w") as readers:
            assert store(b.append_stream, "w", 1, "tokens", "start", None) is None
            assert readers.take()  # woken once the entry committed
        store(b.append_stream, "w", 1, "tokens", "chunk", b"a")
        store(b.append_stream, "w", 1, "other", "chunk", b"x")
        store(b.append_stream, "w", 1, "tokens", "chunk", b"b")
        with pytest.raises(OwnershipLostError):
            store(b.append_stream, "w", 9, "tokens", "chunk", b"stale")
        written = step(3, b"[a, b]", kind="stream")
        assert store(b.append_stream, "w", 1, "tokens", "end", None, written) == written
        again = store(b.append_stream, "w", 1, "tokens", "end", None, step(3, b"other"))
        assert again is not None
        assert again.output == b"[a, b]"  # the standing record; nothing appended
        rows = store(b.read_stream, "w", "tokens")
        assert [(r.kind, r.value) for r in rows] == [
            ("start", None),
            ("chunk", b"a"),
            ("chunk", b"b"),
            ("end", None),
        ]
        assert [r.kind for r in store(b.read_stream, "w", "tokens", rows[1].id)] == ["chunk", "end"]
        assert store(b.read_stream, "w", "absent") == []
        store(b.append_stream, "w", 1, "other", "start", None)
        store(b.append_stream, "w", 1, "other", "start", None)  # begun again
        summary = {s.key: (s.chunks, s.restarts, s.ended) for s in store(b.streams_of, "w")}
        assert summary == {"other": (1, 1, False), "tokens": (2, 0, True)}
        assert sorted(store(b.load_steps, "w")) == [3]

    @checks("session_read", "session_write", "sessions", "cleanup_sessions")
    def test_session_state_is_versioned_and_written_with_its_record(self, store: Store) -> None:
        """Writes bump a key's version; a conditional write needs the version read."""
        b = store.backend
        assert store(b.session_read, "s", "k") == []
        assert store(b.session_write, "s", "k", b"1", 0) == (True, None)
        assert store(b.session_write, "s", "k", b"x", 0) == (False, None)  # not absent now
        (entry,) = store(b.session_read, "s", "k")
        assert (entry.value, entry.version) == (b"1", 1)
        assert store(b.session_write, "s", "k", b"2", 1) == (True, None)
        assert store(b.session_write, "s", "k", b"y", 1) == (False, None)  # stale version
        assert store(b.session_write, "s", "k", b"3", None) == (True, None)
        store(b.session_write, "s", "other", b"o", None)
        store(b.session_write, "t", "k", b"t", None)
        assert [(e.key, e.value, e.version) for e in store(b.session_read, "s")] == [
            ("k", b"3", 3),
            ("other", b"o", 1),
        ]
        # With a record: both commit, or neither; a standing record writes nothing.
        store.start("w")
        written = step(1, b"set", kind="session")
        assert store(b.session_write, "s", "k", b"4", 3, ("w", 1, written)) == (True, written)
        again = store(b.session_write, "s", "k", b"5", None, ("w", 1, step(1, b"other")))
        assert again[0] is False
        assert again[1] is not None
        assert again[1].output == b"set"
        with pytest.raises(OwnershipLostError):
            store(b.session_write, "s", "k", b"6", None, ("w", 9, step(2)))
        assert store(b.session_read, "s", "k")[0].value == b"4"  # the fenced write rolled back
        listed = {x.session_id: x.keys for x in store(b.sessions)}
        assert listed == {"s": 2, "t": 1}
        future = store(b.now) + 60
        assert store(b.cleanup_sessions, future, "t", True) == 1  # a dry run
        assert store(b.cleanup_sessions, 0.0, None, False) == 0  # none written that long ago
        assert store(b.cleanup_sessions, future, "t", False) == 1
        assert {x.session_id for x in store(b.sessions)} == {"s"}
        assert store(b.cleanup_sessions, future, None, False) == 2
        assert store(b.sessions) == []

    @checks(
        "put_schedule",
        "schedules",
        "set_schedule_paused",
        "delete_schedule",
        "advance_schedule",
        "backfill_schedule",
    )
    def test_schedules_keep_their_state_and_only_move_forward(self, store: Store) -> None:
        """A put keeps state (or not); last_tick and a backfill's start only move forward."""
        b = store.backend
        row = ScheduleRow(
            "s",
            "contract.wf",
            "*/5 * * * *",
            None,
            "UTC",
            b"args",
            "q",
            2,
            "all",
            False,
            10.0,
            10.0,
        )
        assert store(b.put_schedule, row, True)
        assert store(b.schedules) == [row]
        assert store(b.set_schedule_paused, "s", True)
        store(b.advance_schedule, "s", 300.0, None)
        store(b.advance_schedule, "s", 200.0, None)  # never back
        redefined = ScheduleRow(
            "s", "contract.wf2", None, 60.0, "Europe/Paris", None, "r", 0, "last", False, 99.0, 99.0
        )
        assert not store(b.put_schedule, redefined, True)  # kept: paused, created, last tick
        (kept,) = store(b.schedules, "s")
        assert (kept.workflow, kept.every, kept.timezone, kept.args) == (
            "contract.wf2",
            60.0,
            "Europe/Paris",
            None,
        )
        assert (kept.paused, kept.created_at, kept.last_tick) == (True, 10.0, 300.0)
        assert store(b.backfill_schedule, "s", 1000.0, 2000.0)
        assert not store(b.backfill_schedule, "s", 500.0, 1500.0)  # one at a time
        (pending,) = store(b.schedules, "s")
        assert (pending.backfill_from, pending.backfill_to) == (1000.0, 2000.0)
        store(b.advance_schedule, "s", None, (1000.0, 2000.0, 1200.0))
        store(b.advance_schedule, "s", None, (1000.0, 2000.0, 1900.0))  # not the one read
        assert store(b.schedules, "s")[0].backfill_from == 1200.0
        store(b.advance_schedule, "s", None, (1200.0, 2000.0, 2000.0))  # at its end: done
        (done,) = store(b.schedules, "s")
        assert (done.backfill_from, done.backfill_to) == (None, None)
        assert store(b.backfill_schedule, "s", 500.0, 1500.0)  # the next one
        assert not store(b.put_schedule, redefined, False)  # replaced whole
        assert store(b.schedules, "s") == [redefined]
        store(
            b.put_schedule,
            ScheduleRow("a", "w", None, 5.0, "UTC", None, "q", 0, "skip", False, 1.0, 1.0),
            True,
        )
        assert [r.name for r in store(b.schedules)] == ["a", "s"]
        assert store(b.schedules, "absent") == []
        assert not store(b.set_schedule_paused, "absent", True)
        assert not store(b.backfill_schedule, "absent", 1.0, 2.0)
        assert store(b.delete_schedule, "s")
        assert not store(b.delete_schedule, "s")
        assert [r.name for r in store(b.schedules)] == ["a"]
