"""durable's async API runs on asyncio; under trio it says so at the first call."""

from __future__ import annotations

import anyio
import pytest

import durable

CALLS: list[str] = []


@durable.step(name="loops.greet")
async def greet(name: str) -> str:
    CALLS.append(name)
    return f"hello {name}"


@durable.durable_workflow(name="loops.hello")
async def hello(name: str) -> str:
    return await greet(name)


def test_a_workflow_awaited_under_trio_gets_a_clear_error(runtime: durable.Runtime) -> None:
    CALLS.clear()

    async def main() -> None:
        with pytest.raises(durable.ConfigurationError, match="asyncio") as caught:
            await hello("trio")
        assert "trio" in str(caught.value) and "run_sync" in str(caught.value)  # noqa: PT018
        with pytest.raises(durable.ConfigurationError, match="asyncio"):
            await runtime.store.alist_workflows()
        with pytest.raises(durable.ConfigurationError, match="asyncio"):
            await runtime.recover()
        with pytest.raises(durable.ConfigurationError, match="asyncio"):
            await durable.Worker(runtime=runtime).run(until_idle=True)

    anyio.run(main, backend="trio")
    # Nothing ran and nothing was recorded before the refusal.
    assert CALLS == []
    assert runtime.store.list_workflows() == []


def test_the_sync_form_works_from_trio_in_a_thread(runtime: durable.Runtime) -> None:
    async def main() -> str:
        return await anyio.to_thread.run_sync(lambda: hello.run_sync("thread"))

    assert anyio.run(main, backend="trio") == "hello thread"


def test_anyio_on_asyncio_runs_workflows(runtime: durable.Runtime) -> None:
    async def main() -> str:
        return await hello("asyncio")

    assert anyio.run(main, backend="asyncio") == "hello asyncio"
