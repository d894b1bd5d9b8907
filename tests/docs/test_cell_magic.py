"""``%%durable`` in a real IPython kernel: a cell restored after a kernel restart, run
again when its code or an input changes, and re-run on demand; on every backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import durable

nbformat = pytest.importorskip("nbformat", reason="needs the dev extra (nbclient, ipykernel)")
nbclient = pytest.importorskip("nbclient", reason="needs the dev extra (nbclient, ipykernel)")


def execute(cells: list[str], folder: Path, url: str) -> list[str]:
    """Run ``cells`` in a fresh kernel (a restart: nothing in memory); each cell's text output."""
    notebook = nbformat.v4.new_notebook()
    setup = f"import durable\ndurable.configure(url={url!r})\n%load_ext durable"
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in [setup, *cells]]
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return [_text(cell) for cell in notebook.cells[1:]]


def _text(cell: Any) -> str:
    parts = []
    for output in cell["outputs"]:
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
        if output.get("ename"):
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "".join(parts)


CELL = """%%durable totals
import pathlib
pathlib.Path("runs.txt").open("a").write("ran\\n")
total = sum(range(n))
squares = [i * i for i in range(n)]
print("computed", total)"""


def test_a_cell_is_restored_after_a_restart_and_runs_again_when_it_changes(
    tmp_path: Path, db_url: str
) -> None:
    if "memory" in db_url:
        pytest.skip("a store in memory does not outlive the kernel")
    runs = tmp_path / "runs.txt"
    first = execute(["n = 10", CELL, "print(total, len(squares))"], tmp_path, db_url)
    assert first[1] == "computed 45\n"
    assert first[2] == "45 10\n"
    assert runs.read_text() == "ran\n"
    # A new kernel: nothing in memory. Same code, same input: restored, not run.
    shown = "print(total, len(squares), pathlib.Path.__name__)"
    second = execute(["n = 10", CELL, shown], tmp_path, db_url)
    assert second[1].startswith("durable: restored pathlib, total, squares (recorded ")
    assert "its output is not replayed" in second[1]
    assert second[2] == "45 10 Path\n"  # the module restored (its repr differs by Python)
    assert runs.read_text() == "ran\n"
    # A changed input runs it again; so does --rerun.
    third = execute(["n = 11", CELL, "print(total)"], tmp_path, db_url)
    assert (third[1], third[2]) == ("computed 55\n", "55\n")
    rerun = CELL.replace("%%durable totals", "%%durable totals --rerun")
    execute(["n = 11", rerun], tmp_path, db_url)
    assert runs.read_text() == "ran\n" * 3
    with durable.Store.open(db_url) as store:
        takes = store.list_workflows(id_prefix="cell:totals:")
    assert len(takes) == 3
    assert {t.status for t in takes} == {"success"}
    assert {t.name for t in takes} == {"durable.cell"}


def test_a_failed_cell_records_nothing_and_an_unpicklable_value_is_named(
    tmp_path: Path, db_url: str
) -> None:
    if "memory" in db_url:
        pytest.skip("a store in memory does not outlive the kernel")
    failing = '%%durable\nvalue = 1\nraise ValueError("not yet")'
    lock = "%%durable\nimport threading\nguard = threading.Lock()\nok = 2"
    nb = nbformat.v4.new_notebook()
    setup = f"import durable\ndurable.configure(url={db_url!r})\n%load_ext durable"
    nb.cells = [nbformat.v4.new_code_cell(s) for s in (setup, failing, lock, "print(ok)")]
    client = nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    assert "ValueError: not yet" in _text(nb.cells[1])
    assert "'guard' (a lock) does not pickle" in _text(nb.cells[2])
    assert _text(nb.cells[3]) == "2\n"  # the cell ran; only its record failed
    with durable.Store.open(db_url) as store:
        assert {t.status for t in store.list_workflows(name="durable.cell")} == {"error"}
