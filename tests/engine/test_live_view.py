"""The live view of a running workflow: a display updated in place in a real kernel,
and one status line on a terminal's stderr (opt-in); nothing elsewhere."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]

WORKFLOW = """
import durable
flaky = [True]

@durable.step
def load() -> int:
    return 20

@durable.step
def train(n: int) -> int:
    if flaky[0]:
        flaky[0] = False
        raise RuntimeError("GPU fell over")
    return n * 2

@durable.durable_workflow(name="live.pipeline")
def pipeline() -> int:
    return train(load())
"""


def test_a_notebook_shows_the_steps_live_then_the_workflow_card(
    tmp_path: Path, db_url: str
) -> None:
    nbformat = pytest.importorskip("nbformat", reason="needs the dev extra")
    nbclient = pytest.importorskip("nbclient", reason="needs the dev extra")
    if "memory" in db_url:
        pytest.skip("the kernel is another process: a store in memory is not shared")
    url = db_url
    notebook = nbformat.v4.new_notebook()
    sources = [
        f"import durable\ndurable.configure(url={url!r})\n{WORKFLOW}",
        'try:\n    pipeline.run_sync(workflow_id="p")\nexcept RuntimeError as exc:\n    print(exc)',
        'print(pipeline.run_sync(workflow_id="p"))',
    ]
    notebook.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    failed, succeeded = notebook.cells[1]["outputs"], notebook.cells[2]["outputs"]
    # Each display ended as the workflow's card (what WorkflowInfo renders).
    assert "live.pipeline" in _html(failed)
    assert "error" in _html(failed)
    assert "GPU fell over" in _text(failed)
    assert "running p" not in _html(failed)  # the live table was replaced
    card = _html(succeeded)
    assert "live.pipeline" in card
    assert "success" in card
    assert _text(succeeded).strip() == "40"


def _html(outputs: list[Any]) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in outputs)


def _text(outputs: list[Any]) -> str:
    return "".join(o.get("text", "") for o in outputs)


def run_on_a_terminal(tmp_path: Path, env: dict[str, str], workflow: str = WORKFLOW) -> str:
    """Run the workflow twice in a process whose stderr is a terminal; what it drew."""
    script = workflow + textwrap.dedent(
        f"""
        durable.configure(url={f"sqlite:///{tmp_path / 't.db'}"!r})
        try:
            pipeline.run_sync(workflow_id="t")
        except RuntimeError:
            pass
        print(pipeline.run_sync(workflow_id="t"))
        """
    )
    leader, follower = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if k != "CI"} | env
    environment["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", script],
        stderr=follower,
        stdout=subprocess.PIPE,
        env=environment,
        timeout=120,
        check=True,
    )
    os.close(follower)
    drawn = b""
    try:
        while chunk := os.read(leader, 65536):
            drawn += chunk
    except OSError:  # the terminal closed
        pass
    os.close(leader)
    assert done.stdout.strip() == b"40"
    return drawn.decode()


def test_a_terminal_shows_one_status_line_when_asked(tmp_path: Path) -> None:
    drawn = run_on_a_terminal(tmp_path, {"DURABLE_PROGRESS": "1"})
    assert "\r\x1b[Kdurable t #2 " in drawn
    assert "failed after" in drawn
    assert "GPU fell over" in drawn
    assert "replayed (saved" in drawn
    assert "[1 replayed" in drawn
    assert run_on_a_terminal(tmp_path / "..", {}) == ""  # not asked: nothing drawn


def test_a_running_steps_elapsed_time_counts_up_while_it_runs(tmp_path: Path) -> None:
    # A sync step blocks the event loop for 2.5 s: the line is redrawn from a thread
    # each second, so its elapsed time reaches at least 1 s before the step ends.
    slow = WORKFLOW.replace("return 20", "import time; time.sleep(2.5); return 20")
    drawn = run_on_a_terminal(tmp_path, {"DURABLE_PROGRESS": "1"}, slow)
    seen = [float(s) for s in re.findall(r"#1 load: running \((\d+\.\d) s\)", drawn)]
    assert seen[0] < 1.0  # drawn when it started
    assert max(seen) >= 1.0  # and again while it ran
    assert "#1 load: done in" in drawn


def test_a_notebooks_view_counts_a_running_steps_time_up(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat", reason="needs the dev extra")
    nbclient = pytest.importorskip("nbclient", reason="needs the dev extra")
    updates: list[str] = []

    class Recording(nbclient.NotebookClient):  # type: ignore[misc]
        def process_message(self, msg: dict[str, Any], cell: Any, index: int) -> Any:
            if msg["msg_type"] == "update_display_data":
                updates.append(msg["content"]["data"].get("text/html", ""))
            return super().process_message(msg, cell, index)

    slow = WORKFLOW.replace("return 20", "import time; time.sleep(2.5); return 20")
    url = f"sqlite:///{tmp_path / 'n.db'}"
    notebook = nbformat.v4.new_notebook()
    sources = [
        f"import durable\ndurable.configure(url={url!r})\n{slow}\nflaky[0] = False",
        'print(pipeline.run_sync(workflow_id="n"))',
    ]
    notebook.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    Recording(notebook, timeout=120, kernel_name="python3").execute()
    seen = [
        float(s) for s in re.findall(r"<td>load</td><td>running \((\d+\.\d) s\)", "".join(updates))
    ]
    assert seen
    assert max(seen) >= 1.0  # redrawn while the sync step held the loop
    assert "live.pipeline" in _html(notebook.cells[1]["outputs"])  # then the card
