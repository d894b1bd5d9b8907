"""docs/notebooks.md: its cells run in a real IPython kernel, twice (a restart between),
and print what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs the dev extra (nbclient, ipykernel)")
nbclient = pytest.importorskip("nbclient", reason="needs the dev extra (nbclient, ipykernel)")

DOC = (Path(__file__).parents[2] / "docs" / "notebooks.md").read_text()
CELLS = re.findall(r"```ipython\n(.*?)```", DOC, flags=re.DOTALL)
SAID = re.findall(r"```text\n(.*?)```", DOC, flags=re.DOTALL)
PYTHON = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)


def run(folder: Path) -> list[str]:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    return ["".join(o.get("text", "") for o in cell["outputs"]) for cell in notebook.cells]


def test_the_page_runs_and_restores_after_a_restart(tmp_path: Path) -> None:
    assert len(CELLS) == 4
    first = run(tmp_path)
    assert first[2] == "computed 1000\n"
    assert first[3] == "1000 31.61\n"
    second = run(tmp_path)  # a new kernel
    restored = second[2].strip()
    shape = re.sub(r"recorded [^,]+, it ran [^)]+\)", "recorded <when>, it ran <time>)", restored)
    said = re.sub(r"recorded [^,]+, it ran [^)]+\)", "recorded <when>, it ran <time>)", SAID[0])
    assert shape == said.strip()
    assert second[3] == "1000 31.61\n"


def test_the_progress_snippet_prints_what_was_replayed(capsys: pytest.CaptureFixture[str]) -> None:
    (snippet,) = PYTHON
    exec(compile(snippet, "docs/notebooks.md#progress", "exec"), {"__name__": "docs_notebooks"})
    assert capsys.readouterr().out.splitlines() == [
        "failed: the API hung up",
        "<durable.progress 5 of 5: replayed 3, ran 2>",
    ]
