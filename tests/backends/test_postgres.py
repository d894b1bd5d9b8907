"""What is specific to PostgreSQL: configuration errors, dropped connections,
zombie owners on other hosts, schemas."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import durable
from tests.conftest import race, read_lines, run_program, wait_for

psycopg = pytest.importorskip(
    "psycopg", reason='needs the postgres extra: pip install "durable-sdk[postgres]"'
)


def plain(url: str) -> str:
    """The libpq form of a store URL (without durable's own options)."""
    base = url.split("?", 1)[0]
    return base.replace("postgresql+psycopg://", "postgresql://")


def schema_of(url: str) -> str:
    return url.split("schema=", 1)[1].split("&", 1)[0]


def records_per_position(url: str, workflow_id: str) -> dict[int, int]:
    with psycopg.connect(plain(url)) as conn:
        rows = conn.execute(
            f'SELECT position, count(*) FROM "{schema_of(url)}".durable_steps '
            "WHERE workflow_id = %s GROUP BY position ORDER BY position",
            (workflow_id,),
        ).fetchall()
    return dict(rows)


def test_tables_live_in_the_configured_schema(postgres_url: str) -> None:
    with durable.Runtime(postgres_url) as rt:
        assert rt.url.startswith("postgresql://")
    with psycopg.connect(plain(postgres_url)) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema_of(postgres_url),),
            )
        }
    assert tables == {
        "durable_meta",
        "durable_workflows",
        "durable_steps",
        "durable_step_attempts",
        "durable_events",
        "durable_streams",
        "durable_sessions",
        "durable_schedules",
        "durable_queues",
    }


