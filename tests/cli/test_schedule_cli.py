"""``durable schedule ...``: add by name, list, pause, resume, backfill, delete (issue 16)."""

from __future__ import annotations

import json

import pytest

import durable
from tests.conftest import durable_command


@durable.durable_workflow(name="cli_schedule.digest")
def digest(at: object, region: str) -> str:
    return f"{region}@{at}"


@pytest.fixture
def url(db_url: str) -> str:
    with durable.Runtime(db_url):
        pass  # the store exists, as after any run
    return db_url


def test_a_schedule_added_by_name_is_listed_changed_and_deleted(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = durable_command()
    base = ["--url", url, "schedule"]
    added = [*base, "add", "digest-eu", "cli_schedule.digest", "--cron", "0 7 * * *"]
    assert command([*added, "--timezone", "Europe/Paris", "--args", '["eu"]']) == 0
    assert "schedule 'digest-eu' added: 0 7 * * * (Europe/Paris)" in capsys.readouterr().out
    assert command([*base, "add", "hourly", "cli_schedule.digest", "--every", "1h"]) == 0
    assert command([*base, "pause", "hourly"]) == 0
    start, end = "2026-11-01T00:00:00Z", "2026-11-03T00:00:00Z"
    assert command([*base, "backfill", "digest-eu", "--start", start, "--end", end]) == 0
    assert "2 tick(s) to backfill" in capsys.readouterr().out
    assert command([*base, "list"]) == 0
    text = capsys.readouterr().out
    assert "digest-eu" in text
    assert "paused" in text
    assert command([*base, "list", "-o", "json"]) == 0
    listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert listed["hourly"]["every"] == 3600
    assert listed["hourly"]["paused"] is True
    assert listed["digest-eu"]["timezone"] == "Europe/Paris"
    assert listed["digest-eu"]["backfill"] == [
        "2026-11-01T01:00:00+01:00",
        "2026-11-03T01:00:00+01:00",
    ]
    assert command([*base, "resume", "hourly"]) == 0
    assert command([*base, "delete", "hourly"]) == 0
    with durable.Store.open(url) as store:
        assert [s.name for s in store.schedules()] == ["digest-eu"]
        assert not store.schedules()[0].paused


def test_bad_schedule_commands_say_what_is_wrong(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = durable_command()
    base = ["--url", url, "schedule"]
    assert command([*base, "delete", "absent"]) == 1
    assert "no schedule named 'absent'" in capsys.readouterr().err
    assert command([*base, "add", "x", "cli_schedule.digest", "--every", "1h", "--args", "{}"]) == 2
    assert "--args: must be a JSON list" in capsys.readouterr().err
    assert command([*base, "add", "x", "cli_schedule.digest", "--cron", "* *"]) == 1
    assert "cron expression '* *' is not valid" in capsys.readouterr().err
    assert command([*base, "add", "x", "cli_schedule.digest"]) == 1
    assert "give either cron=" in capsys.readouterr().err
