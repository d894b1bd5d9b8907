"""Streams: generator steps and durable.write_stream, read live by durable.read_stream."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import durable
from durable.testing import CrashInjector, SimulatedCrash, crash_sweep

RAN: list[str] = []
GATE: dict[str, asyncio.Event] = {}


@durable.step(stream="answer")
async def tokens(prompt: str) -> AsyncIterator[str]:
    RAN.append(f"generate {prompt}")
    for word in prompt.split():
        if "gate" in GATE:
            await GATE["gate"].wait()
        yield word


@durable.step
def numbers(n: int) -> Iterator[int]:
    RAN.append(f"numbers {n}")
    yield from range(n)


@durable.step
async def keep(text: str) -> str:
    RAN.append(f"keep {text}")
    return text


@durable.durable_workflow(name="streams.chat")
async def chat(prompt: str) -> str:
    words = [word async for word in tokens(prompt)]
    return await keep(" ".join(words))


@durable.durable_workflow(name="streams.sync")
def sync_numbers(n: int) -> int:
    total = sum(numbers(n))
    second = list(numbers(2))
    return total + len(second)


async def _poll(predicate: Any) -> None:
    for _ in range(3000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()
    GATE.clear()


async def test_chunks_reach_the_workflow_are_recorded_and_replayed(
    runtime: durable.Runtime,
) -> None:
    assert await chat.run("hello durable world", workflow_id="c") == "hello durable world"
    assert [w async for w in durable.read_stream("c", "answer")] == ["hello", "durable", "world"]
    RAN.clear()
    assert await chat.run("hello durable world", workflow_id="c") == "hello durable world"
    assert RAN == []  # replayed from the record: the generator did not run


def test_sync_generator_steps_stream_in_sync_workflows(runtime: durable.Runtime) -> None:
    assert sync_numbers.run_sync(4, workflow_id="n") == 8
    assert list(durable.read_stream_sync("n", "numbers")) == [0, 1, 2, 3]
    assert list(durable.read_stream_sync("n", "numbers#2")) == [0, 1]  # its second call
    RAN.clear()
    assert sync_numbers.run_sync(4, workflow_id="n") == 8
    assert RAN == []


async def test_a_reader_sees_chunks_live_before_the_step_ends(runtime: durable.Runtime) -> None:
    GATE["gate"] = asyncio.Event()
    GATE["gate"].set()
    seen: list[Any] = []
    done = threading.Event()

    @durable.step(stream="slow")
    async def slow() -> AsyncIterator[int]:
        for i in range(3):
            yield i
            await asyncio.sleep(0.05 if i < 2 else 0)
            if i == 1:
                # The reader got 0 and 1 while the step still runs.
                await _poll(lambda: len(seen) >= 2)

    @durable.durable_workflow(name="streams.live")
    async def live() -> list[int]:
        return [i async for i in slow()]

    task = asyncio.create_task(live.run(workflow_id="l"))
    await _poll(lambda: runtime.get_workflow("l") is not None)

    def read() -> None:
        seen.extend(durable.read_stream_sync("l", "slow"))
        done.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert await task == [0, 1, 2]
    await asyncio.to_thread(reader.join, 60)
    assert seen == [0, 1, 2]


async def test_a_crash_mid_stream_runs_it_again_and_readers_see_the_restart(
    runtime: durable.Runtime,
) -> None:
    crash = CrashInjector(runtime)
    crash.arm("before_step", step="keep")
    with pytest.raises(SimulatedCrash):
        await chat.run("a b", workflow_id="c")
    # The step had finished: its record stands, the resume replays it.
    RAN.clear()
    assert await chat.run("a b", workflow_id="c") == "a b"
    assert RAN == ["keep a b"]

    class Crashed(BaseException):
        """Like a crash of the process: nothing catches it, nothing is recorded."""

    @durable.step(stream="cut")
    async def cut() -> AsyncIterator[str]:
        RAN.append("cut runs")
        yield "first"
        if RAN.count("cut runs") == 1:
            raise Crashed()
        yield "second"

    @durable.durable_workflow(name="streams.cut")
    async def cut_flow() -> list[str]:
        return [x async for x in cut()]

    with pytest.raises(Crashed):
        await cut_flow.run(workflow_id="k")
    assert await cut_flow.run(workflow_id="k") == ["first", "second"]
    read = [x async for x in durable.read_stream("k", "cut")]
    assert read == ["first", durable.StreamRestarted(), "first", "second"]


async def test_write_stream_writes_once_and_close_ends_it(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="streams.writer")
    async def writer(n: int) -> int:
        for i in range(n):
            await durable.write_stream("progress", i)
        await durable.close_stream("progress")
        return n

    assert await writer.run(3, workflow_id="w") == 3
    assert await writer.run(3, workflow_id="w") == 3  # replayed: nothing written again
    assert [x async for x in durable.read_stream("w", "progress")] == [0, 1, 2]


async def test_an_early_stop_records_what_came_so_far(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="streams.first_two")
    async def first_two() -> list[str]:
        got = []
        async for word in tokens("one two three four"):
            got.append(word)
            if len(got) == 2:
                break
        return got

    assert await first_two.run(workflow_id="f") == ["one", "two"]
    (entry,) = [e for e in runtime.store.history("f") if e.name == "answer" or e.kind == "step"]
    assert entry.status == "success"
    RAN.clear()
    assert await first_two.run(workflow_id="f") == ["one", "two"]
    assert RAN == []


async def test_a_failing_generator_records_its_error_and_ends_the_stream(
    runtime: durable.Runtime,
) -> None:
    @durable.step(stream="broken")
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise ValueError("source went away")

    @durable.durable_workflow(name="streams.broken")
    async def uses_broken() -> str:
        got = []
        try:
            async for x in broken():
                got.append(x)
        except ValueError as exc:
            return f"{got} then {exc}"
        return "no error"

    assert await uses_broken.run(workflow_id="b") == "[1] then source went away"
    assert [x async for x in durable.read_stream("b", "broken")] == [1]
    assert await uses_broken.run(workflow_id="b") == "[1] then source went away"


def test_generator_steps_refuse_what_cannot_hold() -> None:
    with pytest.raises(durable.ConfigurationError, match="retries or a timeout"):

        @durable.step(retries=2)
        def retried() -> Iterator[int]:
            yield 1

    with pytest.raises(durable.ConfigurationError, match="generator function"):

        @durable.durable_workflow
        def gen_workflow() -> Iterator[int]:
            yield 1


def test_outside_a_workflow_a_generator_step_is_a_plain_generator() -> None:
    assert list(numbers(3)) == [0, 1, 2]


async def test_readers_of_unknown_or_finished_workflows(runtime: durable.Runtime) -> None:
    with pytest.raises(durable.WorkflowNotFoundError):
        [x async for x in durable.read_stream("nobody", "k")]
    await chat.run("x", workflow_id="c")
    # Finished, and this key was never written: the reader ends at once.
    assert [x async for x in durable.read_stream("c", "never written")] == []

    @durable.durable_workflow(name="streams.reads_in_body")
    async def reads_in_body() -> None:
        durable.read_stream("c", "answer")

    with pytest.raises(durable.ConfigurationError, match="inside a step"):
        await reads_in_body.run(workflow_id="r")


def test_crash_sweep_of_a_streaming_workflow() -> None:
    crash_sweep(chat, "a b c", setup=RAN.clear).assert_ok()


def test_durable_show_and_the_display_list_streams(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import durable_command

    with durable.Runtime(db_url) as runtime, runtime.activated():
        assert sync_numbers.run_sync(3, workflow_id="n") == 5
        info = runtime.get_workflow("n")
        assert info is not None
        assert [(s.key, s.chunks, s.restarts, s.ended) for s in info.streams()] == [
            ("numbers", 3, 0, True),
            ("numbers#2", 2, 0, True),
        ]
        assert "durable-streams" in info._repr_html_()
    command = durable_command()
    assert command(["--url", db_url, "show", "n"]) == 0
    out = capsys.readouterr().out
    assert "numbers#2" in out
    assert "ended" in out


def test_write_stream_is_refused_outside_a_workflow_or_in_the_wrong_form(
    runtime: durable.Runtime,
) -> None:
    with pytest.raises(durable.NotInWorkflowError, match="outside a workflow's body"):
        durable.write_stream_sync("k", 1)

    @durable.durable_workflow(name="streams.wrong_form")
    def wrong_form() -> None:
        durable.write_stream("k", 1)  # type: ignore[unused-coroutine]

    with pytest.raises(durable.ConfigurationError, match=r"durable\.write_stream_sync\(\)"):
        wrong_form.run_sync(workflow_id="w")
