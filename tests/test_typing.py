"""The decorators keep signatures for type checkers (ParamSpec), checked with mypy."""

from __future__ import annotations

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


def test_decorated_signatures_are_checked_by_mypy(tmp_path: Path) -> None:
    source = tmp_path / "snippet.py"
    source.write_text(textwrap.dedent(SNIPPET))
    out, _, _ = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
    )
    revealed = [
        line.split("Revealed type is ")[1].replace("builtins.", "").strip('"')
        for line in out.splitlines()
        if "Revealed" in line
    ]
    assert revealed == ["bytes", "int", "int", "int", "int", "list[int]", "list[int]", "str"]
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 2, out
    assert 'incompatible type "int"; expected "str"' in errors[0]
    assert 'incompatible type "str"; expected "int"' in errors[1]
