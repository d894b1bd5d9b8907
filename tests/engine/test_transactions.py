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
    # The block's records are kept marked rolled back (for a crash while
    # compensating), then the compensations are recorded.
    assert kinds == [
        ("reserve", "success"),
        ("charge", "success"),
        ("refund", "success"),
        ("release", "success"),
    ]
    marks = [e.transaction_id for e in runtime.store.history("r")]
    assert all(m is not None and m.startswith("rolled-back:") for m in marks[:2])


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
    # The block replayed its kept records and raised again; `release` ran once.
    assert LOG == ["release booking-D4"]


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
    # E5, the inner block's records (kept, rolled back), its compensation, charge 3.
    assert names == ["reserve", "reserve", "charge", "release", "charge"]


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
    assert [s.name for s in runtime.list_steps("bad")] == ["sync_add", "sync_add", "list.append"]


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


# A failed workflow called again is a new attempt: its rolled-back block runs
# again, and so must the block's compensations, for that attempt's values.

SEATS: list[str] = []
RESERVED: set[str] = set()


@pytest.fixture(autouse=True)
def _clear_seats() -> None:
    SEATS.clear()
    RESERVED.clear()


@durable.step(name="reserve_seat")
async def reserve_seat(show: str) -> str:
    SEATS.append(show)
    seat = f"{show}-{len(SEATS)}"
    RESERVED.add(seat)
    return seat


@durable.step(name="charge_card")
async def charge_card(amount: int) -> None:
    raise ValueError(f"card declined for {amount}")


async def release_seat(seat: str) -> None:
    LOG.append(f"release {seat}")
    RESERVED.discard(seat)


async def hold_tickets(seat: str) -> None:
    LOG.append(f"unhold {seat}")


@durable.durable_workflow(name="tx.buy")
async def buy(show: str, amount: int) -> str:
    async with durable.transaction() as tx:
        seat = await reserve_seat(show)
        tx.on_rollback(release_seat, seat)
        tx.on_rollback(hold_tickets, seat)
        await charge_card(amount)
    return seat


async def test_each_attempt_of_a_failed_workflow_runs_its_own_compensations(
    runtime: durable.Runtime,
) -> None:
    for attempt in (1, 2, 3):
        with pytest.raises(ValueError, match="card declined"):
            await buy.run("lear", 5, workflow_id="buy")
        assert not RESERVED, f"attempt {attempt} left a seat reserved"
    assert LOG == [
        "unhold lear-1",
        "release lear-1",
        "unhold lear-2",
        "release lear-2",
        "unhold lear-3",
        "release lear-3",
    ]
    # Each attempt's compensation is recorded once; only the last one stands.
    live = [(s.position, s.name) for s in runtime.list_steps("buy")]
    assert live == [
        (1, "reserve_seat"),
        (2, "charge_card"),
        (3, "hold_tickets"),
        (4, "release_seat"),
    ]
    history = runtime.store.history("buy")
    releases = [e for e in history if e.name == "release_seat" and e.status != "retried"]
    assert [e.superseded for e in releases] == [True, True, False]


async def test_a_crash_while_compensating_resumes_with_the_same_values(
    runtime: durable.Runtime,
) -> None:
    CrashInjector(runtime).arm("after_commit", step="hold_tickets")
    with pytest.raises(SimulatedCrash):
        await buy.run("lear", 5, workflow_id="crash")
    assert LOG == ["unhold lear-1"]
    with pytest.raises(ValueError, match="card declined"):
        await buy.run("lear", 5, workflow_id="crash")
    # The block replayed its records (no second seat); the remaining
    # compensation ran once, for the seat of this attempt; none ran twice.
    assert SEATS == ["lear"]
    assert LOG == ["unhold lear-1", "release lear-1"]
    assert not RESERVED


def test_crash_sweep_of_a_compensated_workflow_passes() -> None:
    crash_sweep(buy, "lear", 5, setup=SEATS.clear).assert_ok()
