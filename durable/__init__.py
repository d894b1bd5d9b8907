"""durable: make plain Python functions crash-proof, one decorator at a time.

Decorate the expensive or side-effecting functions with :func:`step` and the
function that calls them with :func:`durable_workflow`. Each step's result is
recorded in a store (an embedded SQLite file by default) as soon as it
finishes; calling the workflow again after a crash, an exception or a
restarted notebook kernel skips every step that already finished.

Example::

    import durable

    @durable.step
    async def fetch(url: str) -> str: ...

    @durable.durable_workflow
    async def digest(url: str) -> str:
        page = await fetch(url)        # recorded once done
        return page.upper()

    await digest("https://example.org")
"""

import logging
from typing import TYPE_CHECKING, Any

from durable._client import Client
from durable._decorators import durable_workflow, step
from durable._engine._runtime import (
    Runtime,
    configure,
    current_runtime,
    current_workflow_id,
)
from durable._errors import (
    BackendUnavailableError,
    CodeChangedError,
    CodeChangedWarning,
    ConfigurationError,
    DurableError,
    EventTimeoutError,
    InvalidWorkflowIdError,
    NonDeterminismError,
    NotInWorkflowError,
    NotPublishedError,
    OwnershipLostError,
    PayloadIntegrityError,
    PayloadTooLargeError,
    QueueTimeoutError,
    RecordedError,
    RuntimeClosedError,
    ScheduleNotFoundError,
    SchemaVersionError,
    SerializationError,
    StepTimeoutError,
    WorkflowAlreadyRunningError,
    WorkflowCancelledError,
    WorkflowConflictError,
    WorkflowDeduplicatedError,
    WorkflowNotFoundError,
    WorkflowQuarantinedError,
    WorkflowSuspendedError,
    WorkflowTimeoutError,
)
from durable._events import send_event, send_event_sync, wait_for_event, wait_for_event_sync
from durable._first import as_completed, wait_first
from durable._handle import WorkflowHandle
from durable._identity import MAX_WORKFLOW_ID_LENGTH
from durable._infos import (
    CleanupReport,
    History,
    HistoryEntry,
    Metrics,
    SnapshotInfo,
    WorkflowInfo,
)
from durable._options import Options
from durable._published import get_published, get_published_sync, publish, publish_sync
from durable._queues import Queue, QueueInfo
from durable._records import SessionSummary, StepStatus, StreamSummary, WorkflowStatus
from durable._reports import HealthReport, RecoveryReport, StepInfo
from durable._retry import RetryPolicy
from durable._schedules import Schedule, ScheduleInfo, schedule, scheduled
from durable._session_state import SessionState, session
from durable._sleep import sleep, sleep_until
from durable._snapshot import snapshot
from durable._store import Store
from durable._streaming import (
    StreamRestarted,
    close_stream,
    close_stream_sync,
    read_stream,
    read_stream_sync,
    write_stream,
    write_stream_sync,
)
from durable._transaction import Transaction, transaction
from durable._workflow_types import AsyncWorkflow, SyncWorkflow

__version__ = "0.1.0"


if TYPE_CHECKING:
    from durable._engine._worker import Worker, WorkerReport
    from durable._progress import Progress, progress


def __getattr__(name: str) -> Any:
    """Names imported when first used: a sync script loads neither asyncio nor rich for them.

    ``durable.Worker`` and ``durable.WorkerReport`` (a worker runs on
    asyncio), ``durable.progress`` and ``durable.Progress``.
    """
    if name in ("Worker", "WorkerReport"):
        from durable._engine import _worker

        return getattr(_worker, name)
    if name in ("progress", "Progress"):
        from durable import _progress

        return getattr(_progress, name)
    raise AttributeError(f"module 'durable' has no attribute {name!r}")


