"""Storage backends: the storage contract, and the rows it speaks in.

The engine asks a :class:`Backend` to run operations (``start_workflow``,
``record_step``, ``claim_queued``...; :data:`OPERATIONS` lists them) and gets
plain rows back. Two backends come with durable-sdk, chosen by URL (see
:func:`durable.configure`): SQLite (a file, or ``:memory:``) and PostgreSQL.
Another database can be plugged in by implementing :class:`Backend`; the
suite in :mod:`durable.testing.contract` checks an implementation.

Example, speaking the contract directly (tools and tests)::

    backend = runtime.backend
    row = backend.run_sync(backend.get_workflow, "report-1")
"""

from durable._records import (
    CheckSteps,
    Counts,
    EventGone,
    EventRow,
    NewWorkflow,
    Owner,
    Parts,
    Placement,
    QueueCounts,
    QueueRow,
    ScheduleRow,
    SessionEntry,
    SessionSummary,
    StepAttemptRow,
    StepHistoryRow,
    StepRow,
    StepStatus,
    StreamRow,
    StreamSummary,
    WorkflowQuery,
    WorkflowRow,
    WorkflowStatus,
)
from durable.backends._base import OPERATIONS, Backend, Operation, Write, atomic, is_atomic
from durable.backends._limits import SCHEMA_VERSION
from durable.backends._notify import Notifier, Subscription

__all__ = [
    "OPERATIONS",
    "SCHEMA_VERSION",
    "Backend",
    "CheckSteps",
    "Counts",
    "EventGone",
    "EventRow",
    "Placement",
    "QueueCounts",
    "QueueRow",
    "ScheduleRow",
    "SessionEntry",
    "SessionSummary",
    "StreamRow",
    "StreamSummary",
    "NewWorkflow",
    "Notifier",
    "Operation",
    "Owner",
    "Parts",
    "StepAttemptRow",
    "StepHistoryRow",
    "StepRow",
    "StepStatus",
    "Subscription",
    "WorkflowQuery",
    "WorkflowRow",
    "WorkflowStatus",
    "Write",
    "atomic",
    "is_atomic",
]
