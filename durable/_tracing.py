"""OpenTelemetry spans for workflows and steps, when ``opentelemetry-api`` is installed.

Without it (or without an SDK configured) this costs next to nothing: spans
are no-ops. Span names are ``workflow <name>`` and ``step <name>``; their
attributes carry the workflow id, the step position and attempt, whether the
step was replayed from its record or executed, and the payload size.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

_trace: Any = None  # opentelemetry.trace, once an SDK is seen set up
_TRACER: Any = None
_configured = False


def _tracing() -> bool:
    """Whether an SDK is set up: until then spans would be no-ops, and cost per step.

    An application that sets up an SDK has imported ``opentelemetry.trace``
    (so has ``opentelemetry-instrument``): until it is in ``sys.modules``,
    nothing is looked at, and ``import durable`` does not import it.
    """
    global _configured, _trace, _TRACER
    if not _configured:
        trace = sys.modules.get("opentelemetry.trace")
        if trace is None:
            return False
        provider = type(trace.get_tracer_provider()).__name__
        if provider not in ("ProxyTracerProvider", "NoOpTracerProvider"):
            _trace, _TRACER = trace, trace.get_tracer("durable")
            _configured = True
    return _configured


def span(
    name: str, attributes: Callable[[], dict[str, Any]], *, inner: bool = False
) -> contextlib.AbstractContextManager[Any]:
    """A span around a workflow or a step (the current span while it runs).

    The attributes are built only when a span is really recorded. An
    ``inner`` span (a step's) goes by what its workflow's span found: looking
    for a configured SDK reads the environment, which costs more than the
    rest of a step's bookkeeping, so a provider set up while a workflow runs
    traces from its next run.
    """
    if not (_configured if inner else _tracing()):
        return _NO_SPAN
    return _span(name, attributes())


_NO_SPAN = contextlib.nullcontext()


def inner_spans() -> bool:
    """Whether an ``inner`` :func:`span` (a step's) would be recorded.

    What :func:`span` decides for one, without its arguments: a step that
    is not traced builds neither its span's name nor its attributes.
    """
    return _configured


@contextlib.contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[Any]:
    with _TRACER.start_as_current_span(name, attributes=attributes) as current:
        try:
            yield current
        except Exception:
            raise  # recorded by OpenTelemetry itself
        except BaseException as exc:
            # A crash, a cancellation, an interrupt: OpenTelemetry leaves these
            # unmarked, but for a durable run they are the interesting ones.
            current.set_attribute("durable.interrupted", type(exc).__name__)
            current.set_status(_trace.Status(_trace.StatusCode.ERROR, type(exc).__name__))
            raise


def annotate(**attributes: Any) -> None:
    """Add attributes (``durable.*``) to the current span, once they are known."""
    if not _configured:
        return
    current = _trace.get_current_span()
    if current.is_recording():
        current.set_attributes({f"durable.{k}": v for k, v in attributes.items()})
