"""One output switch on the read commands (-o text|json|jsonl), and durable migrate."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

import durable
from durable.backends import SCHEMA_VERSION
from tests.conftest import durable_command


@durable.durable_workflow(name="output.job")
def job(n: int) -> int:
    return n


@pytest.fixture
def url(durable_sqlite: str) -> str:
    with durable.Runtime(durable_sqlite) as runtime, runtime.activated():
        job.run(1, workflow_id="a")
        job.run(2, workflow_id="b")
    return durable_sqlite


def test_o_json_jsonl_and_the_json_alias(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    command = durable_command()
    assert command(["--url", url, "list", "-o", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["workflow_id"] for line in lines] == ["b", "a"]
    assert command(["--url", url, "list", "-o", "json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert command(["--url", url, "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == as_json
    assert command(["--url", url, "show", "a", "--output", "jsonl"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["result"] == "1"
    assert command(["--url", url, "list", "-o", "xml"]) != 0


def test_migrate_says_what_it_did(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    command = durable_command()
    assert command(["--url", url, "migrate"]) == 0
    assert f"already at schema version {SCHEMA_VERSION}" in capsys.readouterr().out
    path = Path(url.removeprefix("sqlite:///"))
    # closing(): sqlite3's own context manager commits but leaves it open.
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        # as an older durable-sdk left it
        conn.execute("DROP TABLE durable_queues")
        conn.execute("DROP INDEX ix_durable_workflows_queue_started")
        conn.execute("DROP INDEX ix_durable_workflows_start_by")
        conn.execute("DROP INDEX ix_durable_workflows_created")
        conn.execute("DROP INDEX ix_durable_steps_superseded")
        conn.execute("ALTER TABLE durable_steps DROP COLUMN workflow_created_at")
        for column in ("partition_key", "start_by"):
            conn.execute(f"ALTER TABLE durable_workflows DROP COLUMN {column}")
        conn.execute("DROP INDEX ix_durable_workflows_parent")
        conn.execute("DROP TABLE durable_streams")
        conn.execute("DROP TABLE durable_sessions")
        conn.execute("DROP TABLE durable_schedules")
        conn.execute("DROP INDEX ix_durable_workflows_dedup")
        conn.execute("ALTER TABLE durable_workflows DROP COLUMN dedup_id")
        conn.execute("ALTER TABLE durable_workflows DROP COLUMN started_at")
        for column in ("timeout", "deadline"):
            conn.execute(f"ALTER TABLE durable_workflows DROP COLUMN {column}")
        conn.execute("UPDATE durable_meta SET value = '5' WHERE key = 'schema_version'")
    assert command(["--url", url, "migrate", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"before": 5, "after": SCHEMA_VERSION}
    assert command(["--url", url, "show", "a"]) == 0  # the records came through
