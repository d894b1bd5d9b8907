"""examples/notebook_magic.ipynb in a real kernel, run twice with a restart between: the
%%durable cell is restored without running (a counter says so), the workflow replays its
steps, and each run's live display ends as the workflow's card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs the dev extra (nbclient, ipykernel)")
nbclient = pytest.importorskip("nbclient", reason="needs the dev extra (nbclient, ipykernel)")

NOTEBOOK = Path(__file__).parents[2] / "examples" / "notebook_magic.ipynb"


def execute(folder: Path) -> list[Any]:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def text(cell: Any) -> str:
    return "".join(output.get("text", "") for output in cell["outputs"])


def html(cell: Any) -> str:
    return "".join(output.get("data", {}).get("text/html", "") for output in cell["outputs"])


def test_restored_after_a_restart_and_replayed(tmp_path: Path) -> None:
    first = execute(tmp_path)
    assert text(first[2]) == "embedded 200\n"
    assert text(first[3]) == "200 rows; cell ran 1 time(s)\n"
    assert (
        text(first[5])
        == "failed: the scoring API hung up (run it again: the scored rows are replayed)\n"
    )
    assert "notebook.scores" in html(first[5])  # the live display ended as the card
    assert "error" in html(first[5])
    second = execute(tmp_path)  # a new kernel: nothing in memory
    assert text(second[2]).startswith("durable: restored math, pathlib, embeddings (recorded ")
    assert text(second[3]) == "200 rows; cell ran 1 time(s)\n"
    assert text(second[5]).startswith("replayed 15, ran 5\n")
    assert "success" in html(second[5])
