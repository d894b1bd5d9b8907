"""The decorators keep signatures for type checkers (ParamSpec), checked with mypy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="mypy is part of the dev extra")

SNIPPET = """
import durable

@durable.step
async def fetch(url: str, *, retries: int = 1) -> bytes:
    return b""

@durable.step(retries=2)
def parse(data: bytes) -> int:
    return len(data)

@durable.durable_workflow
async def flow(url: str) -> int:
    return parse(await fetch(url))

@durable.durable_workflow(name="typed.sync")
def sync_flow(n: int) -> list[int]:
    return [n]

async def use() -> None:
    reveal_type(await fetch("u"))
    reveal_type(parse(b""))
    reveal_type(await flow("u"))
    reveal_type(await flow.run("u", workflow_id="x"))
    reveal_type(flow.run_sync("u"))
    reveal_type(sync_flow(1))
    reveal_type(sync_flow.run_sync(1))
    reveal_type(flow.id_for("u"))
    await flow(1)  # E: wrong argument type
    await fetch("u", retries="3")  # E: wrong keyword type
"""


def _mypy(tmp_path: Path, snippet: str) -> tuple[str, list[str]]:
    """mypy --strict's report on ``snippet``, and the types it revealed (without builtins.)."""
    source = tmp_path / "snippet.py"
    source.write_text(textwrap.dedent(snippet))
    out, _, _ = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
    )
    revealed = [
        line.split("Revealed type is ")[1].strip('"').replace("builtins.", "")
        for line in out.splitlines()
        if "Revealed" in line
    ]
    return out, revealed


def test_decorated_signatures_are_checked_by_mypy(tmp_path: Path) -> None:
    out, revealed = _mypy(tmp_path, SNIPPET)
    assert revealed == ["bytes", "int", "int", "int", "int", "list[int]", "list[int]", "str"]
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 2, out
    assert 'incompatible type "int"; expected "str"' in errors[0]
    assert 'incompatible type "str"; expected "int"' in errors[1]


OPTIONS = """
import datetime as dt
import durable

@durable.durable_workflow
async def flow(url: str, *, timeout: int = 3) -> int:
    return len(url) + timeout

@durable.durable_workflow(name="typed.sync")
def sync_flow(n: int) -> list[int]:
    return [n]

class Svc:
    @durable.durable_workflow(name="typed.method")
    async def go(self, x: str) -> int:
        return len(x)

    @durable.durable_workflow(name="typed.sync_method")
    def count(self, n: int) -> str:
        return str(n)

async def use() -> None:
    reveal_type(await flow.options(workflow_id="a", timeout=dt.timedelta(seconds=5)).run("u"))
    reveal_type(flow.options(queue="q").run_sync("u", timeout=4))
    reveal_type(await flow.options().enqueue("u"))
    reveal_type(sync_flow.options(workflow_id="s").run(1))
    reveal_type(sync_flow.options().enqueue(1))
    reveal_type(flow.id_for("u"))
    reveal_type(await Svc().go("x"))
    reveal_type(Svc().count(2))
    reveal_type(await Svc().go.options(workflow_id="m").run("x"))
    _ = await flow.options(workflow_id="a").run("u", workflow_idd="x")
    _ = await flow.options().run(1)
    _ = await Svc().go(1)
    _ = Svc().count("2")
    _ = flow.id_for(1)
    _ = flow.options(timout=3)
"""

OPTIONS_REVEALED = [
    "int",
    "int",
    "WorkflowHandle[int]",
    "list[int]",
    "WorkflowHandle[list[int]]",
    "str",
    "int",
    "str",
    "int",
]
OPTIONS_ERRORS = 6  # the six last lines: a typo'd option, wrong argument types, a bound method


def test_options_and_bound_methods_keep_the_signature_for_mypy(tmp_path: Path) -> None:
    out, revealed = _mypy(tmp_path, OPTIONS)
    assert [r.replace("durable._handle.", "") for r in revealed] == OPTIONS_REVEALED, out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == OPTIONS_ERRORS, out
    assert 'Unexpected keyword argument "workflow_idd"' in errors[0]
    assert 'did you mean "timeout"' in errors[-1]


def test_options_and_bound_methods_keep_the_signature_for_pyright(tmp_path: Path) -> None:
    pyright = shutil.which("basedpyright")
    if pyright is None:
        pytest.skip("basedpyright is part of the dev extra")
    source = tmp_path / "options.py"
    source.write_text(textwrap.dedent(OPTIONS))
    ran = subprocess.run(
        [pyright, "--outputjson", str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        check=False,
    )
    report = json.loads(ran.stdout)
    diagnostics = report["generalDiagnostics"]
    revealed = [
        d["message"].rsplit(" is ", 1)[1].strip('"')
        for d in diagnostics
        if d["severity"] == "information" and d["message"].startswith("Type of")
    ]
    assert revealed == OPTIONS_REVEALED, diagnostics
    errors = [d for d in diagnostics if d["severity"] == "error"]
    assert len(errors) == OPTIONS_ERRORS, errors
    assert 'No parameter named "workflow_idd"' in errors[0]["message"]
