"""PostgreSQL stores whose step records are kept in one partition per month.

The storage contract runs on such a store as on any; a store converted with
runs in flight goes on with them; a cleanup drops the partitions of past
months it empties whole and deletes row by row everywhere else; a SQLite store
refuses, changing nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import durable
from durable.backends import Backend, _partitions
from durable.backends._partitions import Month
from durable.testing.contract import BackendContract
from tests.conftest import durable_command

_ran: list[str] = []
_stop_after: list[int] = []  # a step after which the workflow fails


@durable.step(name="partitions.step")
def _step(n: int) -> int:
    _ran.append(f"step {n}")
    return n


@durable.durable_workflow(name="partitions.run")
def _run(steps: int) -> int:
    total = 0
    for n in range(steps):
        total += _step(n)
        if n in _stop_after:
            raise RuntimeError("stopped half way")
    return total


def _sql(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(p.split("=") for p in query.split("&"))["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        cur = conn.execute(sql, params)  # type: ignore[arg-type]
        return [tuple(r) for r in cur.fetchall()] if cur.description else []


def _backdate(url: str, workflow_ids: list[str], when: dt.datetime) -> None:
    """Make these workflows (and their records) as if created and finished at ``when``."""
    stamp = when.replace(tzinfo=dt.timezone.utc).timestamp()
    _sql(
        url,
        "UPDATE durable_workflows SET created_at = %s, finished_at = "
        "CASE WHEN finished_at IS NULL THEN NULL ELSE %s END WHERE workflow_id = ANY(%s)",
        stamp,
        stamp + 60,
        workflow_ids,
    )
    _sql(
        url,
        "UPDATE durable_steps SET workflow_created_at = %s WHERE workflow_id = ANY(%s)",
        stamp,
        workflow_ids,
    )


def _make_month(url: str, month: Month) -> None:
    """The partition that a store opened during ``month`` would have made."""
    _sql(
        url,
        f"CREATE TABLE {month.name} PARTITION OF durable_steps "
        f"FOR VALUES FROM ({month.start}) TO ({month.end})",
    )


def _partitions_of(url: str) -> list[str]:
    rows = _sql(
        url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass('durable_steps') ORDER BY 1",
    )
    return [r[0] for r in rows]


def _where(url: str) -> dict[str, int]:
    """How many records each partition holds."""
    rows = _sql(url, "SELECT tableoid::regclass::text, count(*) FROM durable_steps GROUP BY 1")
    return {name: count for name, count in rows}


@pytest.fixture
def monthly(postgres_url: str) -> str:
    with durable.Store.open(postgres_url) as store:
        assert store.partition_by_month() == 0
    return postgres_url


class TestPartitionedBackend(BackendContract):
    """Every check of the storage contract, on a store kept by month."""

    @pytest.fixture
    def backend(self, monthly: str) -> Iterator[Backend]:
        with durable.Runtime(monthly) as runtime:
            yield runtime.backend


def test_months_are_calendar_months_in_utc() -> None:
    december = Month.of(dt.datetime(2026, 12, 31, 23, 59, tzinfo=dt.timezone.utc).timestamp())
    assert december == Month(2026, 12)
    assert december.name == "durable_steps_2026_12"
    assert (
        december.end
        == Month(2027, 1).start
        == dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    )
    assert december.after(14) == Month(2028, 2)
    assert Month.named("durable_steps_2027_01") == Month(2027, 1)
    assert Month.named("durable_steps_default") is None


def test_a_store_converted_with_a_run_half_done_goes_on_with_it(postgres_url: str) -> None:
    _ran.clear()
    with durable.Runtime(postgres_url):
        assert _run.run_sync(2, workflow_id="done") == 1
        _stop_after.append(0)
        with pytest.raises(RuntimeError):
            _run.run_sync(3, workflow_id="half")
        _stop_after.clear()
    _backdate(postgres_url, ["done", "half"], dt.datetime(2026, 9, 14))
    with durable.Store.open(postgres_url) as store:
        before = {w: str(store.history(w)) for w in ("done", "half")}
        assert store.partition_by_month() == 3  # done's two records, half's first
        assert store.partition_by_month() is None  # kept by month already
        assert {w: str(store.history(w)) for w in ("done", "half")} == before
    this = Month.of(dt.datetime.now(dt.timezone.utc).timestamp())
    names = _partitions_of(postgres_url)
    # From the oldest workflow's month to two months ahead, and the default.
    assert names[0] == "durable_steps_2026_09"
    assert names[-2:] == [this.after(2).name, "durable_steps_default"]
    assert _where(postgres_url) == {"durable_steps_2026_09": 3}
    _ran.clear()
    with durable.Runtime(postgres_url):
        assert _run.run_sync(3, workflow_id="half") == 3
    assert _ran == ["step 1", "step 2"]  # step 0 replayed, not run again
    # Its new records join its month, since its workflow was created then.
    assert _where(postgres_url) == {"durable_steps_2026_09": 5}
    ids = [r[0] for r in _sql(postgres_url, "SELECT id FROM durable_steps ORDER BY id")]
    assert len(set(ids)) == 5  # the numbering went on


def test_a_cleanup_drops_the_months_it_empties_and_deletes_row_by_row_elsewhere(
    monthly: str,
) -> None:
    _make_month(monthly, Month(2026, 8))
    _make_month(monthly, Month(2026, 9))
    with durable.Runtime(monthly):
        for name in ("aug-1", "aug-2", "sep-done", "sep-running", "new"):
            _run.run_sync(2, workflow_id=name)
    _backdate(monthly, ["aug-1", "aug-2"], dt.datetime(2026, 8, 3))
    _backdate(monthly, ["sep-done", "sep-running"], dt.datetime(2026, 9, 3))
    _sql(
        monthly,
        "UPDATE durable_workflows SET status = 'running', finished_at = NULL "
        "WHERE workflow_id = 'sep-running'",
    )
    with durable.Store.open(monthly) as store:
        counted = store.cleanup(older_than=dt.timedelta(days=30), dry_run=True)
        assert (counted.workflows, counted.steps) == (3, 6)
        assert "durable_steps_2026_08" in _partitions_of(monthly)  # a dry run drops nothing
        report = store.cleanup(older_than=dt.timedelta(days=30))
        assert (report.workflows, report.steps, report.attempts) == (3, 6, 0)
        left = sorted(w.workflow_id for w in store.list_workflows())
        assert left == ["new", "sep-running"]
        assert len(store.history("sep-running")) == 2
    names = _partitions_of(monthly)
    assert "durable_steps_2026_08" not in names  # dropped whole
    assert "durable_steps_2026_09" in names  # kept: a workflow of it is running
    assert _where(monthly)["durable_steps_2026_09"] == 2


def test_a_month_made_active_again_before_its_drop_keeps_its_partition(monthly: str) -> None:
    _make_month(monthly, Month(2026, 7))
    with durable.Runtime(monthly):
        for name in ("a", "b"):
            _run.run_sync(2, workflow_id=name)
    _backdate(monthly, ["a", "b"], dt.datetime(2026, 7, 9))
    # What a cleanup does between finding July whole and dropping it, when
    # another call resumes "b" meanwhile: "a" is deleted, "b" is not.
    _sql(monthly, "DELETE FROM durable_workflows WHERE workflow_id = 'a'")
    with durable.Runtime(monthly) as runtime:
        backend: Any = runtime.backend

        async def op(tx: Any) -> None:
            await _partitions.drop(tx, [Month(2026, 7)])

        op.atomic = True  # type: ignore[attr-defined]
        backend.run_sync(op)
    with durable.Store.open(monthly) as store:
        assert len(store.history("b")) == 2
    assert "durable_steps_2026_07" in _partitions_of(monthly)
    assert _where(monthly) == {"durable_steps_2026_07": 2}  # a's records went, b's stayed


def test_records_beyond_the_months_made_go_to_the_default_partition(monthly: str) -> None:
    _stop_after.append(0)
    with durable.Runtime(monthly), pytest.raises(RuntimeError):
        _run.run_sync(2, workflow_id="far")
    _stop_after.clear()
    far = Month.of(dt.datetime.now(dt.timezone.utc).timestamp()).after(5)
    _backdate(monthly, ["far"], dt.datetime(far.year, far.month, 2))
    with durable.Runtime(monthly):
        assert _run.run_sync(2, workflow_id="far") == 1  # its second record, written there
    assert _where(monthly) == {"durable_steps_default": 2}
    with durable.Store.open(monthly) as store:
        assert len(store.history("far")) == 2


def test_opening_makes_the_coming_months(monthly: str) -> None:
    this = Month.of(dt.datetime.now(dt.timezone.utc).timestamp())
    _sql(monthly, f"DROP TABLE {this.after(2).name}")
    with durable.Store.open(monthly):
        pass
    assert this.after(2).name in _partitions_of(monthly)


def test_a_sqlite_store_refuses_to_be_kept_by_month(durable_sqlite: str) -> None:
    with durable.Runtime(durable_sqlite):
        _run.run_sync(1, workflow_id="kept")
    with durable.Store.open(durable_sqlite) as store:
        with pytest.raises(durable.ConfigurationError, match="only a PostgreSQL store"):
            store.partition_by_month()
        assert store.get_workflow("kept") is not None


def test_durable_migrate_partitions_by_month_and_says_so(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = durable_command()
    with durable.Runtime(postgres_url):
        _run.run_sync(2, workflow_id="cli")
    assert command(["--url", postgres_url, "migrate", "--partition-by-month"]) == 0
    out = capsys.readouterr().out
    assert "moved 2 step records into one partition per month" in out
    assert "nothing to do" not in out
    assert command(["--url", postgres_url, "migrate", "--partition-by-month", "-o", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["records_moved"] is None  # kept by month already
    assert "durable_steps_default" in _partitions_of(postgres_url)


def test_durable_migrate_on_sqlite_refuses_to_partition(
    durable_sqlite: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = durable_command()
    with durable.Runtime(durable_sqlite):
        pass
    assert command(["--url", durable_sqlite, "migrate", "--partition-by-month"]) != 0
    assert "only a PostgreSQL store" in capsys.readouterr().err


def test_a_conversion_killed_half_way_leaves_the_store_as_it_was(postgres_url: str) -> None:
    """SIGKILL while the records are being copied: the store is as it was, and can try again."""
    with durable.Runtime(postgres_url):
        _run.run_sync(3, workflow_id="kept")
    # Enough records that the copy takes a while (20,000 workflows of 10).
    _sql(
        postgres_url,
        "INSERT INTO durable_workflows (workflow_id, name, status, args_fingerprint, attempts, "
        "epoch, created_at, updated_at, finished_at) SELECT 'bulk-' || i, 'bulk', 'success', "
        "'', 1, 1, 1.7e9 + i, 1.7e9 + i, 1.7e9 + i FROM generate_series(1, 20000) i",
    )
    _sql(
        postgres_url,
        "INSERT INTO durable_steps (workflow_id, position, name, status, output, attempt, "
        "started_at, finished_at, superseded, kind) SELECT 'bulk-' || i, j, 's', 'success', "
        "'\\x00', 1, 0, 0, false, 'step' FROM generate_series(1, 20000) i, "
        "generate_series(1, 10) j",
    )
    before = _sql(postgres_url, "SELECT count(*), sum(id) FROM durable_steps")
    code = f"import durable; durable.Store.open({postgres_url!r}).partition_by_month()"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        while not _sql(
            postgres_url,
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE 'INSERT INTO durable_steps %%' "
            "AND state = 'active' AND pid <> pg_backend_pid()",
        ):
            assert proc.poll() is None, "the conversion ended before it could be killed"
            assert time.monotonic() < deadline, "the copy never started"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with durable.Store.open(postgres_url) as store:
        assert len(store.history("kept")) == 3  # waits for the server to roll it back
        assert _partitions_of(postgres_url) == []
        assert _sql(postgres_url, "SELECT count(*), sum(id) FROM durable_steps") == before
        assert store.partition_by_month() == before[0][0]
    with durable.Runtime(postgres_url):
        assert _run.run_sync(3, workflow_id="kept") == 3


def test_a_workflow_made_active_again_during_a_cleanup_keeps_its_records_or_goes_whole(
    monthly: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume that commits while a cleanup runs: never a workflow left without its records."""
    _make_month(monthly, Month(2026, 6))
    with durable.Runtime(monthly):
        for name in ("a", "b"):
            _run.run_sync(2, workflow_id=name)
    _backdate(monthly, ["a", "b"], dt.datetime(2026, 6, 9))
    revived: list[int] = []
    found = _partitions.whole

    async def whole_then_revive(tx: Any, now: float, doomed: Any) -> list[Month]:
        months = await found(tx, now, doomed)
        # Another process makes "b" active again now: it must wait for the
        # cleanup (which holds the rows it removes), then finds b gone.
        thread = threading.Thread(
            target=lambda: revived.extend(
                r[0]
                for r in _sql(
                    monthly,
                    "UPDATE durable_workflows SET status = 'running', finished_at = NULL, "
                    "epoch = epoch + 1 WHERE workflow_id = 'b' RETURNING epoch",
                )
            )
        )
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "the resume did not wait for the cleanup"
        threads.append(thread)
        return months

    threads: list[threading.Thread] = []
    monkeypatch.setattr(_partitions, "whole", whole_then_revive)
    with durable.Store.open(monthly) as store:
        report = store.cleanup(older_than=dt.timedelta(days=30))
        threads[0].join(30)
        assert (report.workflows, report.steps) == (2, 4)
        assert revived == []  # its row was gone when it could look
        assert store.list_workflows() == []
    assert "durable_steps_2026_06" not in _partitions_of(monthly)


