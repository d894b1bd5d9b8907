"""Logging and OpenTelemetry spans: what a workflow tells the outside world."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import durable
from durable.testing import CrashInjector, SimulatedCrash

otel = pytest.importorskip("opentelemetry.sdk.trace", reason="needs opentelemetry-sdk")
from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # A tracer provider can be set once per process: one, shared, cleared per test.
    if not isinstance(trace.get_tracer_provider(), otel.TracerProvider):
        provider = otel.TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@durable.step(name="fetch")
async def fetch(x: int) -> bytes:
    return b"x" * x


@durable.durable_workflow(name="obs.flow")
async def flow(x: int) -> int:
    return len(await fetch(x))


async def test_spans_per_workflow_and_step(
    durable_runtime: durable.Runtime, spans: InMemorySpanExporter
) -> None:
    CrashInjector(durable_runtime).arm("after_commit", step="fetch")
    with pytest.raises(SimulatedCrash):
        await flow.run(300, workflow_id="traced")
    assert await flow.run(300, workflow_id="traced") == 300
    names = [s.name for s in spans.get_finished_spans()]
    assert names == ["step fetch", "workflow obs.flow", "step fetch", "workflow obs.flow"]
    first_step, first_wf, replayed_step, resumed_wf = spans.get_finished_spans()
    assert first_step.attributes["durable.step.replayed"] is False
    assert first_step.attributes["durable.step.position"] == 1
    assert first_step.attributes["durable.attempt"] == 1
    assert first_step.attributes["durable.payload_bytes"] > 300
    assert first_step.parent is not None and first_step.parent.span_id == first_wf.context.span_id  # noqa: PT018
    assert first_wf.status.status_code.name == "ERROR"  # the simulated crash
    assert replayed_step.attributes["durable.step.replayed"] is True
    assert resumed_wf.attributes["durable.workflow.resumed"] is True
    assert resumed_wf.attributes["durable.workflow.attempt"] == 2
    assert first_wf.attributes["durable.interrupted"] == "SimulatedCrash"


async def test_log_records_carry_the_workflow_and_step(
    durable_runtime: durable.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    tries: list[int] = []

    @durable.step(name="flaky", retries=1, backoff=0)
    async def flaky() -> None:
        tries.append(1)
        if len(tries) == 1:
            raise TimeoutError("slow")

    @durable.durable_workflow(name="obs.logged")
    async def logged() -> None:
        await flaky()

    with caplog.at_level(logging.INFO, logger="durable"):
        await logged.run(workflow_id="logged")
    [record] = [r for r in caplog.records if "retry 1 of 1" in r.getMessage()]
    assert (record.workflow_id, record.step, record.position) == ("logged", "flaky", 1)  # type: ignore[attr-defined]


def test_the_durable_logger_is_quiet_by_default() -> None:
    handlers = logging.getLogger("durable").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
