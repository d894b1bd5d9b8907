"""Session state: shared by workflows, each read and write recorded, compare-and-set."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

import durable
from durable.testing import CrashInjector, SimulatedCrash, crash_sweep
from tests.conftest import durable_command

RAN: list[str] = []


@durable.step
async def note(what: Any) -> Any:
    RAN.append(str(what))
    return what


@durable.durable_workflow(name="sessions.turn")
async def turn(user: str, message: str) -> list[str]:
    chat = durable.session(f"user:{user}")
    history = await chat.get("history", [])
    history = [*history, message]
    await chat.set("history", history)
    await note(len(history))
    return history


@durable.durable_workflow(name="sessions.count")
def count_once(session_id: str) -> int:
    counter = durable.session(session_id)
    while True:
        seen = counter.get_sync("n")  # None before the first
        if counter.compare_and_set_sync("n", seen, (seen or 0) + 1):
            return int((seen or 0) + 1)


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


async def test_workflows_share_a_sessions_state(runtime: durable.Runtime) -> None:
    assert await turn.run("ana", "hi", workflow_id="t1") == ["hi"]
    assert await turn.run("ana", "how are you?", workflow_id="t2") == ["hi", "how are you?"]
    assert await turn.run("bo", "hello", workflow_id="t3") == ["hello"]
    chat = durable.session("user:ana")
    assert await chat.get("history") == ["hi", "how are you?"]
    assert chat.get_sync("missing", "default") == "default"
    assert runtime.store.session_values("user:ana") == {"history": ["hi", "how are you?"]}
    assert {s.session_id: s.keys for s in runtime.store.sessions()} == {"user:ana": 1, "user:bo": 1}


async def test_a_resumed_workflow_sees_what_it_saw_and_writes_nothing_twice(
    runtime: durable.Runtime,
) -> None:
    crash = CrashInjector(runtime)
    crash.arm("before_step", step="note")
    with pytest.raises(SimulatedCrash):
        await turn.run("ana", "hi", workflow_id="t1")
    # Meanwhile another workflow writes the same key.
    await durable.session("user:ana").set("history", ["someone else's"])
    assert await turn.run("ana", "hi", workflow_id="t1") == ["hi"]  # its recorded read
    # Its write was recorded before the crash, and not made again on resume.
    assert await durable.session("user:ana").get("history") == ["someone else's"]
    kinds = {(e.kind, e.name) for e in runtime.store.history("t1")}
    assert ("session", "session.get('history')") in kinds
    assert ("session", "session.set('history')") in kinds


def test_compare_and_set_lets_concurrent_workflows_count_exactly(
    db_url: str,
) -> None:
    with durable.Runtime(db_url) as runtime, runtime.activated():
        results: list[int] = []
        errors: list[BaseException] = []

        def run(n: int) -> None:
            try:
                with runtime.activated():
                    results.append(count_once.run_sync("counter", workflow_id=f"c{n}"))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        assert sorted(results) == list(range(1, 9))  # each saw a value of its own
        assert durable.session("counter").get_sync("n") == 8


async def test_compare_and_set_needs_the_value_it_expects(runtime: durable.Runtime) -> None:
    s = durable.session("s")
    assert not await s.compare_and_set("k", 0, 1)  # absent: equal to None only
    assert await s.compare_and_set("k", None, 1)  # created, as nobody had
    assert not await s.compare_and_set("k", None, 9)
    assert not await s.compare_and_set("k", 2, 3)
    assert await s.compare_and_set("k", 1, 3)
    assert s.get_sync("k") == 3


async def test_cleanup_deletes_sessions_by_age_or_by_id(
    runtime: durable.Runtime, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await durable.session("a").set("x", 1)
    await durable.session("a").set("y", 2)
    await durable.session("b").set("x", 3)
    store = runtime.store
    assert store.cleanup_sessions(older_than=3600) == 0
    assert store.cleanup_sessions(older_than=0, session_id="a", dry_run=True) == 2
    assert store.cleanup_sessions(older_than=0, session_id="a") == 2
    assert [s.session_id for s in store.sessions()] == ["b"]
    assert await store.acleanup_sessions(older_than=0) == 1
    assert store.sessions() == []


def test_the_cli_lists_shows_and_cleans_sessions(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with durable.Runtime(db_url) as runtime, runtime.activated():
        durable.session("user:7").set_sync("plan", "pro")
    command = durable_command()
    assert command(["--url", db_url, "sessions"]) == 0
    assert "user:7" in capsys.readouterr().out
    assert command(["--url", db_url, "sessions", "user:7"]) == 0
    assert "'pro'" in capsys.readouterr().out
    assert command(["--url", db_url, "cleanup-sessions", "--older-than", "0s", "--dry-run"]) == 0
    assert "would delete 1 session key" in capsys.readouterr().out
    assert command(["--url", db_url, "cleanup-sessions", "--older-than", "0s"]) == 0
    assert "deleted 1 session key" in capsys.readouterr().out
    assert command(["--url", db_url, "sessions", "--json"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


def test_the_wrong_form_and_bad_input_are_refused(runtime: durable.Runtime) -> None:
    with pytest.raises(durable.ConfigurationError, match="session id"):
        durable.session("")

    @durable.durable_workflow(name="sessions.wrong_form")
    def wrong_form() -> None:
        durable.session("s").get("k")  # type: ignore[unused-coroutine]

    with pytest.raises(durable.ConfigurationError, match="get_sync"):
        wrong_form.run_sync(workflow_id="w")


def test_crash_sweep_of_a_workflow_using_session_state() -> None:
    crash_sweep(turn, "ana", "hi", setup=RAN.clear).assert_ok()


def test_concurrent_async_workflows_in_one_process(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="sessions.async_count")
    async def async_count(session_id: str) -> int:
        counter = durable.session(session_id)
        while True:
            seen = await counter.get("n")
            if await counter.compare_and_set("n", seen, (seen or 0) + 1):
                return int((seen or 0) + 1)

    async def main() -> list[int]:
        return list(
            await asyncio.gather(*(async_count.run("ac", workflow_id=f"a{n}") for n in range(5)))
        )

    assert sorted(asyncio.run(main())) == [1, 2, 3, 4, 5]
