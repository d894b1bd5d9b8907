"""Every snippet of docs/control.md runs as written and prints what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = (Path(__file__).parents[2] / "docs" / "control.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)
EXPECTED = [
    ["4/4", "0", "{'progress': '4/4'}"],
    [
        "['Durable', 'streams', 'keep', 'every', 'token.']",
        "Durable streams keep every token.",
        "Durable streams keep every token.",
    ],
    [
        "reply to 'hi' (1 messages so far)",
        "reply to 'and now?' (2 messages so far)",
        "[1, 2, 3, 4] {'last': 4}",
    ],
    ["reminded about order 17", "WorkflowTimeoutError True", "7.0 days"],
    [
        "built api",
        "built ui",
        "['cancelled', 'cancelled', 'cancelled']",
        "['v2', 'v2/1', 'v2/2']",
        "['api', 'ui']",
    ],
    ["#1: small's answer", "#1: small's answer"],
]


def test_the_page_has_its_snippets() -> None:
    assert len(BLOCKS) == len(EXPECTED)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_snippet_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(BLOCKS[index], f"docs/control.md#{index}", "exec"), {"__name__": "docs_control"})
    assert capsys.readouterr().out.splitlines() == EXPECTED[index]