def test_a_drop_that_would_wait_empties_the_month_row_by_row(monthly: str) -> None:
    """A long transaction on the records: the cleanup gives up the drop, not the cleanup."""
    import psycopg

    _make_month(monthly, Month(2026, 5))
    with durable.Runtime(monthly):
        _run.run_sync(2, workflow_id="may")
        _run.run_sync(2, workflow_id="now")
    _backdate(monthly, ["may"], dt.datetime(2026, 5, 9))
    base, _, query = monthly.partition("?")
    schema = dict(p.split("=") for p in query.split("&"))["schema"]
    with psycopg.connect(base) as reader:  # a transaction left open on the table
        reader.execute(f'SET search_path TO "{schema}"')
        reader.execute("SELECT count(*) FROM durable_steps WHERE workflow_id = 'now'")
        with durable.Store.open(monthly) as store:
            report = store.cleanup(older_than=dt.timedelta(days=30))
        assert (report.workflows, report.steps) == (1, 2)
        reader.rollback()
    assert "durable_steps_2026_05" in _partitions_of(monthly)  # kept, empty
    assert _where(monthly) == {Month.of(time.time()).name: 2}


def test_the_tables_keep_their_owner_and_grants_and_a_role_of_rows_cleans_up(
    postgres_url: str,
) -> None:
    import psycopg

    base, _, query = postgres_url.partition("?")
    schema = dict(p.split("=") for p in query.split("&"))["schema"]
    role = f"durable_rows_{uuid.uuid4().hex[:8]}"
    with durable.Runtime(postgres_url):
        _run.run_sync(2, workflow_id="before")
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        admin.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'
        )
        admin.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"')
    as_role = postgres_url.replace("postgres@", f"{role}@", 1)
    try:
        with (
            durable.Store.open(as_role) as store,
            pytest.raises(durable.ConfigurationError, match="may not change the store's"),
        ):
            store.partition_by_month()
        assert _partitions_of(postgres_url) == []  # nothing was changed
        with durable.Store.open(postgres_url) as store:
            assert store.partition_by_month() == 2
        _make_month(postgres_url, Month(2026, 4))
        _backdate(postgres_url, ["before"], dt.datetime(2026, 4, 9))
        with durable.Runtime(as_role):  # it may still write records
            assert _run.run_sync(3, workflow_id="after") == 3
        with durable.Store.open(as_role) as store:  # and clean up, row by row
            report = store.cleanup(older_than=dt.timedelta(days=30))
        assert (report.workflows, report.steps) == (1, 2)
        assert "durable_steps_2026_04" in _partitions_of(postgres_url)  # not its to drop
        owners = _sql(
            postgres_url,
            "SELECT DISTINCT relowner::regrole::text FROM pg_class WHERE relname LIKE "
            "'durable_steps%%' AND relkind IN ('r', 'p')",
        )
        assert owners == [("postgres",)]
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')


def test_a_record_refused_by_the_id_sequence_says_so(postgres_url: str) -> None:
    with durable.Runtime(postgres_url):
        _run.run_sync(2, workflow_id="first")
    _sql(postgres_url, "SELECT setval(pg_get_serial_sequence('durable_steps', 'id'), 1, false)")
    with (
        durable.Runtime(postgres_url),
        pytest.raises(durable.BackendUnavailableError, match="id sequence"),
    ):
        _run.run_sync(2, workflow_id="second")


def test_opening_a_store_with_its_months_made_waits_for_no_cleanup(monthly: str) -> None:
    import psycopg

    base, _, query = monthly.partition("?")
    schema = dict(p.split("=") for p in query.split("&"))["schema"]
    with psycopg.connect(base, autocommit=True) as holder:
        # The lock a maker of partitions takes, held as by a long cleanup.
        holder.execute(
            "SELECT pg_advisory_lock(hashtext(%s))", (f"durable_steps_default {schema}",)
        )
        opened = threading.Event()

        def open_store() -> None:
            with durable.Store.open(monthly):
                opened.set()

        thread = threading.Thread(target=open_store)
        thread.start()
        thread.join(60)
        assert opened.is_set(), "opening waited for the lock"
