"""The README's code runs as written, and its set-up commands are the ones CI uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import durable
import durable.testing

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


@pytest.mark.parametrize("block", python_blocks())
def test_readme_python_blocks_run(
    block: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with durable.Runtime("sqlite:///:memory:") as runtime:
        namespace: dict[str, object] = {"__name__": "readme", "durable": durable}
        exec(compile(block, "README.md", "exec"), namespace)
        if "job-42" in block:
            assert runtime.get_workflow("job-42") is not None
        if "durable_sweep" in block:  # a test function: run it as pytest would
            namespace["checkout"] = namespace.get("checkout") or _checkout()
            test = namespace["test_checkout_survives_any_crash"]
            test(lambda wf, *args: durable.testing.crash_sweep(wf, *args).assert_ok())  # type: ignore[operator]


def _checkout() -> object:
    @durable.durable_workflow(name="readme.checkout")
    async def checkout(order_id: int) -> int:
        return order_id

    return checkout


def test_first_screen_gives_the_two_set_up_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:15])
    # The demo needs the library alone (no contributor toolchain).
    assert "pip install -e . && python examples/quickstart.py" in first_screen
    assert 'pip install -e ".[dev]" && pytest' in first_screen
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[dev]"' in ci
    assert "\npytest || status=$?" in ci
