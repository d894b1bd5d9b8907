"""durable.transaction(): atomic groups of step records, compensations, nesting."""

from __future__ import annotations

import pytest

import durable
from durable.testing import CrashInjector, SimulatedCrash, crash_sweep

pytestmark = pytest.mark.usefixtures("runtime")

LOG: list[str] = []


@pytest.fixture(autouse=True)
def _clear() -> None:
    LOG.clear()


@durable.step(name="reserve")
async def reserve(seat: str) -> str:
    LOG.append(f"reserve {seat}")
    return f"booking-{seat}"


@durable.step(name="charge")
async def charge(amount: int) -> str:
    LOG.append(f"charge {amount}")
    if amount < 0:
        raise ValueError("card declined")
    return f"paid {amount}"


async def release(booking: str) -> None:
    LOG.append(f"release {booking}")


def refund(amount: int) -> None:
    LOG.append(f"refund {amount}")


@durable.durable_workflow(name="tx.book")
async def book(seat: str, amount: int) -> list[str]:
    before = await reserve("warmup")
    async with durable.transaction() as tx:
        booking = await reserve(seat)
        tx.on_rollback(release, booking)
        paid = await charge(amount)
        tx.on_rollback(refund, amount)
    return [before, booking, paid]


async def test_block_commits_its_records_together(runtime: durable.Runtime) -> None:
    assert await book.run("A1", 10, workflow_id="b") == ["booking-warmup", "booking-A1", "paid 10"]
    history = runtime.store.history("b")
    tx_ids = {e.transaction_id for e in history if e.position in (2, 3)}
    assert len(tx_ids) == 1 and None not in tx_ids  # noqa: PT018
    assert history[0].transaction_id is None
    LOG.clear()
    assert await book.run("A1", 10, workflow_id="b") == ["booking-warmup", "booking-A1", "paid 10"]
    assert LOG == []


async def test_an_exception_keeps_nothing_and_runs_compensations_newest_first(
    runtime: durable.Runtime,
) -> None:
    @durable.durable_workflow(name="tx.refund")
    async def wf() -> None:
        async with durable.transaction() as tx:
            booking = await reserve("B2")
            tx.on_rollback(release, booking)
            await charge(5)
            tx.on_rollback(refund, 5)
            raise RuntimeError("change of plans")

    with pytest.raises(RuntimeError, match="change of plans"):
        await wf.run(workflow_id="r")
    assert LOG == ["reserve B2", "charge 5", "refund 5", "release booking-B2"]
    kinds = [(s.name, s.status.value) for s in runtime.list_steps("r")]
    # Only the compensations were recorded: the block's own steps were not.
    assert kinds == [("refund", "success"), ("release", "success")]


async def test_a_crash_inside_the_block_reruns_the_whole_block(runtime: durable.Runtime) -> None:
    CrashInjector(runtime).arm("after_step", step="charge")
    with pytest.raises(SimulatedCrash):
        await book.run("C3", 7, workflow_id="c")
    assert [s.name for s in runtime.list_steps("c")] == ["reserve"]  # only the warm-up
    assert await book.run("C3", 7, workflow_id="c") == ["booking-warmup", "booking-C3", "paid 7"]
    assert LOG == ["reserve warmup", "reserve C3", "charge 7", "reserve C3", "charge 7"]


async def test_a_crash_while_compensating_never_repeats_a_finished_compensation(
    runtime: durable.Runtime,
) -> None:
    CrashInjector(runtime).arm("before_step", step="release")
    with pytest.raises(SimulatedCrash):
        await book.run("D4", -1, workflow_id="d")
    assert LOG == ["reserve warmup", "reserve D4", "charge -1"]
    LOG.clear()
    with pytest.raises(ValueError, match="card declined"):
        await book.run("D4", -1, workflow_id="d")
    # The block ran again and raised again; `release` ran once, nothing twice.
    assert LOG == ["reserve D4", "charge -1", "release booking-D4"]


async def test_a_nested_transaction_is_a_savepoint(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="tx.nested")
    async def wf() -> str:
        async with durable.transaction() as outer:
            first = await reserve("E5")
            outer.on_rollback(release, first)
            try:
                async with durable.transaction() as inner:
                    await reserve("E6")
                    inner.on_rollback(release, "booking-E6")
                    await charge(-1)
            except ValueError:
                pass  # the inner block's records are dropped; the outer goes on
            await charge(3)
        return first

    assert await wf.run(workflow_id="n") == "booking-E5"
    assert LOG == ["reserve E5", "reserve E6", "charge -1", "release booking-E6", "charge 3"]
    names = [s.name for s in runtime.list_steps("n")]
    assert names == ["reserve", "release", "charge"]  # E5, the inner compensation, charge 3


def test_sync_workflows_use_a_plain_with(runtime: durable.Runtime) -> None:
    undo: list[int] = []

    @durable.step(name="sync_add")
    def add(x: int) -> int:
        if x > 9:
            raise OverflowError("too big")
        return x + 1

    @durable.durable_workflow(name="tx.sync")
    def wf(x: int) -> int:
        with durable.transaction() as tx:
            y = add(x)
            tx.on_rollback(undo.append, y)
            return add(y + 8)

    assert wf.run(0, workflow_id="ok") == 10
    with pytest.raises(OverflowError):
        wf.run(5, workflow_id="bad")
    assert undo == [6]
    assert runtime.list_steps("bad")[0].name == "list.append"


async def test_transaction_outside_a_workflow_or_inside_a_step_is_refused() -> None:
    with pytest.raises(durable.NotInWorkflowError, match="outside a workflow"):
        async with durable.transaction():
            pass

    @durable.step(name="inner_tx")
    async def inner() -> None:
        async with durable.transaction():
            pass

    @durable.durable_workflow(name="tx.in_step")
    async def wf() -> None:
        await inner()

    with pytest.raises(durable.NotInWorkflowError, match="inside a step"):
        await wf()


def test_crash_sweep_of_a_transaction_passes() -> None:
    crash_sweep(book, "F7", 4, setup=LOG.clear).assert_ok()
    crash_sweep(book, "F8", -4, setup=LOG.clear).assert_ok()
