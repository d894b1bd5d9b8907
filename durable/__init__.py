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

from durable._decorators import AsyncWorkflow, SyncWorkflow, durable_workflow, step
from durable._errors import (
    BackendUnavailableError,
    ConfigurationError,
    DurableError,
    InvalidWorkflowIdError,
    NonDeterminismError,
    NotInWorkflowError,
    OwnershipLostError,
    PayloadIntegrityError,
    PayloadTooLargeError,
    RecordedError,
    SchemaVersionError,
    SerializationError,
    WorkflowAlreadyRunningError,
    WorkflowConflictError,
)
from durable._identity import MAX_WORKFLOW_ID_LENGTH
from durable._retry import RetryPolicy
from durable._runtime import (
    HealthReport,
    RecoveryReport,
    Runtime,
    StepInfo,
    WorkflowInfo,
    configure,
    current_runtime,
    current_workflow_id,
)
from durable.backends._base import StepStatus, WorkflowStatus

__version__ = "0.1.0"


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


def recover_sync() -> RecoveryReport:
    """Blocking form of :func:`recover`, for scripts and notebooks."""
    return current_runtime().recover_sync()


__all__ = [
    "MAX_WORKFLOW_ID_LENGTH",
    "AsyncWorkflow",
    "BackendUnavailableError",
    "ConfigurationError",
    "DurableError",
    "HealthReport",
    "InvalidWorkflowIdError",
    "NonDeterminismError",
    "NotInWorkflowError",
    "OwnershipLostError",
    "PayloadIntegrityError",
    "PayloadTooLargeError",
    "RecordedError",
    "RecoveryReport",
    "RetryPolicy",
    "Runtime",
    "SchemaVersionError",
    "SerializationError",
    "StepInfo",
    "StepStatus",
    "SyncWorkflow",
    "WorkflowAlreadyRunningError",
    "WorkflowConflictError",
    "WorkflowInfo",
    "WorkflowStatus",
    "__version__",
    "configure",
    "current_runtime",
    "current_workflow_id",
    "durable_workflow",
    "health_check",
    "recover",
    "recover_sync",
    "step",
]
