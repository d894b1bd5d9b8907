"""durable.testing: crash injection, crash points, the sweep, SIGKILL at a point, the clock."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

import durable
from durable.testing import (
    CrashInjector,
    CrashPoint,
    SimulatedCrash,
    VirtualClock,
    crash_sweep,
    crash_sweep_async,
    kill_at,
)
from tests.conftest import read_lines
from tests.programs import shop

RAN: list[str] = []


@durable.step(name="load")
async def load(x: int) -> int:
    RAN.append("load")
    return x + 1


@durable.step(name="double")
async def double(x: int) -> int:
    RAN.append("double")
    return 2 * x


@durable.durable_workflow(name="testing.flow")
async def flow(x: int) -> int:
    a = await load(x)
    b = await double(a)
    c = await double(b)
    return c


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


@pytest.mark.parametrize(
    ("point", "ran_before_crash", "committed", "ran_on_resume"),
    [
        ("workflow_start", [], [], ["load", "double", "double"]),
        ("before_step:double", ["load"], [1], ["double", "double"]),
        ("after_step:double", ["load", "double"], [1], ["double", "double"]),
        ("after_commit:double", ["load", "double"], [1, 2], ["double"]),
        ("after_step:double#2", ["load", "double", "double"], [1, 2], ["double"]),
        ("before_step@3", ["load", "double"], [1, 2], ["double"]),
    ],
)
async def test_crash_points_leave_the_state_a_real_crash_would(
    runtime: durable.Runtime,
    point: str,
    ran_before_crash: list[str],
    committed: list[int],
    ran_on_resume: list[str],
) -> None:
    crash = CrashInjector(runtime)
    armed = crash.arm(point)
    assert str(armed) == point
    with pytest.raises(SimulatedCrash) as info:
        await flow.run(1, workflow_id="w")
    assert ran_before_crash == RAN
    assert [s.position for s in runtime.list_steps("w")] == committed
    assert runtime.get_workflow("w").status is durable.WorkflowStatus.RUNNING  # type: ignore[union-attr]
    assert crash.fired == [info.value.site]
    assert crash.armed == []  # one shot
    RAN.clear()
    assert await flow.run(1, workflow_id="w") == 8
    assert ran_on_resume == RAN


async def test_simulated_crash_is_not_swallowed_by_except_exception(
    runtime: durable.Runtime,
) -> None:
    @durable.step(name="guarded")
    async def guarded() -> str:
        return "ok"

    @durable.durable_workflow(name="testing.swallow")
    async def wf() -> str:
        try:
            return await guarded()
        except Exception:
            return "swallowed"

    CrashInjector(runtime).arm("after_step", step="guarded")
    with pytest.raises(SimulatedCrash, match="after the body of step 'guarded'"):
        await wf()
    assert await wf() == "ok"


def test_crash_points_parse_print_and_refuse_nonsense() -> None:
    for text in (
        "workflow_start",
        "after_step:fetch",
        "after_commit:fetch#3",
        "before_step@4",
        "after_step:leaf in testing.child",
    ):
        assert str(CrashPoint.parse(text)) == text
    with pytest.raises(durable.ConfigurationError, match="unknown crash point kind 'during'"):
        CrashPoint("during")  # type: ignore[arg-type]
    with pytest.raises(durable.ConfigurationError, match="cannot read crash point"):
        CrashPoint.parse("after step")
    with pytest.raises(durable.ConfigurationError, match="nth counts calls from 1"):
        CrashPoint("after_step", step="x", nth=0)


COUNTER: list[int] = []


@durable.step(name="count")
async def count(x: int) -> int:
    COUNTER.append(x)
    return len(COUNTER)  # depends on how often it ran: not safe to re-run


@durable.durable_workflow(name="testing.buggy")
async def buggy(x: int) -> int:
    a = await load(x)
    return a + await count(a)


@durable.durable_workflow(name="testing.child")
async def child(x: int) -> int:
    return await double(x)


@durable.durable_workflow(name="testing.parent")
async def parent(x: int) -> int:
    return await child(await load(x)) + 1


def test_sweep_passes_a_correct_workflow_at_every_point() -> None:
    report = crash_sweep(flow, 1)
    report.assert_ok()
    assert [str(o.point) for o in report.outcomes] == [
        "workflow_start",
        "before_step:load",
        "after_step:load",
        "after_commit:load",
        "before_step:double",
        "after_step:double",
        "after_commit:double",
        "before_step:double#2",
        "after_step:double#2",
        "after_commit:double#2",
    ]
    assert "10 crash points, 10 passed, 0 failed (crash-free run: 8)" in str(report)


def test_sweep_catches_a_step_that_is_not_safe_to_rerun() -> None:
    report = crash_sweep(buggy, 1, setup=COUNTER.clear)
    assert not report.ok
    [failure] = report.failures
    assert str(failure.point) == "after_step:count"
    text = str(report)
    assert "FAIL  after_step:count: after the crash after the body of step 'count'" in text
    assert "the resumed run returned 4 where the crash-free run returned 3" in text
    line = (
        "durable.testing.crash_sweep(tests.testing.test_testing.buggy, 1, "
        "setup=tests.testing.test_testing.COUNTER.clear, only='after_step:count')"
    )
    assert f"reproduce: {line}" in text
    # The reproducer runs as printed: every name in it resolves.
    import tests.testing.test_testing

    reproduced = eval(line, {"durable": durable, "tests": tests})
    assert [str(f.point) for f in reproduced.failures] == ["after_step:count"]
    with pytest.raises(durable.testing.SweepFailed, match="1 failed"):
        report.assert_ok()
    # The one-line reproduction runs just that point.
    again = crash_sweep(buggy, 1, setup=COUNTER.clear, only="after_step:count")
    assert [str(o.point) for o in again.outcomes] == ["after_step:count"]
    assert not again.ok


def test_sweep_covers_child_workflows_and_names_them() -> None:
    report = crash_sweep(parent, 2)
    report.assert_ok()
    points = [str(o.point) for o in report.outcomes]
    assert "after_step:double in testing.child" in points
    assert "workflow_start in testing.child" in points
    assert "after_commit:testing.child" in points  # the child's record in the parent


def test_sweep_sampling_is_seeded_and_only_is_checked() -> None:
    first = crash_sweep(flow, 1, sample=3, seed=7)
    second = crash_sweep(flow, 1, sample=3, seed=7)
    assert len(first.outcomes) == 3
    assert [o.point for o in first.outcomes] == [o.point for o in second.outcomes]
    with pytest.raises(
        durable.ConfigurationError,
        match=r"no crash point 'after_step:nope'.*its points are: workflow_start",
    ):
        crash_sweep(flow, 1, only="after_step:nope")


def test_sweep_of_a_failing_workflow_compares_errors() -> None:
    @durable.step(name="boom")
    def boom() -> None:
        raise ValueError("bad row 7")

    @durable.durable_workflow(name="testing.fails")
    def fails() -> None:
        boom()

    report = crash_sweep(fails)
    report.assert_ok()
    assert "crash-free run: ValueError: bad row 7" in str(report)


def test_sweep_reports_a_workflow_whose_path_changes_on_resume() -> None:
    body_runs = {"n": 0}

    @durable.step(name="first")
    def first() -> str:
        return "first"

    @durable.step(name="other")
    def other() -> str:
        return "other"

    @durable.durable_workflow(name="testing.unstable")
    def unstable() -> str:
        body_runs["n"] += 1  # state outside the steps: a resume takes another path
        return first() if body_runs["n"] == 1 else other()

    report = crash_sweep(unstable, setup=lambda: body_runs.update(n=0))
    problems = {str(o.point): o.problem or "" for o in report.failures}
    assert (
        "the resumed run returned 'other' where the crash-free run returned 'first'"
        in (problems["before_step:first"])
    )
    assert (
        "NonDeterminismError: workflow 'crash-sweep' position 1: the record there is of "
        "step 'first', but the code now calls step 'other'" in problems["after_commit:first"]
    )
    assert "workflow_start" not in problems


async def test_async_sweep_and_memory_store() -> None:
    report = await crash_sweep_async(flow, 2, store="sqlite-memory")
    report.assert_ok()
    assert len(report.outcomes) == 10


def test_kill_at_sigkills_a_real_process_at_the_point(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    effects = tmp_path / "effects"
    monkeypatch.setenv("SHOP_EFFECTS", str(effects))
    killed = kill_at(
        "after_step:charge", shop.checkout, "book", 12, workflow_id="order-1", url=db_url
    )
    assert str(killed.point) == "after_step:charge"
    assert read_lines(effects) == ["reserve book", "charge 12"]
    with durable.Runtime(db_url) as rt:
        assert [s.name for s in rt.list_steps("order-1")] == ["reserve"]  # charge never committed
        assert shop.checkout.run_sync("book", 12, workflow_id="order-1") == [
            "r-book",
            "c-12",
            "s-r-book",
        ]
    assert Counter(read_lines(effects)) == {"reserve book": 1, "charge 12": 2, "ship r-book": 1}


def test_kill_at_refuses_what_another_process_cannot_import_or_reach(db_url: str) -> None:
    with pytest.raises(durable.ConfigurationError, match="define it at the top level"):
        kill_at("workflow_start", buggy_local(), workflow_id="x", url=db_url)
    with pytest.raises(durable.ConfigurationError, match="a store that outlives the process"):
        kill_at("workflow_start", shop.checkout, "a", 1, workflow_id="x", url="sqlite:///:memory:")


def buggy_local() -> durable.AsyncWorkflow[..., int]:
    @durable.durable_workflow(name="testing.local")
    async def local() -> int:
        return 1

    return local


def test_virtual_clock_makes_backoffs_instant() -> None:
    attempts: list[float] = []
    clock = VirtualClock()

    @durable.step(retries=3, backoff=10, backoff_multiplier=3)
    def flaky() -> str:
        attempts.append(clock.time())
        if len(attempts) < 4:
            raise TimeoutError("slow")
        return "ok"

    @durable.durable_workflow(name="testing.clock")
    def wf() -> str:
        return flaky()

    with durable.Runtime("sqlite:///:memory:", clock=clock):
        assert wf() == "ok"
    assert clock.elapsed == 10 + 30 + 90
    assert [round(t - attempts[0]) for t in attempts] == [0, 10, 40, 130]


async def test_virtual_clock_in_manual_mode_waits_for_advance() -> None:
    clock = VirtualClock(auto_advance=False)
    woke: list[float] = []

    async def sleeper() -> None:
        await clock.asleep(60)
        woke.append(clock.elapsed)

    task = asyncio.ensure_future(sleeper())
    await asyncio.sleep(0.01)
    clock.advance(59)
    await asyncio.sleep(0.01)
    assert woke == []
    clock.advance(1)
    await asyncio.wait_for(task, 5)
    assert woke == [60]
    with pytest.raises(ValueError, match="seconds=-1 is negative"):
        clock.advance(-1)


@pytest.mark.slow
def test_sigkill_at_every_crash_point_of_a_real_process(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-process sweep's claims, checked with real SIGKILLs at every point."""
    monkeypatch.setenv("SHOP_EFFECTS", str(tmp_path / "effects"))
    with durable.Runtime(db_url):
        points = [str(o.point) for o in crash_sweep(shop.checkout, "lamp", 30).outcomes]
    assert len(points) == 10
    for n, point in enumerate(points):
        workflow_id = f"kill-{n}"
        effects = tmp_path / "effects"
        effects.write_text("")
        kill_at(point, shop.checkout, "lamp", 30, workflow_id=workflow_id, url=db_url)
        with durable.Runtime(db_url) as runtime:
            committed = {s.name for s in runtime.list_steps(workflow_id)}
            result = shop.checkout.run_sync("lamp", 30, workflow_id=workflow_id)
        assert result == ["r-lamp", "c-30", "s-r-lamp"], point
        counts = Counter(read_lines(effects))
        for step, line in (
            ("reserve", "reserve lamp"),
            ("charge", "charge 30"),
            ("ship", "ship r-lamp"),
        ):
            # A step whose record committed before the kill never ran again.
            assert counts[line] == (1 if step in committed else counts[line]), (point, counts)
            assert counts[line] in (1, 2), (point, counts)
