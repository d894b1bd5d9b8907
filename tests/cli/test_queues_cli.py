"""``durable queues ...``: list queues with what they hold, set terms, pause, resume, delete."""

from __future__ import annotations

import json

import pytest

import durable
from tests.conftest import durable_command


@durable.durable_workflow(name="cli_queues.job")
def job(n: int) -> int:
    return n


def test_queues_are_listed_set_paused_resumed_and_deleted(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = durable_command()
    with durable.Runtime(db_url):
        job.enqueue_sync(1, queue="mail")
        job.enqueue_sync(2, queue="mail")
        job.options(queue="mail", delay=3600).enqueue_sync(3)
    base = ["--url", db_url, "queues"]
    assert command([*base, "set", "mail", "--concurrency", "4", "--rate", "100/1m"]) == 0
    assert command([*base, "set", "tenants", "--partition-concurrency", "2"]) == 0
    assert command([*base, "pause", "mail"]) == 0
    assert "queue 'mail' paused" in capsys.readouterr().out
    assert command(base) == 0
    text = capsys.readouterr().out
    assert "mail" in text
    assert "paused" in text
    assert "0/100 per 1m" in text
    assert "3 (1 delayed)" in text
    assert command([*base, "-o", "json"]) == 0
    listed = {q["name"]: q for q in json.loads(capsys.readouterr().out)}
    assert (listed["mail"]["enqueued"], listed["mail"]["delayed"]) == (3, 1)
    assert listed["mail"]["concurrency"] == 4
    assert listed["mail"]["rate_limit"] == {"starts": 100, "per_seconds": 60.0}
    assert listed["mail"]["paused"] is True
    assert listed["tenants"]["partition_concurrency"] == 2
    assert command([*base, "set", "mail", "--clear", "rate", "-o", "json"]) == 0
    cleared = json.loads(capsys.readouterr().out)
    assert (cleared["concurrency"], cleared["rate_limit"], cleared["paused"]) == (4, None, True)
    assert command([*base, "resume", "mail"]) == 0
    assert command([*base, "delete", "tenants"]) == 0
    assert "its terms are deleted" in capsys.readouterr().out
    assert command([*base, "-o", "json"]) == 0
    listed = {q["name"]: q for q in json.loads(capsys.readouterr().out)}
    assert sorted(listed) == ["mail"]  # it holds work
    assert listed["mail"]["paused"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "q", "--rate", "100"], "give STARTS/PERIOD"),
        (["set", "q", "--rate", "x/1m"], "100/1m"),
        (["set", "q", "--concurrency", "0"], "concurrency of queue 'q' must be an int from 1"),
        (["set", "q" * 65], "queue name"),
    ],
)
def test_bad_terms_are_refused_with_what_to_do(
    db_url: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with durable.Runtime(db_url):
        pass
    assert durable_command()(["--url", db_url, "queues", *args]) != 0
    assert message in capsys.readouterr().err
    assert durable_command()(["--url", db_url, "queues", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
