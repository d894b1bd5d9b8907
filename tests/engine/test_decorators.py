"""The decorators keep what wrapt promises and work on every kind of callable."""

from __future__ import annotations

import datetime as dt
import gc
import inspect
import linecache
import sys
import threading
import warnings
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


class Shelf:
    """``@classmethod`` above the decorator: Python 3.13 stopped binding what it wraps."""

    @classmethod
    @durable.durable_workflow(name="decorators.Shelf.count")
    def count(cls, n: int) -> str:
        return f"{cls.__name__}:{n}"


class Crate:
    @classmethod
    @durable.durable_workflow(name="decorators.Crate.count")
    def count(cls, n: int) -> str:
        return f"{cls.__name__}:{n}"


class Box(Crate):
    pass


def test_a_classmethod_above_the_decorator_keeps_its_class_on_every_python(
    runtime: durable.Runtime,
) -> None:
    assert Shelf.count(1) == "Shelf:1"
    assert Shelf.count.run(2, workflow_id="shelf-2") == "Shelf:2"
    assert Shelf.count.run_sync(3) == "Shelf:3"
    assert Shelf.count.options(workflow_id="shelf-4").run(4) == "Shelf:4"
    assert runtime.store.result("shelf-2") == "Shelf:2"
    assert runtime.store.result(Shelf.count.id_for(3)) == "Shelf:3"
    handle = Shelf.count.enqueue_sync(5, workflow_id="shelf-5")
    durable.Worker(runtime=runtime).run_sync(until_idle=True, handle_signals=False)
    assert handle.result_sync(timeout=30) == "Shelf:5"


def test_a_classmethod_above_the_decorator_with_subclasses_is_refused_where_it_is_ambiguous(
    runtime: durable.Runtime,
) -> None:
    assert Box.count(1) == "Box:1"
    if sys.version_info < (3, 13):
        assert Box.count.run(2) == "Box:2"  # the classmethod binds the wrapper itself
        return
    with pytest.raises(
        durable.ConfigurationError,
        match=r"Crate\.count: @classmethod is above @durable\.durable_workflow.*"
        r"put @durable\.durable_workflow above @classmethod",
    ):
        Box.count.run(2)
    assert len(runtime.store.list_workflows()) == 1  # Box.count(1) only


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


def test_generator_workflows_are_refused_with_a_hint() -> None:
    def gen() -> Any:
        yield 1

    with pytest.raises(
        durable.ConfigurationError, match="is a generator function; a durable workflow"
    ):
        durable.durable_workflow(gen)
    assert durable.step(gen) is not None  # a generator step streams (tests/engine/test_streams.py)
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
    from durable.testing import registered

    def define(version: int) -> Any:
        @durable.durable_workflow(name="decorators.cell")
        def cell() -> int:  # as when a notebook cell is run again
            return version

        return cell

    first, second = define(1), define(2)
    assert registered("decorators.cell") is second
    assert second.run(workflow_id="cell-v2") == 2
    assert first.run(workflow_id="cell-v1") == 1
    assert len(recwarn) == 0


# Calling mistakes (issue 14 item 18) -------------------------------------


