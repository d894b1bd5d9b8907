"""``durable.Client`` (issue 16, part 3): work handed to workers by name, from a process
without the workflows' code; and ``durable enqueue``. On every backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import durable
from tests.conftest import durable_command

ROOT = Path(__file__).parents[2]


@durable.step
async def total(items: list[int], rate: float) -> float:
    return sum(items) * rate


@durable.durable_workflow(name="client.invoice")
async def invoice(customer: str, items: list[int], rate: float = 1.0) -> str:
    amount = await total(items, rate)
    await durable.publish("amount", amount)
    approved = await durable.wait_for_event("approved", suspend=True)
    return f"{customer}: {amount:g} {'sent' if approved else 'dropped'}"


@durable.durable_workflow(name="client.double")
def double(n: int) -> int:
    return 2 * n


def shared_url(runtime: durable.Runtime) -> str:
    if "memory" in runtime.url:
        pytest.skip("a store in memory is not shared with another process or runtime")
    return runtime.url


def drain(runtime: durable.Runtime) -> durable.WorkerReport:
    return durable.Worker(runtime=runtime).run_sync(until_idle=True, handle_signals=False)


def client_process(url: str, code: str) -> str:
    """Run ``code`` with ``client`` open on ``url`` in a process that imports no workflow."""
    script = textwrap.dedent(
        """
        import sys, durable
        with durable.Client(sys.argv[1]) as client:
        """
    ) + textwrap.indent(textwrap.dedent(code), "    ")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script, url], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "tests.engine" not in done.stderr
    return done.stdout.strip()


def test_a_process_without_the_code_enqueues_signals_reads_and_waits(
    runtime: durable.Runtime,
) -> None:
    db_url = shared_url(runtime)
    workflow_id = client_process(
        db_url,
        """
        import sys
        assert "tests.engine.test_client" not in sys.modules
        handle = client.enqueue("client.invoice", "acme", [3, 4], rate=2.0, queue="billing")
        print(handle.workflow_id)
        """,
    )
    assert workflow_id.startswith("client.invoice:")
    worker = durable.Worker(runtime=runtime, queues=["billing"])
    assert worker.run_sync(until_idle=True, handle_signals=False).suspended == [workflow_id]
    out = client_process(
        db_url,
        f"""
        print(client.get_published({workflow_id!r}, "amount", timeout=0))
        print(client.send_event({workflow_id!r}, "approved", True, idempotency_key="r-1"))
        print(client.handle({workflow_id!r}).status().value)
        """,
    )
    assert out.splitlines() == ["14.0", "True", "waiting"]
    worker = durable.Worker(runtime=runtime, queues=["billing"])
    assert worker.run_sync(until_idle=True, handle_signals=False).resumed == [workflow_id]
    out = client_process(db_url, f"print(client.result({workflow_id!r}, timeout=30))")
    assert out == "acme: 14 sent"


async def test_the_async_forms_and_a_call_made_in_code_under_the_same_id(
    runtime: durable.Runtime,
) -> None:
    client = durable.Client(runtime=runtime)
    handle = await client.aenqueue("client.double", 21, workflow_id="dbl-21")
    # The call by name and the call in code are one call: same name, same arguments.
    assert double.enqueue(21, workflow_id="dbl-21").workflow_id == "dbl-21"
    with pytest.raises(durable.WorkflowConflictError, match="dbl-21"):
        double.enqueue(22, workflow_id="dbl-21")
    with pytest.raises(durable.WorkflowConflictError, match="dbl-21"):
        await client.aenqueue("client.double", 22, workflow_id="dbl-21")
    await durable.Worker(runtime=runtime).run(until_idle=True)
    assert await client.aresult(handle.workflow_id, timeout=5) == 42
    assert double.run_sync(21, workflow_id="dbl-21") == 42  # the recorded result
    # And the other way round: enqueued in code, named by a client.
    double.enqueue(5, workflow_id="dbl-5")
    again = await client.aenqueue("client.double", 5, workflow_id="dbl-5")
    assert again.workflow_id == "dbl-5"
    # By keyword from the client, by position in code: bound to the signature, one call.
    await client.aenqueue("client.double", n=6, workflow_id="dbl-6")
    assert double.enqueue(6, workflow_id="dbl-6").workflow_id == "dbl-6"
    # Without ids, a client's derived id never collides with code's.
    by_name = await client.aenqueue("client.double", n=7)
    assert by_name.workflow_id != double.enqueue(n=7).workflow_id
    # An option's name, given apart, leaves the workflow's keywords alone.
    kept = client.options(workflow_id="dbl-kw").enqueue("client.double", n=9)
    assert kept.workflow_id == "dbl-kw"
    client.close()  # the runtime given stays open
    assert runtime.get_workflow("dbl-5") is not None


def test_a_worker_without_the_workflow_leaves_it_and_says_so(
    runtime: durable.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    client = durable.Client(runtime=runtime)
    unknown = client.enqueue("client.nowhere", 1)
    report = drain(runtime)
    assert report.unknown == {unknown.workflow_id: "client.nowhere"}
    assert "no imported module registers workflow 'client.nowhere'" in caplog.text
    info = unknown.info()  # back on its queue, for a worker that has the code
    assert info.status == "enqueued"
    assert info.owner_host is None
    assert client.cancel(unknown.workflow_id) is True
    assert unknown.status() == "cancelled"


def test_arguments_that_do_not_fit_fail_the_workflow_with_what_was_wrong(
    runtime: durable.Runtime,
) -> None:
    client = durable.Client(runtime=runtime)
    handle = client.enqueue("client.double", 1, 2, 3)
    report = drain(runtime)
    assert report.failed == {
        handle.workflow_id: "TypeError: double() takes 1 positional argument but 3 were given"
    }
    with pytest.raises(TypeError, match="takes 1 positional argument"):
        handle.result_sync(timeout=5)


def test_cancel_and_resume_by_id(runtime: durable.Runtime) -> None:
    client = durable.Client(runtime=runtime)
    handle = client.enqueue("client.double", 4, delay=3600)
    assert client.cancel(handle.workflow_id) is True
    with pytest.raises(durable.WorkflowCancelledError):
        client.result(handle.workflow_id, timeout=5)
    assert client.resume(handle.workflow_id) is True
    info = client.get_workflow(handle.workflow_id)
    assert info is not None
    assert info.status != "cancelled"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"workflow": double}, "registered name"),
        ({"workflow": ""}, "workflow name"),
        ({"workflow": "client.double", "queue": ""}, "queue name"),
        ({"workflow": "client.double", "priority": "high"}, "priority"),
    ],
)
def test_bad_calls_are_refused_before_anything_is_recorded(
    runtime: durable.Runtime, given: dict[str, object], message: str
) -> None:
    client = durable.Client(runtime=runtime)
    with pytest.raises(durable.ConfigurationError, match=message):
        client.enqueue(**given)  # type: ignore[arg-type]
    assert runtime.store.list_workflows() == []


def test_durable_enqueue_on_the_command_line(
    runtime: durable.Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    command = durable_command()
    args = [
        "--url",
        shared_url(runtime),
        "enqueue",
        "client.double",
        "--args",
        "[8]",
        "--queue",
        "q",
    ]
    assert command([*args, "--workflow-id", "cli-8", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "workflow_id": "cli-8",
        "queue": "q",
        "status": "enqueued",
    }
    assert command([*args, "--kwargs", "[1]"]) != 0
    assert "--kwargs" in capsys.readouterr().err
    # A workflow's keyword named like an option is the workflow's.
    kw = ["--url", shared_url(runtime), "enqueue", "client.double", "--queue", "q"]
    assert command([*kw, "--kwargs", '{"n": 3}', "--workflow-id", "cli-3"]) == 0
    report = durable.Worker(runtime=runtime, queues=["q"]).run_sync(
        until_idle=True, handle_signals=False
    )
    assert sorted(report.completed) == ["cli-3", "cli-8"]
    assert runtime.store.result("cli-8") == 16
