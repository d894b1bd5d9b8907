"""The one error hierarchy of durable.

Every error the SDK raises on purpose derives from :class:`DurableError`, and
every message says what was wrong and what to do about it::

    DurableError
    ├── ConfigurationError          (also a ValueError)
    │   └── SchemaVersionError
    ├── BackendUnavailableError
    ├── RuntimeClosedError
    ├── InvalidWorkflowIdError      (also a ValueError)
    ├── WorkflowConflictError
    ├── NonDeterminismError
    ├── CodeChangedError
    ├── SerializationError          (also a TypeError)
    ├── PayloadIntegrityError
    ├── PayloadTooLargeError
    ├── WorkflowAlreadyRunningError
    ├── WorkflowCancelledError
    │   └── WorkflowTimeoutError    (also a TimeoutError)
    ├── StepTimeoutError            (also a TimeoutError)
    ├── WorkflowSuspendedError
    ├── WorkflowQuarantinedError
    ├── EventTimeoutError           (also a TimeoutError)
    ├── WorkflowNotFoundError       (also a LookupError)
    ├── NotPublishedError           (also a LookupError)
    ├── OwnershipLostError
    ├── NotInWorkflowError
    └── RecordedError

Errors keep their keyword arguments so that they pickle (a workflow's error is
itself recorded with cloudpickle, and may be one of these).
"""

from __future__ import annotations

from typing import Any


class DurableError(Exception):
    """Base class of every error raised by durable.

    Catch this to handle any failure of the SDK itself (as opposed to an
    exception raised by your own step or workflow code, which durable records
    and re-raises unchanged).
    """

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        for key, value in details.items():
            setattr(self, key, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.details))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[DurableError], message: str, details: dict[str, Any]) -> DurableError:
    error = cls.__new__(cls)
    DurableError.__init__(error, message, **details)
    return error


class ConfigurationError(DurableError, ValueError):
    """The configuration (a URL, an option, a decorator argument) is invalid."""


class SchemaVersionError(ConfigurationError):
    """The database was written by a newer durable-sdk than this one.

    Nothing is changed in such a database: upgrade durable-sdk to open it.
    """


class BackendUnavailableError(DurableError):
    """The storage backend could not be reached or opened."""


class RuntimeClosedError(DurableError):
    """The runtime was closed (``Runtime.close()``, the end of ``with runtime:``).

    Work that was running in other threads when it closed gets this at its
    next use of the store; open a new Runtime to go on.
    """


class InvalidWorkflowIdError(DurableError, ValueError):
    """A workflow id is empty, too long or contains a NUL character."""


class WorkflowConflictError(DurableError):
    """A workflow id is already recorded with other arguments or another workflow.

    Attributes:
        workflow_id: The id that is in conflict.
    """


class WorkflowDeduplicatedError(DurableError):
    """An enqueue's ``dedup_id`` is taken by a workflow of the queue with work left.

    Nothing new is enqueued. ``wf.options(dedup_id=..., on_duplicate="return")``
    returns the pending workflow's handle instead.

    Attributes:
        workflow_id: The pending workflow that has the dedup id.
        dedup_id: The dedup id.
        queue: The queue.
    """


class NonDeterminismError(DurableError):
    """On replay, the code called a different step than the one recorded.

    Attributes:
        workflow_id: The workflow being replayed.
        position: The step position at which the recorded and the called step differ.
        expected: The step name recorded at that position.
        found: The step name the code called there now.
    """


class CodeChangedError(DurableError):
    """A step's code changed since its record was written (``on_code_change="error"``).

    Attributes:
        workflow_id: The workflow being resumed.
        position: The step's position.
        step: The step's name.
    """


class CodeChangedWarning(UserWarning):
    """A step's code changed since its record was written; the record is replayed.

    Issued under ``on_code_change="reuse"`` (the default outside notebooks).
    """


class SerializationError(DurableError, TypeError):
    """A step result, workflow argument or result could not be pickled."""


class PayloadIntegrityError(DurableError):
    """A stored payload is unreadable: corrupt, truncated or of an unknown format.

    Such a payload is never unpickled.
    """


class PayloadTooLargeError(DurableError):
    """A value to store is larger than the configured ``max_payload_bytes``.

    Attributes:
        what: Which value (the result of which step).
        size: Its size once serialised, in bytes.
        limit: The configured limit.
    """


