"""A client by name: hand work to workers from a process without the workflows' code.

A web backend, a cron job or a notebook enqueues workflows by their
registered names, sends them events, reads what they published, waits for
their results, cancels and resumes them; the workers that import the code
run them. Arguments are pickled here (plain data travels best); a worker
that has no workflow of that name leaves it for one that has, and says so.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from durable._aio import drive
from durable._calls import OnDuplicate, Where, enqueued
from durable._engine._core import Invocation
from durable._engine._runtime import Runtime
from durable._errors import ConfigurationError
from durable._events import send_event, send_event_sync
from durable._handle import WorkflowHandle
from durable._infos import WorkflowInfo
from durable._published import MISSING, get_published, get_published_sync
from durable._queues import Queue
from durable._store import Store
from durable.backends._limits import DEFAULT_QUEUE, NAME_COLUMN_CHARS, check_text


class Client:
    """Enqueue, signal, follow and control workflows by name, without their code.

    Args:
        url: The store the workers use (see :class:`durable.Runtime`);
            default: the configured one.
        runtime: Use this runtime's store instead of opening one (it stays
            open when the client closes).
        **options: Further :class:`durable.Runtime` options (e.g. the
            ``signing_key`` the workers use).

    Each method has an ``a``-prefixed coroutine form for async code (a web
    handler): ``await client.aenqueue(...)``.

    Example::

        with durable.Client("postgresql://db/app") as client:
            handle = client.enqueue("reports.monthly", "2026-11", queue="reports")
            client.send_event(handle.workflow_id, "approved", True)
            print(handle.result_sync(timeout=600))
    """

    def __init__(
        self, url: str | None = None, *, runtime: Runtime | None = None, **options: Any
    ) -> None:
        if runtime is not None and (url is not None or options):
            raise ConfigurationError("give a Client either runtime= or a url and options")
        self._owns = runtime is None
        self._runtime = runtime if runtime is not None else Runtime(url, **options)

    def __repr__(self) -> str:
        return f"<durable.Client {self._runtime.url}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's connections (handles made here stop working)."""
        if self._owns:
            self._runtime.close()

    @property
    def store(self) -> Store:
        """The store, to list, show, clean up... (see :class:`durable.Store`)."""
        return self._runtime.store

    # Enqueue ---------------------------------------------------------------

    def enqueue(
        self,
        workflow: str,
        *args: Any,
        workflow_id: str | None = None,
        queue: str | Queue = DEFAULT_QUEUE,
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        delay: float | dt.timedelta | None = None,
        start_at: dt.datetime | None = None,
        dedup_id: str | None = None,
        on_duplicate: OnDuplicate = "raise",
        partition: str | None = None,
        queue_timeout: float | dt.timedelta | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Enqueue a call of the workflow registered as ``workflow``; its handle.

        The options are those of ``wf.enqueue`` (see
        :meth:`durable.AsyncWorkflow.enqueue`); a workflow with a parameter
        named like one of them takes it through :meth:`options`. Without a
        ``workflow_id`` the id is derived from the name and the arguments as
        given here (a client does not know the signature, so its ids are its
        own: give one to name the call yourself).
        """
        options = self.options(
            workflow_id=workflow_id,
            queue=queue,
            priority=priority,
            timeout=timeout,
            delay=delay,
            start_at=start_at,
            dedup_id=dedup_id,
            on_duplicate=on_duplicate,
            partition=partition,
            queue_timeout=queue_timeout,
        )
        return options.enqueue(workflow, *args, **kwargs)

    async def aenqueue(self, workflow: str, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Coroutine form of :meth:`enqueue` (the same options)."""
        options = {k: kwargs.pop(k) for k in _OPTIONS if k in kwargs}
        return await self.options(**options).aenqueue(workflow, *args, **kwargs)

    def options(
        self,
        *,
        workflow_id: str | None = None,
        queue: str | Queue = DEFAULT_QUEUE,
        priority: int = 0,
        timeout: float | dt.timedelta | None = None,
        delay: float | dt.timedelta | None = None,
        start_at: dt.datetime | None = None,
        dedup_id: str | None = None,
        on_duplicate: OnDuplicate = "raise",
        partition: str | None = None,
        queue_timeout: float | dt.timedelta | None = None,
    ) -> ByName:
        """These enqueue options, apart from the arguments: ``.enqueue(name, *args, **kwargs)``.

        Example::

            client.options(queue="reports").enqueue("reports.monthly", "2026-11", queue="eu")
        """
        where = Where.checked(
            workflow_id,
            queue,
            priority,
            timeout,
            delay,
            start_at,
            dedup_id,
            on_duplicate,
            partition,
            queue_timeout,
        )
        return ByName(self._runtime, where)

    # Follow and signal -------------------------------------------------------

    def handle(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle on a workflow by its id: ``status()``, ``result_sync()``, ``await result()``."""
        return WorkflowHandle(workflow_id, self._runtime)

    def get_workflow(self, workflow_id: str) -> WorkflowInfo | None:
        """What the store holds about a workflow, or None."""
        return self._runtime.store.get_workflow(workflow_id)

    def result(self, workflow_id: str, timeout: float | dt.timedelta | None = None) -> Any:
        """Wait for a workflow's result (raises its error); see :meth:`WorkflowHandle.result`."""
        return self.handle(workflow_id).result_sync(timeout=timeout)

    async def aresult(self, workflow_id: str, timeout: float | dt.timedelta | None = None) -> Any:
        """Coroutine form of :meth:`result`."""
        return await self.handle(workflow_id).result(timeout=timeout)

    def send_event(
        self, workflow_id: str, key: str, value: Any = None, *, idempotency_key: str | None = None
    ) -> bool:
        """Send an event to a workflow (see :func:`durable.send_event`); stored or not."""
        with self._runtime.activated():
            return send_event_sync(workflow_id, key, value, idempotency_key=idempotency_key)

    async def asend_event(
        self, workflow_id: str, key: str, value: Any = None, *, idempotency_key: str | None = None
    ) -> bool:
        """Coroutine form of :meth:`send_event`."""
        with self._runtime.activated():
            return await send_event(workflow_id, key, value, idempotency_key=idempotency_key)

    def get_published(
        self,
        workflow_id: str,
        key: str,
        timeout: float | dt.timedelta | None = None,
        *,
        default: Any = MISSING,
    ) -> Any:
        """The latest value a workflow published under ``key`` (:func:`durable.get_published`)."""
        with self._runtime.activated():
            return get_published_sync(workflow_id, key, timeout, default=default)

    async def aget_published(
        self,
        workflow_id: str,
        key: str,
        timeout: float | dt.timedelta | None = None,
        *,
        default: Any = MISSING,
    ) -> Any:
        """Coroutine form of :meth:`get_published`."""
        with self._runtime.activated():
            return await get_published(workflow_id, key, timeout, default=default)

    # Control -----------------------------------------------------------------

    def cancel(self, workflow_id: str) -> bool:
        """Cancel a workflow and its children (see :meth:`Store.cancel`); whether it was active."""
        return self._runtime.store.cancel(workflow_id)

    def resume(self, workflow_id: str) -> bool:
        """Reopen a cancelled, timed-out or quarantined workflow (:meth:`Store.resume`)."""
        return self._runtime.store.resume(workflow_id)


_OPTIONS = (
    "workflow_id",
    "queue",
    "priority",
    "timeout",
    "delay",
    "start_at",
    "dedup_id",
    "on_duplicate",
    "partition",
    "queue_timeout",
)


class ByName:
    """Enqueue options held apart: ``enqueue`` takes the workflow's name and arguments only."""

    __slots__ = ("_runtime", "_where")

    def __init__(self, runtime: Runtime, where: Where) -> None:
        self._runtime, self._where = runtime, where

    def enqueue(self, workflow: str, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Enqueue a call of the workflow registered as ``workflow``; its handle."""
        inv = self._call(workflow, args, kwargs)
        return drive(enqueued(self._runtime.engine, inv, True, self._where))

    async def aenqueue(self, workflow: str, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Coroutine form of :meth:`enqueue`."""
        inv = self._call(workflow, args, kwargs)
        return await enqueued(self._runtime.engine, inv, False, self._where)

    def _call(self, workflow: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Invocation:
        if not isinstance(workflow, str):
            raise ConfigurationError(
                f"Client.enqueue takes the workflow's registered name (a str, e.g. "
                f"'reports.monthly'), not {workflow!r}; with the code imported, call "
                "wf.enqueue(...) instead"
            )
        check_text(workflow, "workflow name", NAME_COLUMN_CHARS, blank_ok=False)
        where = self._where
        return Invocation.by_name(workflow, args, kwargs, where.workflow_id, where.timeout)
