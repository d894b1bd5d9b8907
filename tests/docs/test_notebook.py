"""examples/notebook.ipynb, executed in a real IPython kernel: the fix-and-re-run story."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs the dev extra (nbclient, ipykernel)")
nbclient = pytest.importorskip("nbclient", reason="needs the dev extra (nbclient, ipykernel)")

NOTEBOOK = Path(__file__).parents[2] / "examples" / "notebook.ipynb"


def outputs_text(cell: object) -> str:
    parts = []
    for output in cell["outputs"]:  # type: ignore[index]
        if "text" in output:
            parts.append(output["text"])
        data = output.get("data", {})
        parts.append(data.get("text/plain", ""))
        parts.append(data.get("text/html", ""))
        if output.get("ename"):
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "".join(parts)


@pytest.mark.slow
def test_notebook_fix_and_rerun_skips_the_expensive_step(tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert "ZeroDivisionError" in outputs_text(code[2])
    second_run = outputs_text(code[4])
    assert "durability: 5.00" in second_run
    assert "expensive ran 1 time(s)" in second_run  # recorded before the failure: not re-run
    sync_run = outputs_text(code[5])
    assert "durability: 5.00" in sync_run
    assert "expensive ran 1 time(s)" in sync_run
    history = outputs_text(code[6])
    assert 'class="durable-history"' in history
    assert "expensive" in history
    assert "ConnectionError: publisher down" in outputs_text(code[8])
    after_change = outputs_text(code[9])
    assert "NOTEBOOKS: 3.67" in after_change  # the new code's values
    assert "expensive ran 3 time(s)" in after_change  # its code changed: it ran again
    assert (tmp_path / ".durable" / "durable.db").is_file()