def test_a_schema_named_in_capitals_is_used_as_named(postgres_url: str) -> None:
    """The name is kept as written (quoted), where it is made and where it is looked up."""
    schema = "Durable_" + schema_of(postgres_url).upper()[-8:]
    url = f"{plain(postgres_url)}?schema={schema}"

    @durable.durable_workflow(name="postgres.capitals")
    async def capitals() -> int:
        return 7

    try:
        with durable.Runtime(url):
            assert capitals.run_sync(workflow_id="x") == 7
        with durable.Store.open(url) as store:
            assert [w.workflow_id for w in store.list_workflows()] == ["x"]
    finally:
        with psycopg.connect(plain(postgres_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


PAYLOAD_COLUMNS = {
    ("durable_workflows", "args"),
    ("durable_workflows", "result"),
    ("durable_workflows", "error"),
    ("durable_steps", "output"),
    ("durable_events", "value"),
    ("durable_streams", "value"),
    ("durable_sessions", "value"),
    ("durable_schedules", "args"),
}


def storage_of_payload_columns(url: str) -> dict[tuple[str, str], str]:
    with psycopg.connect(plain(url)) as conn:
        rows = conn.execute(
            "SELECT c.relname, a.attname, a.attstorage FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND a.attnum > 0 AND NOT a.attisdropped"
            " AND format_type(a.atttypid, a.atttypmod) = 'bytea'",
            (schema_of(url),),
        ).fetchall()
    return {(table, column): storage for table, column, storage in rows}


def test_payloads_are_stored_as_they_are_without_pglz(postgres_url: str) -> None:
    """durable compresses payloads itself; PostgreSQL's pglz would only add its cost
    (several times the insert itself for a large value whose start compresses)."""
    with durable.Runtime(postgres_url):
        pass
    assert storage_of_payload_columns(postgres_url) == dict.fromkeys(PAYLOAD_COLUMNS, "e")
    # A database made before this: switched on open, its rows left as they are.
    with psycopg.connect(plain(postgres_url), autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema_of(postgres_url)}"')
        for table, column in PAYLOAD_COLUMNS:
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTENDED")
    assert set(storage_of_payload_columns(postgres_url).values()) == {"x"}

    @durable.durable_workflow(name="pg.blob")
    def blob() -> bytes:
        return b"kept" * 100_000

    with durable.Runtime(postgres_url):
        assert blob() == b"kept" * 100_000
    assert storage_of_payload_columns(postgres_url) == dict.fromkeys(PAYLOAD_COLUMNS, "e")
    with durable.Runtime(postgres_url):
        assert blob() == b"kept" * 100_000  # the recorded result, read back


def test_a_role_that_may_only_write_rows_still_opens_an_older_database(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Switching the payload columns needs the tables' owner: without it, the store
    opens as before, says why, and works."""
    with durable.Runtime(postgres_url):
        pass
    schema = schema_of(postgres_url)
    role = f"durable_rows_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(plain(postgres_url), autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        for table, column in PAYLOAD_COLUMNS:
            conn.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTENDED")
        conn.execute(f"CREATE ROLE {role} LOGIN")
        # CREATE on the database: opening a store runs CREATE SCHEMA IF NOT EXISTS.
        conn.execute(f"GRANT CREATE ON DATABASE {conn.info.dbname} TO {role}")
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
        conn.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {role}'
        )
        conn.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO {role}')
    try:
        as_role = postgres_url.replace("postgres@", f"{role}@", 1)

        @durable.durable_workflow(name="pg.rows_only")
        def rows_only() -> int:
            return 7

        with caplog.at_level("WARNING", logger="durable"), durable.Runtime(as_role):
            assert rows_only() == 7
        assert "keep PostgreSQL's own compression" in caplog.text
        assert "must be owner" in caplog.text
        assert set(storage_of_payload_columns(postgres_url).values()) == {"x"}
    finally:
        with psycopg.connect(plain(postgres_url), autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_unreachable_server_names_host_port_database_and_masks_password() -> None:
    with pytest.raises(durable.BackendUnavailableError) as info:
        durable.Runtime("postgresql://bob:hunter2@127.0.0.1:1/appdb?connect_timeout=2")
    message = str(info.value)
    assert "host 127.0.0.1, port 1, database appdb, user bob" in message
    assert "postgresql://bob:***@127.0.0.1:1/appdb" in message
    assert "hunter2" not in message
    assert "refused" in message.lower()


def test_wrong_credentials_are_backend_unavailable(postgres_url: str) -> None:
    bad = postgres_url.replace("postgresql://postgres@", "postgresql://no_such_role_x:pw@")
    with pytest.raises(durable.BackendUnavailableError, match="no_such_role_x") as info:
        durable.Runtime(bad)
    assert ":pw@" not in str(info.value)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("schema=bad-name", "is not a plain PostgreSQL identifier"),
        ("schema=x;drop", "is not a plain PostgreSQL identifier"),
        ("pool_max=0", "pool_max='0' .* must be a whole number >= 1"),
        ("pool_min=3&pool_max=2", r"pool_max \(2\) is below pool_min \(3\)"),
        ("pool_min=many", "pool_min='many' .* must be a whole number >= 0"),
    ],
)
def test_bad_options_are_configuration_errors(query: str, message: str) -> None:
    with pytest.raises(durable.ConfigurationError, match=message):
        durable.Runtime(f"postgresql://u:secret@127.0.0.1/db?{query}")


def test_unsupported_driver_is_refused() -> None:
    with pytest.raises(durable.ConfigurationError, match="through psycopg 3"):
        durable.Runtime("postgresql+asyncpg://u@127.0.0.1/db")


def test_missing_extra_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import durable\n"
        "try:\n"
        "    durable.Runtime('postgresql://u@127.0.0.1/db')\n"
        "except durable.ConfigurationError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert 'pip install "durable-sdk[postgres]"' in out


def test_health_check(postgres_url: str) -> None:
    with durable.Runtime(postgres_url):
        report = durable.health_check()
    assert report.ok
    assert report.backend == "postgresql"
    assert report.server_version
    assert report.server_version[0].isdigit()
    assert report.latency_ms is not None
    assert report.latency_ms >= 0
    assert report.error is None


def terminate_connections(url: str, application_name: str) -> int:
    with psycopg.connect(plain(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return len(rows)


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_connections_killed_mid_workflow_are_retried_without_losing_records(
    postgres_url: str, kind: str
) -> None:
    app = f"durable-test-{uuid.uuid4().hex[:8]}"
    url = f"{postgres_url}&application_name={app}"
    ran: list[int] = []
    killed: list[int] = []

    def body(i: int) -> int:
        ran.append(i)
        if i == 3:
            killed.append(terminate_connections(url, app))
        return i * 10

    @durable.step(name="a_step")
    async def async_step(i: int) -> int:
        return body(i)

    @durable.step(name="s_step")
    def sync_step(i: int) -> int:
        return body(i)

    @durable.durable_workflow(name="pg.killed.async")
    async def async_wf() -> int:
        return sum([await async_step(i) for i in range(1, 6)])

    @durable.durable_workflow(name="pg.killed.sync")
    def sync_wf() -> int:
        return sum(sync_step(i) for i in range(1, 6))

    with durable.Runtime(url) as rt:
        if kind == "async":
            assert await async_wf.run(workflow_id="killed") == 150
        else:
            assert sync_wf.run(workflow_id="killed") == 150
        assert killed
        assert killed[0] >= 1
        assert ran == [1, 2, 3, 4, 5]
        assert [s.position for s in rt.list_steps("killed")] == [1, 2, 3, 4, 5]
    assert records_per_position(url, "killed") == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}


def python_child_of(pid: int) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    wait_for(lambda: children.read_text().split(), "unshare to start python")
    return int(children.read_text().split()[0])


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_zombie_owner_cannot_commit_over_the_new_owner(tmp_path: Path, postgres_url: str) -> None:
    """An owner paused past its lease (SIGSTOP) on "another host" is taken over;
    woken up (SIGCONT), its writes are fenced and it adopts the new owner's records."""
    if os.geteuid() != 0:
        pytest.skip("needs root to put the zombie in a pid namespace of its own")
    effects, paused, release = tmp_path / "effects", tmp_path / "paused", tmp_path / "go"
    env = {
        "DURABLE_URL": postgres_url,
        "SIDE_EFFECTS": effects,
        "LEASE_SECONDS": "1",
    }
    # Another pid namespace: to the new owner, the zombie is on another host.
    zombie_err = tmp_path / "zombie.err"
    with open(zombie_err, "w") as err:
        unshare = subprocess.Popen(
            [
                "unshare",
                "--pid",
                "--fork",
                "--mount-proc",
                sys.executable,
                str(Path(__file__).parents[1] / "programs" / "six_steps.py"),
                "run",
            ],
            env={
                **os.environ,
                **{k: str(v) for k, v in env.items()},
                "PYTHONPATH": str(Path(__file__).parents[2]),
                "PAUSE_AFTER": "3",
                "PAUSED_FILE": str(paused),
                "RELEASE_FILE": str(release),
                "OFFSET": "1000",
            },
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        wait_for(paused.exists, "the zombie to pause after step 3")
        zombie = python_child_of(unshare.pid)
        os.kill(zombie, signal.SIGSTOP)
        time.sleep(1.5)  # let its 1 s lease run out: no heartbeat while stopped

        new_owner = run_program("six_steps", "run", **env)
        assert "resuming after its owner died" in new_owner.stderr
        assert json.loads(new_owner.stdout) == 3 * 1000 + 91

        release.touch()
        os.kill(zombie, signal.SIGCONT)
        zombie_out, _ = unshare.communicate(timeout=60)
    finally:
        if unshare.poll() is None:
            unshare.kill()
            unshare.communicate()
    assert unshare.returncode == 0, zombie_err.read_text()
    assert json.loads(zombie_out) == 3 * 1000 + 91  # the new owner's records, not its own
    assert "taken over by another executor" in zombie_err.read_text()
    assert records_per_position(postgres_url, "six") == {i: 1 for i in range(1, 7)}
    counts = Counter(read_lines(effects))
    assert [counts[f"done {i}"] for i in range(1, 4)] == [1, 1, 1]
    # The zombie may re-run 4..6 after waking (at-least-once) until its
    # heartbeat finds the lease gone and stops it before its next step; only
    # one record stands either way.
    assert all(1 <= counts[f"done {i}"] <= 2 for i in range(4, 7)), counts


def test_sixteen_processes_resume_one_crashed_workflow(tmp_path: Path, db_url: str) -> None:
    from tests.engine.test_crash_recovery import EXPECTED, crash_at

    effects = crash_at(tmp_path, db_url, PAUSE_AFTER=2)
    outputs = race(16, tmp_path, DURABLE_URL=db_url, SIDE_EFFECTS=effects)
    assert [json.loads(out) for out in outputs] == [EXPECTED] * 16
    counts = Counter(read_lines(effects))
    assert [counts[f"done {i}"] for i in range(1, 7)] == [1] * 6, counts
    with durable.Runtime(db_url) as rt:
        assert [s.position for s in rt.list_steps("six")] == [1, 2, 3, 4, 5, 6]
    if db_url.startswith("postgresql"):
        assert records_per_position(db_url, "six") == {i: 1 for i in range(1, 7)}


def test_suite_isolation_two_schemas_do_not_see_each_other(postgres_url: str) -> None:
    other = postgres_url.replace("schema=", "schema=other_")

    @durable.durable_workflow(name="pg.iso")
    def wf() -> str:
        return "x"

    with durable.Runtime(postgres_url) as rt:
        wf.run(workflow_id="iso")
        assert rt.get_workflow("iso") is not None
    try:
        with durable.Runtime(other) as rt2:
            assert rt2.get_workflow("iso") is None
    finally:
        with psycopg.connect(plain(other)) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema_of(other)}" CASCADE')


async def test_one_runtime_serves_several_event_loops(postgres_url: str) -> None:
    @durable.durable_workflow(name="pg.loops")
    async def wf(x: int) -> int:
        await asyncio.sleep(0)
        return x

    with durable.Runtime(postgres_url):
        assert await wf(1) == 1
        # run_sync inside a running loop uses a loop of its own, in a thread.
        assert wf.run_sync(2) == 2
        assert wf.run_sync(3) == 3


def test_renewing_leases_never_waits_for_a_row_another_transaction_holds(
    postgres_url: str,
) -> None:
    """A heartbeat renews every lease it holds in one transaction; waiting there for
    a row that a group commit (finishing that workflow) holds could deadlock with it.
    It skips that row instead, renews the others, and the next beat tries again."""
    from durable.backends import NewWorkflow, Owner

    owner = Owner(host="test-host", pid=1, started="0")
    with durable.Runtime(postgres_url) as runtime:
        backend = runtime.backend

        def lease(workflow_id: str) -> float:
            row = backend.run_sync(backend.get_workflow, workflow_id)
            assert row is not None
            assert row.lease_expires_at is not None
            return row.lease_expires_at

        for wid in ("held", "free", "stale"):
            new = NewWorkflow(wid, "pg.lease", "fp", None, None)
            backend.run_sync(backend.start_workflow, new, owner, 1)
        before = {wid: lease(wid) for wid in ("held", "free", "stale")}
        with psycopg.connect(plain(postgres_url)) as other:
            other.execute(f'SET search_path TO "{schema_of(postgres_url)}"')
            other.execute("SELECT 1 FROM durable_workflows WHERE workflow_id = 'held' FOR UPDATE")
            renewer = threading.Thread(
                target=backend.run_sync,
                args=(
                    backend.renew_leases,
                    {"held": 1, "free": 1, "stale": 2},
                    600,
                ),  # stale: not its epoch
            )
            renewer.start()
            renewer.join(timeout=30)
            waited = renewer.is_alive()
            other.rollback()  # releases the row (and a renewer still waiting on it)
            renewer.join()
        assert not waited, "the renewal waited for the locked row"
        assert lease("held") == before["held"]
        assert lease("free") > before["free"] + 300
        assert lease("stale") == before["stale"]
        backend.run_sync(backend.renew_leases, {"held": 1}, 600)  # the next beat
        assert lease("held") > before["held"] + 300


@pytest.fixture
def row_only_role(postgres_url: str) -> Iterator[str]:
    """A role that may read and write rows of the test's schema, nothing more."""
    role = f"durable_rows_{uuid.uuid4().hex[:8]}"
    schema = schema_of(postgres_url)
    with psycopg.connect(plain(postgres_url), autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield role
    finally:
        with psycopg.connect(plain(postgres_url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}_other" CASCADE')
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_a_role_that_may_not_create_gets_a_clear_error_and_uses_an_existing_store(
    postgres_url: str, row_only_role: str
) -> None:
    schema = schema_of(postgres_url)
    as_role = postgres_url.replace("postgres@", f"{row_only_role}@", 1)
    assert as_role != postgres_url
    # No store yet, and no right to make one: a clear error, not a raw ProgrammingError.
    elsewhere = as_role.replace(f"schema={schema}", f"schema={schema}_other")
    with pytest.raises(durable.ConfigurationError, match="may not set up the store"):
        durable.Runtime(elsewhere)
    # Once the owner set it up, a role that may only read and write rows uses it
    # (CREATE SCHEMA IF NOT EXISTS used to refuse it).
    with durable.Runtime(postgres_url) as owner:
        owner.store.list_workflows()
    with psycopg.connect(plain(postgres_url), autocommit=True) as conn:
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{row_only_role}"')
        conn.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" '
            f'TO "{row_only_role}"'
        )
    with durable.Runtime(as_role) as runtime:
        assert runtime.store.list_workflows() == []


def test_the_users_options_reach_the_server_beside_durables(postgres_url: str) -> None:
    # ?options= used to be replaced by durable's own (its search_path).
    name = f"durable_opts_{uuid.uuid4().hex[:8]}"
    url = f"{postgres_url}&options=-c%20application_name%3D{name}"
    with durable.Runtime(url) as runtime:

        @durable.durable_workflow(name="postgres.options_probe")
        def probe() -> int:
            return 1

        assert probe.run_sync(workflow_id="probe") == 1
        with psycopg.connect(plain(postgres_url)) as conn:
            found = conn.execute(
                # A connection of the pool (its last statement wrote durable's
                # rows), not the listener's, which always had the user's options.
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                "AND query NOT ILIKE 'LISTEN%%' AND query ILIKE '%%durable_%%'",
                (name,),
            ).fetchone()
        assert found is not None
        assert found[0] >= 1
        assert runtime.store.get_workflow("probe") is not None  # durable's schema was used
