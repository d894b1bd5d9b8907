"""Every snippet of docs/workers.md runs as written and prints what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import durable

DOC = (Path(__file__).parents[2] / "docs" / "workers.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)


def test_the_page_has_its_snippets() -> None:
    assert len(BLOCKS) == 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_snippet_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        exec(
            compile(BLOCKS[index], f"docs/workers.md#{index}", "exec"), {"__name__": "docs_workers"}
        )
    finally:
        for queue in durable.Queue.declared():
            queue.undeclare()
    out = capsys.readouterr().out.splitlines()
    expected = [
        ["please approve 120", "waiting", "120: approved"],
        ["suspended until 259200.0 s from now", "[]", "['remind-ana']", "reminded ana"],
        ["enqueued", "3 completed", "sent to cy@x sent to ana@x"],
        ["4 completed", "1 (2, 60.0) 0", "QueueTimeoutError paused"],
        ["enqueued", "report 2026-11 us"],
    ][index]
    assert out == expected
