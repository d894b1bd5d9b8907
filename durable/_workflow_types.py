"""The types of decorated workflows and of the decorators (what type checkers see).

``@durable.durable_workflow`` returns an :class:`AsyncWorkflow` for an
``async def`` and a :class:`SyncWorkflow` for a plain ``def``: the call form
keeps the function's parameters, the methods take durable's options.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Literal,
    ParamSpec,
    Protocol,
    TypeVar,
    overload,
)

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

    from durable._handle import WorkflowHandle
    from durable._queues import Queue

P = ParamSpec("P")
P2 = ParamSpec("P2")
S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")
T_co = TypeVar("T_co", covariant=True)


class AsyncWorkflow(Protocol[P, T_co]):
    """The type of an ``async def`` decorated with ``@durable.durable_workflow``."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T_co]:
        """Run the workflow under an id derived from its name and arguments."""

    def run(
        self,
        *args: Any,
        workflow_id: str | None = None,
        timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, T_co]:
        """Run the workflow under ``workflow_id`` (derived when ``None``).

        ``timeout`` (seconds or a timedelta) limits this run, counted from its
        first start, over the decorator's ``timeout``.
        """

    def run_sync(
        self,
        *args: Any,
        workflow_id: str | None = None,
        timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> T_co:
        """Run the workflow to completion from sync code (a script, a notebook)."""

    def enqueue(
        self,
        *args: Any,
        workflow_id: str | None = None,
        queue: str | Queue = "default",
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        delay: float | dt.timedelta | None = None,
        start_at: dt.datetime | None = None,
        dedup_id: str | None = None,
        partition: str | None = None,
        queue_timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, WorkflowHandle[T_co]]:
        """Record the call for a worker to run, without running it; a handle on it.

        Idempotent per workflow id. Workers claim the highest ``priority``
        first, then the oldest; not before ``delay`` from now or ``start_at``
        if given. With a ``dedup_id`` another workflow of the queue with work
        left has, nothing is enqueued (:class:`durable.WorkflowDeduplicatedError`).
        ``partition`` names its share of a partitioned queue (e.g. a tenant);
        with ``queue_timeout``, it is cancelled (:class:`durable.QueueTimeoutError`)
        if no worker starts it within that time of when it may start.
        Run ``durable worker`` (or a :class:`durable.Worker`) to run enqueued
        workflows.
        """

    def enqueue_sync(
        self,
        *args: Any,
        workflow_id: str | None = None,
        queue: str | Queue = "default",
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        delay: float | dt.timedelta | None = None,
        start_at: dt.datetime | None = None,
        dedup_id: str | None = None,
        partition: str | None = None,
        queue_timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[T_co]:
        """Blocking form of :meth:`enqueue`."""

    def id_for(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The workflow id a top-level call with these arguments gets."""

    def options(
        self,
        *,
        workflow_id: str | None = None,
        timeout: float | dt.timedelta | None = None,
        queue: str | Queue = "default",
        priority: int = 0,
        delay: float | dt.timedelta | None = None,
        start_at: dt.datetime | None = None,
        dedup_id: str | None = None,
        on_duplicate: Literal["raise", "return"] = "raise",
        partition: str | None = None,
        queue_timeout: float | dt.timedelta | None = None,
    ) -> AsyncWorkflowCall[P, T_co]:
        """This workflow with call options, whose ``run``/``enqueue`` take exactly its parameters.

        Example::

            await report.options(workflow_id="report-11", timeout=600).run("2026-11")
        """

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(
        self: AsyncWorkflow[Concatenate[S, P2], T_co], instance: S, owner: type[Any] | None = None
    ) -> AsyncWorkflow[P2, T_co]: ...
    def __get__(self, instance: Any, owner: Any = None) -> Any:
        """Bind the workflow to an instance, as a method (its parameters less ``self``)."""


class SyncWorkflow(Protocol[P, T_co]):
    """The type of a plain ``def`` decorated with ``@durable.durable_workflow``."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T_co:
        """Run the workflow under an id derived from its name and arguments."""

    def run(
        self,
        *args: Any,
        workflow_id: str | None = None,
        timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> T_co:
        """Run the workflow under ``workflow_id`` (derived when ``None``), within ``timeout``."""

    def run_sync(
        self,
        *args: Any,
        workflow_id: str | None = None,
        timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> T_co:
        """Same as :meth:`run` (for symmetry with async workflows)."""

    def enqueue(
        self,
        *args: Any,
        workflow_id: str | None = None,
        queue: str | Queue = "default",
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        delay: float | dt.timedelta | None = None,
        start_at: dt.datetime | None = None,
        dedup_id: str | None = None,
        partition: str | None = None,
        queue_timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[T_co]:
        """Record the call for a worker to run, without running it; a handle on it.

        Idempotent per workflow id. Workers claim the highest ``priority``
        first, then the oldest; not before ``delay`` from now or ``start_at``
        if given.
        """

    def enqueue_sync(
        self,
        *args: Any,
        workflow_id: str | None = None,
        queue: str | Queue = "default",
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        delay: float | dt.timedelta | None = None,
        start_at: dt.datetime | None = None,
        dedup_id: str | None = None,
        partition: str | None = None,
        queue_timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[T_co]:
        """Same as :meth:`enqueue`."""

    def id_for(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The workflow id a top-level call with these arguments gets."""

    def options(
        self,
        *,
        workflow_id: str | None = None,
        timeout: float | dt.timedelta | None = None,
        queue: str | Queue = "default",
        priority: int = 0,
        delay: float | dt.timedelta | None = None,
        start_at: dt.datetime | None = None,
        dedup_id: str | None = None,
        on_duplicate: Literal["raise", "return"] = "raise",
        partition: str | None = None,
        queue_timeout: float | dt.timedelta | None = None,
    ) -> SyncWorkflowCall[P, T_co]:
        """This workflow with call options, whose ``run``/``enqueue`` take exactly its parameters.

        Example::

            build.options(workflow_id="build-7", timeout=3600).run("main")
        """

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(
        self: SyncWorkflow[Concatenate[S, P2], T_co], instance: S, owner: type[Any] | None = None
    ) -> SyncWorkflow[P2, T_co]: ...
    def __get__(self, instance: Any, owner: Any = None) -> Any:
        """Bind the workflow to an instance, as a method (its parameters less ``self``)."""


class AsyncWorkflowCall(Protocol[P, T_co]):
    """An async workflow with its call options set (``wf.options(...)``)."""

    def run(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, T_co]:
        """Run it with these options; the arguments are exactly the workflow's."""

    def run_sync(self, *args: P.args, **kwargs: P.kwargs) -> T_co:
        """Run it to completion from sync code."""

    def enqueue(
        self, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, WorkflowHandle[T_co]]:
        """Record the call for a worker (on the options' queue and priority); a handle."""

    def enqueue_sync(self, *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[T_co]:
        """Blocking form of :meth:`enqueue`."""


class SyncWorkflowCall(Protocol[P, T_co]):
    """A sync workflow with its call options set (``wf.options(...)``)."""

    def run(self, *args: P.args, **kwargs: P.kwargs) -> T_co:
        """Run it with these options; the arguments are exactly the workflow's."""

    def run_sync(self, *args: P.args, **kwargs: P.kwargs) -> T_co:
        """Same as :meth:`run`."""

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[T_co]:
        """Record the call for a worker (on the options' queue and priority); a handle."""

    def enqueue_sync(self, *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[T_co]:
        """Same as :meth:`enqueue`."""


class WorkflowDecorator(Protocol):
    # An async function matches the first overload; the second is for the rest.
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[P, Coroutine[Any, Any, T]], /
    ) -> AsyncWorkflow[P, T]: ...
    @overload
    def __call__(self, fn: Callable[P, T], /) -> SyncWorkflow[P, T]: ...


class StepDecorator(Protocol):
    def __call__(self, fn: Callable[P, R], /) -> Callable[P, R]: ...
