"""``durable.progress``: a loop's counts of replayed and run items, and its bar."""

from __future__ import annotations

import pytest

import durable

SEEN: list[durable.Progress[int]] = []
FAIL_AT: list[int] = []


@durable.step
async def handle(item: int) -> int:
    if item in FAIL_AT:
        FAIL_AT.remove(item)
        raise RuntimeError(f"item {item} failed")
    return item * 2


@durable.durable_workflow(name="progress.batch")
async def batch(items: list[int], bar: bool) -> int:
    looped = durable.progress(items, desc="batch", bar=bar)
    SEEN.append(looped)
    total = 0
    for item in looped:
        total += await handle(item)
    return total


@pytest.fixture(autouse=True)
def _clear() -> None:
    SEEN.clear()
    FAIL_AT.clear()


async def test_a_resumed_loop_counts_what_it_replayed(runtime: durable.Runtime) -> None:
    FAIL_AT.append(4)
    with pytest.raises(RuntimeError, match="item 4 failed"):
        await batch.run([1, 2, 3, 4, 5], False, workflow_id="b")
    first = SEEN[-1]
    assert (first.ran, first.replayed, first.done, first.total) == (3, 0, 3, 5)  # 4 raised
    assert await batch.run([1, 2, 3, 4, 5], False, workflow_id="b") == 30
    again = SEEN[-1]
    assert (again.replayed, again.ran) == (3, 2)
    assert again.saved_seconds >= 0
    assert repr(again) == "<durable.progress 5 of 5: replayed 3, ran 2>"


async def test_the_bar_says_how_many_were_replayed(
    runtime: durable.Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    FAIL_AT.append(3)
    with pytest.raises(RuntimeError):
        await batch.run([1, 2, 3], True, workflow_id="shown")
    await batch.run([1, 2, 3], True, workflow_id="shown")
    err = capsys.readouterr().err
    assert "batch" in err
    assert "replayed 2 of 3 (saved " in err


def test_outside_a_workflow_every_item_runs(capsys: pytest.CaptureFixture[str]) -> None:
    looped = durable.progress(iter(range(4)), total=4)  # stderr is no terminal: no bar
    assert list(looped) == [0, 1, 2, 3]
    assert (looped.ran, looped.replayed) == (4, 0)
    assert capsys.readouterr().err == ""
