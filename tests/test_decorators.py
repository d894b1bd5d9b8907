"""The decorators keep what wrapt promises and work on every kind of callable."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import durable

pytestmark = pytest.mark.usefixtures("runtime")


@durable.step
async def fetch(url: str, *, timeout: float = 1.0) -> bytes:
    """Fetch a page."""
    return url.encode()


@durable.step(retries=2, backoff=0)
def parse(data: bytes) -> str:
    """Parse a page."""
    return data.decode()


@durable.durable_workflow
async def digest(url: str) -> str:
    """Digest a page."""
    return parse(await fetch(url))


@durable.durable_workflow(name="decorators.sync_digest")
def sync_digest(text: str) -> str:
    """Digest text."""
    return parse(text.encode())


@pytest.mark.parametrize(
    ("fn", "name", "doc", "is_async", "params"),
    [
        (fetch, "fetch", "Fetch a page.", True, ["url", "timeout"]),
        (parse, "parse", "Parse a page.", False, ["data"]),
        (digest, "digest", "Digest a page.", True, ["url"]),
        (sync_digest, "sync_digest", "Digest text.", False, ["text"]),
    ],
)
def test_metadata_is_preserved(
    fn: Any, name: str, doc: str, is_async: bool, params: list[str]
) -> None:
    assert fn.__name__ == name
    assert fn.__doc__ == doc
    assert fn.__module__ == __name__
    assert inspect.iscoroutinefunction(fn) is is_async
    assert list(inspect.signature(fn).parameters) == params
    assert fn.__wrapped__ is not None


async def test_decorated_module_level_functions_run(runtime: durable.Runtime) -> None:
    assert await digest("a") == "a"
    assert sync_digest("b") == "b"
    info = runtime.get_workflow(digest.id_for("a"))
    assert info is not None
    assert info.name == f"{__name__}.digest"


class Pipeline:
    """Workflows and steps as methods of every kind."""

    def __init__(self, factor: int) -> None:
        self.factor = factor
        self.ran: list[str] = []

    @durable.step
    async def scale(self, x: int) -> int:
        self.ran.append("scale")
        return x * self.factor

    @durable.durable_workflow(name="decorators.Pipeline.run_method")
    async def run_method(self, x: int) -> int:
        return await self.scale(x) + await self.offset(x) + self.twice(x)

    @durable.step
    @classmethod
    async def offset(cls, x: int) -> int:
        return x + 1

    @durable.step
    @staticmethod
    def twice(x: int) -> int:
        return 2 * x

    @durable.durable_workflow(name="decorators.Pipeline.class_wf")
    @classmethod
    async def class_wf(cls, x: int) -> str:
        return f"{cls.__name__}:{await cls.offset(x)}"

    @durable.durable_workflow(name="decorators.Pipeline.static_wf")
    @staticmethod
    def static_wf(x: int) -> int:
        return Pipeline.twice(x)


async def test_methods_classmethods_and_staticmethods(runtime: durable.Runtime) -> None:
    p = Pipeline(10)
    assert await p.run_method(2) == 20 + 3 + 4
    assert await p.run_method(2) == 27
    assert p.ran == ["scale"]
    assert await Pipeline.class_wf(1) == "Pipeline:2"
    assert await p.class_wf(1) == "Pipeline:2"
    assert Pipeline.static_wf(3) == 6
    assert p.static_wf(3) == 6
    assert await p.run_method.run(5, workflow_id="method-explicit") == 50 + 6 + 10
    assert inspect.iscoroutinefunction(Pipeline.run_method)
    assert list(inspect.signature(p.run_method).parameters) == ["x"]
    steps = runtime.list_steps(p.run_method.id_for(2))
    assert [s.name for s in steps] == ["Pipeline.scale", "Pipeline.offset", "Pipeline.twice"]


def test_step_options_are_validated_at_decoration_time() -> None:
    with pytest.raises(
        durable.ConfigurationError, match=r"retries must be a whole number >= 0, not -1"
    ):
        durable.step(retries=-1)
    with pytest.raises(durable.ConfigurationError, match=r"backoff=-0.5 is negative"):
        durable.step(backoff=-0.5)
    with pytest.raises(durable.ConfigurationError, match="retry_on must be an Exception subclass"):
        durable.step(retry_on=(KeyboardInterrupt,))  # type: ignore[arg-type]
    with pytest.raises(durable.ConfigurationError, match="name must be a non-empty str"):
        durable.step(name="  ")(lambda: None)
    with pytest.raises(durable.ConfigurationError, match="on_running must be 'wait' or 'raise'"):
        durable.durable_workflow(on_running="ignore")  # type: ignore[arg-type]


def test_generators_are_refused_with_a_hint() -> None:
    def gen() -> Any:
        yield 1

    with pytest.raises(durable.ConfigurationError, match="is a generator function; a durable step"):
        durable.step(gen)
    with pytest.raises(durable.ConfigurationError, match="decorates a function, not int"):
        durable.durable_workflow(42)  # type: ignore[call-overload]


def test_retry_policy_is_a_small_frozen_value() -> None:
    policy = durable.RetryPolicy(retries=3, backoff=2.0)
    assert [policy.delay(n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert durable.RetryPolicy(retries=9, backoff=1, max_backoff=5).delay(9) == 5.0
    assert durable.RetryPolicy(retry_on=TimeoutError).retry_on == (TimeoutError,)
    with pytest.raises(AttributeError):
        policy.retries = 4  # type: ignore[misc]


def test_redefining_a_workflow_replaces_its_registration_quietly(
    runtime: durable.Runtime, recwarn: pytest.WarningsRecorder
) -> None:
    from durable import _registry

    def define(version: int) -> Any:
        @durable.durable_workflow(name="decorators.cell")
        def cell() -> int:  # as when a notebook cell is run again
            return version

        return cell

    first, second = define(1), define(2)
    assert _registry.lookup("decorators.cell") is second
    assert second.run(workflow_id="cell-v2") == 2
    assert first.run(workflow_id="cell-v1") == 1
    assert len(recwarn) == 0
