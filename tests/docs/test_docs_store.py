"""Every snippet of docs/store.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = (Path(__file__).parents[2] / "docs" / "store.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)


def test_the_page_has_its_snippets() -> None:
    assert len(BLOCKS) == 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_snippet_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(BLOCKS[index], f"docs/store.md#{index}", "exec"), {"__name__": "docs_store"})
    out = capsys.readouterr().out
    expected = [
        ["seat-for-hamlet: charged 40", "failed: card declined", "released seat-for-lear"],
        ["paid 12", "[('quoted', 2, ('quote',))]", "order-1@quoted"],
        [
            "job-1 docs_store.job success 1 42",
            "retried ConnectionError: try again",
            "{'success': 1}",
        ],
        [],
    ][index]
    for line in expected:
        assert line in out, out
