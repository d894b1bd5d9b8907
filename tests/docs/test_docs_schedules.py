"""Every snippet of docs/schedules.md runs as written and prints what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import durable

DOC = (Path(__file__).parents[2] / "docs" / "schedules.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```\n\n[^`]*?```\n(.*?)```", DOC, flags=re.DOTALL)


def test_the_page_has_its_snippets() -> None:
    assert len(SNIPPETS) == 3
    assert len(re.findall(r"```python\n", DOC)) == len(SNIPPETS)


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_snippet_prints_what_the_page_says(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, printed = SNIPPETS[index]
    namespace = {"__name__": f"docs_schedules_{index}"}
    declared = _declared_before()
    try:
        exec(compile(code, f"docs/schedules.md#{index}", "exec"), namespace)
    finally:
        for entry in _declared_before() - declared:  # the page's own, withdrawn
            entry.undeclare()
    assert capsys.readouterr().out == printed


def _declared_before() -> set[durable.Schedule]:
    return set(durable.Schedule.declared())
