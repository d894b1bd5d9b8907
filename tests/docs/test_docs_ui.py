"""docs/ui.md: its example runs as written, and its screenshots are there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOC = (ROOT / "docs" / "ui.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)


def test_the_page_has_its_example_and_screenshots() -> None:
    assert len(BLOCKS) == 1
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", DOC):
        assert (ROOT / "docs" / image).is_file(), image


def test_the_example_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("starlette", reason='durable ui needs its extra: "durable-sdk[ui]"')
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[0], "docs/ui.md", "exec"), {"__name__": "docs_ui"})
    assert capsys.readouterr().out.splitlines() == ["200 True", "200"]
