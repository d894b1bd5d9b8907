"""The types of decorated workflows and of the decorators (what type checkers see).

``@durable.durable_workflow`` returns an :class:`AsyncWorkflow` for an
``async def`` and a :class:`SyncWorkflow` for a plain ``def``: the call form
keeps the function's parameters, the methods take durable's options.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from durable._handle import WorkflowHandle

P = ParamSpec("P")
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
        queue: str = "default",
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, WorkflowHandle[T_co]]:
        """Record the call for a worker to run, without running it; a handle on it.

        Idempotent per workflow id. Workers claim the highest ``priority``
        first, then the oldest. Run ``durable worker`` (or a
        :class:`durable.Worker`) to run enqueued workflows.
        """

    def enqueue_sync(
        self,
        *args: Any,
        workflow_id: str | None = None,
        queue: str = "default",
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[T_co]:
        """Blocking form of :meth:`enqueue`."""

    def id_for(self, *args: Any, **kwargs: Any) -> str:
        """The workflow id a top-level call with these arguments gets."""

    def __get__(self, instance: Any, owner: Any = None) -> AsyncWorkflow[..., T_co]:
        """Bind the workflow to an instance or class, as a method."""


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
        queue: str = "default",
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[T_co]:
        """Record the call for a worker to run, without running it; a handle on it.

        Idempotent per workflow id. Workers claim the highest ``priority``
        first, then the oldest.
        """

    def enqueue_sync(
        self,
        *args: Any,
        workflow_id: str | None = None,
        queue: str = "default",
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[T_co]:
        """Same as :meth:`enqueue`."""

    def id_for(self, *args: Any, **kwargs: Any) -> str:
        """The workflow id a top-level call with these arguments gets."""

    def __get__(self, instance: Any, owner: Any = None) -> SyncWorkflow[..., T_co]:
        """Bind the workflow to an instance or class, as a method."""


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