class WorkflowAlreadyRunningError(DurableError):
    """The workflow is running under a live owner and the caller chose not to wait."""


class WorkflowCancelledError(DurableError):
    """The workflow was cancelled; it stops at its next step boundary, with its children.

    It is not resumed by itself: :meth:`durable.Store.resume` (``durable
    resume``) goes on with it from its records, when asked.
    """


class WorkflowTimeoutError(WorkflowCancelledError, TimeoutError):
    """The workflow ran past its deadline (``timeout=``) and was cancelled there.

    Its deadline is recorded when it first starts and survives resumes, so a
    workflow resumed after a crash gets only what was left. The error is
    recorded as the cancelled workflow's outcome: a later call raises it too.

    Attributes:
        workflow_id: The workflow that timed out.
        deadline: When its time was up (Unix time).
        timeout: Its timeout in seconds, or None when it inherited its
            parent's deadline.
    """


class QueueTimeoutError(WorkflowTimeoutError):
    """An enqueued workflow waited in its queue past its ``queue_timeout=`` and was cancelled.

    No worker started it in time (the queue was paused, full, rate limited,
    or had no worker). It never ran: enqueue it again, or give the queue
    more room. Recorded as its outcome, so its handle's ``result()`` raises it.

    Attributes:
        workflow_id: The workflow that waited.
        queue: Its queue.
        start_by: When its time to start was up (Unix time).
    """


class StepTimeoutError(DurableError, TimeoutError):
    """An attempt of a step ran longer than the step's ``timeout=``.

    An async step's body is cancelled at its timeout; a sync step cannot be
    interrupted, so one that returns late has its result discarded. Either
    way the attempt fails with this error, retried like any other if the
    step's ``retry_on`` allows (the default retries every Exception).

    Attributes:
        workflow_id: The workflow the step belongs to.
        step: The step's name.
        position: Its position in the workflow.
        timeout: The step's timeout, in seconds.
    """


class WorkflowSuspendedError(DurableError):
    """The workflow suspended itself to wait (``suspend=True``); it was not finished here.

    Its process may exit: :func:`durable.recover` or a worker resumes it
    once its timer fires or the awaited event arrives; calling it again
    resumes it at once (and waits again if it must).

    Attributes:
        workflow_id: The suspended workflow.
        wake_at: When its timer fires (Unix time), or None.
        waiting_for: The event key it waits for, or None.
    """


class WorkflowQuarantinedError(DurableError):
    """The workflow crashed its executors on too many recoveries and is no longer resumed.

    Look at why (``durable show ID``), fix it, then resume it by hand:
    :meth:`durable.Runtime.resume` or ``durable resume ID``.

    Attributes:
        workflow_id: The quarantined workflow.
    """


class EventTimeoutError(DurableError, TimeoutError):
    """:func:`durable.wait_for_event` reached its timeout before the event arrived.

    The timeout is recorded: a resumed workflow raises it again at the same
    point, even if the event arrives later.

    Attributes:
        workflow_id: The waiting workflow.
        key: The event key it waited for.
        timeout: The timeout, in seconds.
    """


class WorkflowNotFoundError(DurableError, LookupError):
    """No workflow (or no snapshot) of that name is in the store."""


class ScheduleNotFoundError(DurableError, LookupError):
    """No schedule of that name is in the store (``durable schedule list`` shows them)."""


class NotPublishedError(DurableError, LookupError):
    """A workflow has not published the key asked for, in time or at all.

    Raised by :func:`durable.get_published` when its timeout passes, or the
    workflow finished without publishing the key, and no ``default`` was given.
    """


class OwnershipLostError(DurableError):
    """Another executor took the workflow over; this one may no longer write to it."""


class NotInWorkflowError(DurableError):
    """A workflow-only operation was called outside a running workflow."""


class RecordedError(DurableError):
    """Stands in for a recorded exception that cannot be rebuilt as itself.

    Raised on replay when the original exception could not be pickled (or can
    no longer be unpickled, for instance because its class was removed).

    Attributes:
        type_name: The qualified name of the original exception class.
        error_message: ``str()`` of the original exception.
        traceback_text: The formatted traceback recorded when it was raised.
    """