def __dir__() -> list[str]:
    """Every public name, those imported when first used too (for tab completion)."""
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext durable`` in a notebook: adds the ``%%durable [name]`` cell magic.

    A cell under it records the names it assigns when it finishes, and run
    again with the same code and inputs (also after a kernel restart)
    restores them without running; see docs/notebooks.md.

    Example::

        %load_ext durable

        %%durable features
        features = build_features(raw)      # runs once; restored afterwards
    """
    from durable._cells import register

    register(ipython)


# A library stays quiet unless the application configures logging.
logging.getLogger("durable").addHandler(logging.NullHandler())


async def recover() -> RecoveryReport:
    """Resume every incomplete workflow whose owner died, on the current runtime.

    See :meth:`Runtime.recover`. Import the modules that define your
    workflows first: workflows are found by their registered names.

    Example::

        import myapp.workflows  # registers the workflows
        report = await durable.recover()
        print(report.resumed, report.unknown)
    """
    return await current_runtime().recover()


def health_check() -> HealthReport:
    """Check that the current runtime's store answers; see :meth:`Runtime.health_check`."""
    return current_runtime().health_check()


def restore(workflow_id: str, snapshot: str) -> None:
    """Rewind a workflow to a snapshot on the current runtime; see :meth:`Store.restore`.

    Example::

        durable.restore("order-7", "before_charge")
        await checkout.run(7, workflow_id="order-7")   # runs again from the snapshot
    """
    current_runtime().store.restore(workflow_id, snapshot)


def fork(workflow_id: str, snapshot: str, new_workflow_id: str) -> str:
    """Start a new workflow from another's snapshot; see :meth:`Store.fork`.

    Example::

        durable.fork("order-7", "before_charge", new_workflow_id="order-7-retry")
        await checkout.run(7, workflow_id="order-7-retry")
    """
    return current_runtime().store.fork(workflow_id, snapshot, new_workflow_id)


def recover_sync() -> RecoveryReport:
    """Blocking form of :func:`recover`, for scripts and notebooks."""
    return current_runtime().recover_sync()


__all__ = [
    "AsyncWorkflow",
    "BackendUnavailableError",
    "CodeChangedError",
    "CodeChangedWarning",
    "CleanupReport",
    "Client",
    "ConfigurationError",
    "DurableError",
    "EventTimeoutError",
    "HealthReport",
    "History",
    "HistoryEntry",
    "InvalidWorkflowIdError",
    "MAX_WORKFLOW_ID_LENGTH",
    "Metrics",
    "NonDeterminismError",
    "NotInWorkflowError",
    "NotPublishedError",
    "OwnershipLostError",
    "PayloadIntegrityError",
    "PayloadTooLargeError",
    "Progress",
    "Queue",
    "QueueInfo",
    "QueueTimeoutError",
    "RecordedError",
    "RecoveryReport",
    "Options",
    "RetryPolicy",
    "Runtime",
    "RuntimeClosedError",
    "Schedule",
    "ScheduleInfo",
    "ScheduleNotFoundError",
    "SchemaVersionError",
    "SerializationError",
    "SessionState",
    "SessionSummary",
    "SnapshotInfo",
    "StepInfo",
    "StepTimeoutError",
    "StreamRestarted",
    "StreamSummary",
    "StepStatus",
    "Store",
    "SyncWorkflow",
    "Transaction",
    "WorkflowAlreadyRunningError",
    "WorkflowCancelledError",
    "WorkflowConflictError",
    "WorkflowDeduplicatedError",
    "WorkflowInfo",
    "Worker",
    "WorkerReport",
    "WorkflowHandle",
    "WorkflowNotFoundError",
    "WorkflowQuarantinedError",
    "WorkflowSuspendedError",
    "WorkflowTimeoutError",
    "WorkflowStatus",
    "configure",
    "current_runtime",
    "current_workflow_id",
    "as_completed",
    "close_stream",
    "close_stream_sync",
    "durable_workflow",
    "get_published",
    "get_published_sync",
    "publish",
    "publish_sync",
    "read_stream",
    "read_stream_sync",
    "session",
    "wait_first",
    "write_stream",
    "write_stream_sync",
    "fork",
    "health_check",
    "load_ipython_extension",
    "progress",
    "recover",
    "recover_sync",
    "restore",
    "send_event",
    "send_event_sync",
    "sleep",
    "sleep_until",
    "snapshot",
    "schedule",
    "scheduled",
    "step",
    "transaction",
    "wait_for_event",
    "wait_for_event_sync",
    "__version__",
]
