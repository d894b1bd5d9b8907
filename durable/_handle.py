"""``wf.enqueue(...)``: record a workflow for a worker to run, and a handle on it."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from durable._aio import block_for, drive
from durable._durations import duration, optional_duration
from durable._errors import WorkflowNotFoundError
from durable._published import MISSING, check_key, wait_published
from durable._records import WorkflowStatus

if TYPE_CHECKING:
    from durable._engine._runtime import Runtime
    from durable._infos import WorkflowInfo

T_co = TypeVar("T_co", covariant=True)


class WorkflowHandle(Generic[T_co]):
    """A workflow recorded in a store, to follow by its id: its status, its result.

    :meth:`enqueue` returns one; anyone can make one for a known id with
    ``WorkflowHandle(workflow_id)``.

    Example::

        handle = await report.enqueue("2026-11", queue="reports")
        print(handle.workflow_id, handle.status())
        print(await handle.result(timeout=600))   # once a worker has run it
    """

    def __init__(self, workflow_id: str, runtime: Runtime | None = None) -> None:
        from durable._engine._runtime import current_runtime

        self.workflow_id = workflow_id
        self._runtime = runtime if runtime is not None else current_runtime()

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.workflow_id!r}>"

    def info(self) -> WorkflowInfo:
        """What the store holds about the workflow now."""
        found = self._runtime.get_workflow(self.workflow_id)
        if found is None:
            raise WorkflowNotFoundError(
                f"no workflow {self.workflow_id!r} in {self._runtime.url} (deleted?)",
                workflow_id=self.workflow_id,
            )
        return found

    def status(self) -> WorkflowStatus:
        """Its status now (``enqueued``, ``running``, ``waiting``, ``success``...)."""
        return self.info().status

    async def get_published(
        self, key: str, timeout: float | dt.timedelta | None = None, *, default: Any = MISSING
    ) -> Any:
        """The latest value it published under ``key`` (see :func:`durable.get_published`).

        Example::

            handle = await report.enqueue("2026-11")
            print(await handle.get_published("progress", timeout=0, default=0))
        """
        engine = self._runtime.engine
        seconds = optional_duration(timeout, "timeout")
        key = check_key(key)
        return await wait_published(
            engine, engine.session(sync=False), self.workflow_id, key, seconds, default
        )

    def get_published_sync(
        self, key: str, timeout: float | dt.timedelta | None = None, *, default: Any = MISSING
    ) -> Any:
        """Blocking form of :meth:`get_published`."""
        engine = self._runtime.engine
        seconds = optional_duration(timeout, "timeout")
        key = check_key(key)
        return drive(
            wait_published(
                engine, engine.session(sync=True), self.workflow_id, key, seconds, default
            )
        )

    async def result(
        self, timeout: float | dt.timedelta | None = None, poll_interval: float | dt.timedelta = 0.1
    ) -> T_co:
        """Wait until the workflow finishes and return its result (or raise its error).

        ``timeout`` (None: no limit) and ``poll_interval`` are seconds or
        timedeltas, from 0 (``poll_interval``: more than 0) to 100 years.

        Raises:
            TimeoutError: It did not finish within ``timeout`` seconds.
            ConfigurationError: ``timeout`` or ``poll_interval`` is out of range.
            WorkflowCancelledError, WorkflowQuarantinedError: It never will.
        """
        import asyncio

        polls = self._polls(timeout, poll_interval)
        for step in polls:
            if isinstance(step, tuple):
                return step[0]  # type: ignore[no-any-return]
            await asyncio.sleep(step)
        raise AssertionError("unreachable: the polls end with the outcome")

    def result_sync(
        self, timeout: float | dt.timedelta | None = None, poll_interval: float | dt.timedelta = 0.1
    ) -> T_co:
        """Blocking form of :meth:`result`."""
        for step in self._polls(timeout, poll_interval):
            if isinstance(step, tuple):
                return step[0]  # type: ignore[no-any-return]
            time.sleep(block_for(step))
        raise AssertionError("unreachable: the polls end with the outcome")

    def _polls(self, given_timeout: object, given_interval: object) -> Iterator[float | tuple[Any]]:
        """Pauses (growing, bounded) until the workflow has finished, then its outcome."""
        timeout = optional_duration(given_timeout, "timeout")
        poll_interval = duration(given_interval, "poll_interval", positive=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = min(0.01, poll_interval)
        while (outcome := self._finished()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"workflow {self.workflow_id!r} did not finish within {timeout:g} s "
                    f"(status {self.status().value})"
                )
            yield delay
            delay = min(delay * 1.5, poll_interval)
        yield outcome

    def _finished(self) -> tuple[Any] | None:
        from durable._engine._core import quarantined as _quarantined

        row = self._runtime.backend.run_sync(self._runtime.backend.get_workflow, self.workflow_id)
        if row is None:
            raise WorkflowNotFoundError(
                f"no workflow {self.workflow_id!r} in {self._runtime.url} (deleted?)",
                workflow_id=self.workflow_id,
            )
        if row.status is WorkflowStatus.QUARANTINED:
            raise _quarantined(row)
        if row.status is WorkflowStatus.CANCELLED:
            raise self._runtime.engine.cancelled(row)
        if row.status.active:
            return None
        return (self._runtime.engine.outcome(row),)
