"""Records as a person sees them: text in a terminal, HTML with a timeline in a notebook."""

from __future__ import annotations

from pathlib import Path

import pytest

import durable

pytestmark = pytest.mark.usefixtures("runtime")


@durable.step(name="load <rows>", retries=1, backoff=0)
def load(tries: list[int]) -> bytes:
    tries.append(1)
    if len(tries) == 1:
        raise TimeoutError("slow & <flaky>")
    return b"x" * 2048


@durable.durable_workflow(name="display.flow")
def flow() -> int:
    data = load([])
    durable.snapshot("loaded")
    return len(data)


def test_history_prints_as_a_table(runtime: durable.Runtime) -> None:
    flow.run(workflow_id="shown")
    text = str(runtime.store.history("shown"))
    lines = text.splitlines()
    assert lines[0].split() == ["pos", "step", "kind", "status", "duration", "size", "note"]
    assert "retried" in lines[1]
    assert "TimeoutError: slow & <flaky>" in lines[1]
    assert "success" in lines[2]
    assert "2.0 KiB" in lines[2]
    assert "snapshot" in lines[3]


def test_history_and_workflow_render_as_html(runtime: durable.Runtime) -> None:
    flow.run(workflow_id="shown")
    page = runtime.store.history("shown")._repr_html_()
    assert page.count("<tr>") == 4  # header + retried + success + snapshot
    assert "<code>load &lt;rows&gt;</code>" in page  # escaped
    assert "slow &amp; &lt;flaky&gt;" in page
    assert "background:#2e7d32" in page  # a success bar on the timeline
    assert "<script" not in page
    info = runtime.get_workflow("shown")
    assert info is not None
    card = info._repr_html_()
    assert "<code>shown</code>" in card
    assert "success" in card
    assert 'class="durable-history"' in card
    assert str(info).startswith("workflow 'shown' (display.flow): success, attempt 1, took ")


def test_empty_history(runtime: durable.Runtime) -> None:
    assert str(durable.History()) == "(no steps recorded)"
    assert "No steps recorded" in durable.History()._repr_html_()


def test_a_workflow_renders_what_it_holds_once_its_store_is_closed(tmp_path: Path) -> None:
    runtime = durable.Runtime(f"sqlite:///{tmp_path / 'closed.db'}")

    @durable.durable_workflow(name="display.closed")
    def closed() -> int:
        return 1

    with runtime.activated():
        closed.run_sync(workflow_id="c")
        info = runtime.get_workflow("c")
    runtime.close()
    assert info is not None
    html = info._repr_html_()  # no error: the card it holds, and why the steps are missing
    assert "display.closed" in html
    assert "steps not shown" in html