def _never_awaited(make: Any) -> list[str]:
    """The "never awaited" warnings that dropping the coroutine ``make()`` gives."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        make()
        gc.collect()
    return [str(w.message) for w in seen if "never awaited" in str(w.message)]


@durable.step
async def forgotten_step(x: int) -> int:
    return x


@durable.durable_workflow(name="decorators.forgotten")
async def forgotten_workflow(x: int) -> int:
    return x


async def test_a_forgotten_await_names_the_users_workflow_and_step() -> None:
    # Was: "coroutine 'Runtime._run_workflow' was never awaited".
    assert _never_awaited(lambda: forgotten_workflow(1)) == [
        "coroutine 'forgotten_workflow' was never awaited"
    ]
    assert _never_awaited(lambda: forgotten_workflow.enqueue(1)) == [
        "coroutine 'forgotten_workflow.enqueue' was never awaited"
    ]
    names: list[str] = []

    @durable.durable_workflow(name="decorators.forgets_a_step")
    async def forgets(x: int) -> int:
        pending = forgotten_step(x)  # no await
        names.append(pending.__qualname__)
        pending.close()
        return x

    assert await forgets(2) == 2
    assert names == ["forgotten_step"]


async def test_a_forgotten_await_on_a_durable_call_names_it() -> None:
    # Was: "coroutine 'Runtime._sleep' was never awaited" (and alike).
    names: list[str] = []

    @durable.durable_workflow(name="decorators.forgets_durable_calls")
    async def forgets() -> int:
        for pending in (
            durable.sleep(0),
            durable.sleep_until(dt.datetime.now(dt.timezone.utc)),
            durable.wait_for_event("decision", timeout=0),
            durable.snapshot("here"),
            durable.send_event("decorators.elsewhere", "decision", 1),
        ):
            names.append(pending.__qualname__)  # type: ignore[attr-defined]
            pending.close()  # type: ignore[attr-defined]
        return 1

    assert await forgets() == 1
    assert names == [
        "durable.sleep",
        "durable.sleep_until",
        "durable.wait_for_event",
        "durable.snapshot",
        "durable.send_event",
    ]
    pending = durable.sleep(0)  # outside a workflow: a plain sleep
    assert pending.__qualname__ == "durable.sleep"  # type: ignore[attr-defined]
    pending.close()  # type: ignore[attr-defined]


def _edited(x: int) -> int:
    return x + 1000


async def _aedited(x: int) -> int:
    return x + 1000


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_code_changed_warning_points_at_the_users_line(kind: str) -> None:
    crash = {"armed": True}

    def body(x: int) -> int:
        return x + 1

    def tail_body(x: int) -> int:
        if crash["armed"]:
            raise KeyboardInterrupt  # a crash once the first step is recorded
        return x

    if kind == "sync":
        first, tail = durable.step(name="cc.first")(body), durable.step(name="cc.tail")(tail_body)

        @durable.durable_workflow(name="decorators.cc.sync")
        def wf(x: int) -> int:
            return tail(first(x))  # the warning's line

        call: Any = wf
    else:

        async def abody(x: int) -> int:
            return x + 1

        async def atail(x: int) -> int:
            return tail_body(x)

        first, tail = durable.step(name="cc.first")(abody), durable.step(name="cc.tail")(atail)

        @durable.durable_workflow(name="decorators.cc.async")
        async def awf(x: int) -> int:
            return await tail(await first(x))  # the warning's line

        call = awf

    async def run() -> int:
        outcome = call(1)
        return await outcome if inspect.isawaitable(outcome) else outcome  # type: ignore[no-any-return]

    with pytest.raises(KeyboardInterrupt):
        await run()
    crash["armed"] = False
    # Other code for the first step, as an edit between two runs gives.
    first.__wrapped__.__code__ = (_edited if kind == "sync" else _aedited).__code__
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert await run() == 2  # the recorded result of the first step
    [warning] = [w for w in seen if issubclass(w.category, durable.CodeChangedWarning)]
    assert warning.filename == __file__  # was durable/_runtime.py
    assert "the warning's line" in linecache.getline(warning.filename, warning.lineno)


async def test_awaiting_a_sync_workflow_or_step_is_refused_before_it_runs(
    runtime: durable.Runtime,
) -> None:
    ran: list[str] = []

    @durable.durable_workflow(name="decorators.sync_wf")
    def sync_wf(x: int) -> int:
        ran.append("workflow")
        return x

    @durable.step(name="decorators.sync_step")
    def sync_step(x: int) -> int:
        ran.append("step")
        return x

    @durable.durable_workflow(name="decorators.awaits_sync_step")
    async def awaits_sync_step(x: int) -> int:
        with pytest.raises(durable.ConfigurationError, match=r"step .*sync_step.* plain `def`"):
            await sync_step(x)  # type: ignore[misc]
        return sync_step(x) + 1  # called right, it runs

    # Was: it ran, then "TypeError: object int can't be used in 'await' expression".
    with pytest.raises(durable.ConfigurationError, match="Call it without `await`"):
        await sync_wf(1)  # type: ignore[misc]
    with pytest.raises(durable.ConfigurationError, match="Nothing was run"):
        await sync_wf.run(1, workflow_id="awaited")  # type: ignore[misc]
    assert ran == []
    assert runtime.get_workflow(sync_wf.id_for(1)) is None  # nothing recorded
    assert runtime.get_workflow("awaited") is None
    assert await awaits_sync_step(5) == 6
    assert ran == ["step"]
    assert sync_wf(1) == 1  # a plain call from async code still works


@pytest.mark.parametrize(
    "decorator",
    [durable.step, durable.step(retries=1), durable.durable_workflow, durable.durable_workflow()],
)
def test_decorating_a_class_is_refused(decorator: Any) -> None:
    with pytest.raises(durable.ConfigurationError, match=r"class \S*Pipeline; decorate its"):

        @decorator
        class Pipeline:
            pass


@pytest.mark.parametrize("kind", ["sync", "async", "enqueue", "method"])
async def test_an_unpicklable_argument_is_named_with_its_type(kind: str) -> None:
    class Service:
        @durable.durable_workflow(name="decorators.Service.handle")
        async def handle(self, order: int, client: Any) -> int:
            return order

    @durable.durable_workflow(name="decorators.sync_args")
    def sync_args(order: int, client: Any, *, note: str = "") -> int:
        return order

    @durable.durable_workflow(name="decorators.async_args")
    async def async_args(order: int, client: Any) -> int:
        return order

    client = threading.Lock()

    async def call() -> None:
        if kind == "sync":
            sync_args(7, client)
        elif kind == "async":
            await async_args(7, client=client)
        elif kind == "enqueue":
            await async_args.enqueue(7, client)
        else:
            await Service().handle(7, client)

    with pytest.raises(durable.SerializationError) as info:
        await call()
    message = str(info.value)
    # Was: "a value of type builtins.tuple ... Return plain data".
    assert "argument 'client' (a _thread.lock) does not pickle" in message
    assert "builtins.tuple" not in message
    assert "Return plain data" not in message
    assert "pass plain data instead" in message
    assert info.value.argument == "client"  # type: ignore[attr-defined]
