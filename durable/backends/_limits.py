"""What a value must be to reach the store: one check for every id, name, key and number.

Every identifier, name and number a user passes that ends up in a column (or
in a query's parameters) is checked here, at the public entry point, before
anything is written, so that the same bad input gets the same error on every
backend. Without it, SQLite stored what PostgreSQL refused (a NUL character),
both raised their own raw errors (a lone surrogate, an integer too large), or
the error came after the workflow had started and was recorded as failed.

The rules:

- text: a ``str``, not empty, at most as many characters as its column holds
  (PostgreSQL's ``VARCHAR(n)`` counts characters; SQLite does not check), with
  no NUL character (PostgreSQL text cannot hold one) and no unpaired surrogate
  (it has no UTF-8 form, so no database can store it);
- integers: an ``int`` (not a bool) within what its column holds: a 32-bit
  ``INTEGER`` for priorities and limits compared with one, a 64-bit one for row
  counts (``LIMIT``).

Workflow ids raise :class:`InvalidWorkflowIdError`; every other value
:class:`ConfigurationError`. Both are ``ValueError`` subclasses too.

The column sizes are defined here and :mod:`durable.backends._schema` builds
its columns from them, so the checks and the schema cannot drift apart
(``tests/test_limits.py`` checks that as well).
"""

from __future__ import annotations

from durable._errors import ConfigurationError, DurableError

SCHEMA_VERSION = 10
"""The version of the tables' layout this durable-sdk reads and writes.

Version 9 indexes workflows by creation time and a workflow's superseded step
records, and lets a SQLite store's step records refer to payload files beside
it (``_payload_files``): an older durable-sdk would read such a reference as a
damaged payload, so it refuses the store instead. Version 10 drops the index of
workflows by status alone (``ix_durable_workflows_queue`` starts with status).
An older durable-sdk reads and writes a version 10 store correctly, only its
searches by status use the other index; it refuses it all the same, as it
refuses every newer version."""

# Column sizes, in characters.
WORKFLOW_ID_CHARS = 255
"""``workflow_id`` columns (and ``parent_id``)."""
NAME_COLUMN_CHARS = 512
"""Workflow and step names (``durable_workflows.name``, ``durable_steps.name``)."""
QUEUE_CHARS = 64
"""``durable_workflows.queue``."""
DEFAULT_QUEUE = "default"
"""The queue ``enqueue`` and schedules use unless told another."""
EVENT_KEY_CHARS = 255
"""``durable_events.key`` and ``idempotency_key``."""
WAITING_FOR_CHARS = 512
"""``durable_workflows.waiting_for``: an event key, or ``child:`` and a workflow id."""

# What the API accepts, within those columns.
NAME_CHARS = 500
"""A workflow or step name: its column, less room for what durable adds to names."""
SNAPSHOT_CHARS = 200
"""A snapshot name: it is also recorded in ``forked_from`` as ``<id>@<snapshot>`` (512)."""
INT32 = (-(2**31), 2**31 - 1)
"""An ``INTEGER`` column on PostgreSQL (``int4``); SQLite holds more."""
INT64_MAX = 2**63 - 1
"""The largest ``LIMIT`` either database takes."""


def check_text(
    value: object,
    what: str,
    max_chars: int,
    *,
    error: type[DurableError] = ConfigurationError,
    blank_ok: bool = True,
) -> str:
    """``value`` if it can be stored in a column of ``max_chars`` characters, else ``error``.

    Args:
        value: What the user passed.
        what: Its name in the message ("queue name").
        max_chars: The most characters it may have.
        error: The error class to raise.
        blank_ok: Whether only whitespace is acceptable.
    """
    if not isinstance(value, str):
        problem = f"{what} must be a str, not {type(value).__name__} ({value!r})"
    elif not value or (not blank_ok and not value.strip()):
        problem = f"{what} must not be empty{'' if not value else ' or only whitespace'}"
    elif len(value) > max_chars:
        problem = (
            f"{what} {value[:40]!r}... is {len(value)} characters long; the limit is {max_chars}"
        )
    elif "\x00" in value:
        problem = (
            f"{what} {value!r} contains a NUL character, which PostgreSQL cannot store "
            "(and SQLite would store unlike it)"
        )
    elif not _encodable(value):
        problem = (
            f"{what} {value!r} contains an unpaired surrogate, which has no UTF-8 form "
            "(was it decoded from bytes with errors='surrogateescape'?)"
        )
    else:
        return value
    rule = (
        f"{what} must be a non-empty str of at most {max_chars} characters, "
        "with no NUL character or unpaired surrogate"
    )
    raise error(f"{problem}; {rule}", **{_field(what): value})


def check_optional_text(
    value: object, what: str, max_chars: int, *, blank_ok: bool = True
) -> str | None:
    """:func:`check_text`, or None for None (a filter not given)."""
    return None if value is None else check_text(value, what, max_chars, blank_ok=blank_ok)


def check_int(value: object, what: str, *, minimum: int = INT32[0], maximum: int = INT32[1]) -> int:
    """``value`` if it is an int in ``[minimum, maximum]``, else ConfigurationError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(
            f"{what} must be an int, not {type(value).__name__} ({value!r})",
            **{_field(what): value},
        )
    if not minimum <= value <= maximum:
        raise ConfigurationError(
            f"{what} must be an int from {minimum:,} to {maximum:,} (the range the store "
            f"holds), not {value!r}",
            **{_field(what): value},
        )
    return value


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _field(what: str) -> str:
    """The error's attribute that holds the value ("queue name": ``queue_name``)."""
    field = what.replace(" ", "_")
    return field if field.isidentifier() else "value"
