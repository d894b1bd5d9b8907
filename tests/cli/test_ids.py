"""Workflow ids on the command line: never wrapped in a listing, named by a unique prefix."""

from __future__ import annotations

import pytest

import durable
from tests.conftest import durable_command


@durable.durable_workflow(name="ids.checkout_with_a_rather_long_name")
def checkout(order: int) -> int:
    return order


@pytest.fixture
def url(durable_sqlite: str) -> str:
    with durable.Runtime(durable_sqlite) as runtime, runtime.activated():
        for order in range(3):
            checkout(order)
        checkout.run(9, workflow_id="order-9")
    return durable_sqlite


def test_list_keeps_every_id_whole_on_one_line_at_80_columns(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with durable.Runtime(url) as runtime:
        ids = [info.workflow_id for info in runtime.store.list_workflows()]
    assert durable_command()(["--url", url, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for workflow_id in ids:
        assert any(line.startswith(workflow_id) for line in lines), (workflow_id, lines)


def test_a_unique_prefix_names_a_workflow(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    command = durable_command()
    assert command(["--url", url, "show", "order"]) == 0
    assert "order-9" in capsys.readouterr().out
    with durable.Runtime(url) as runtime:
        first = runtime.store.list_workflows(name="ids.checkout_with_a_rather_long_name")[0]
    unique = first.workflow_id[: len("ids.checkout_with_a_rather_long_name:") + 6]
    assert command(["--url", url, "history", unique]) == 0
    assert command(["--url", url, "cancel", unique]) == 0
    assert first.workflow_id in capsys.readouterr().out


def test_an_ambiguous_or_unknown_prefix_is_refused_with_the_candidates(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = durable_command()
    assert command(["--url", url, "show", "ids."]) != 0
    err = capsys.readouterr().err
    assert "begins the ids of several workflows" in err
    assert err.count("ids.checkout_with_a_rather_long_name:") == 3
    assert command(["--url", url, "show", "nothing-like-it"]) != 0
    assert "no workflow 'nothing-like-it'" in capsys.readouterr().err
    # A prefix is never taken for a workflow that does not exist yet: ids stay exact there.
    assert command(["--url", url, "fork", "order-9", "snap", "order"]) != 0
