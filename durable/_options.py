"""``durable.Options``: every setting of a runtime, in one frozen, validated object."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from durable._durations import duration
from durable._errors import ConfigurationError
from durable._serialization import (
    DEFAULT_COMPRESS_THRESHOLD,
    DEFAULT_MAX_PAYLOAD_BYTES,
    check_bytes,
)
from durable.backends._url import check_durability

Durability = Literal["normal", "full", "batched"]


@dataclasses.dataclass(frozen=True, init=False)
class Options:
    """The settings of a :class:`durable.Runtime`, validated once, on construction.

    Every field is keyword-only and has a default (see ``__init__``); ``Runtime(url, **fields)``
    and ``durable.configure(url, **fields)`` build one for you. Keep one to
    open several runtimes alike, or derive a variant with :meth:`replace`.
    A bad value raises ConfigurationError naming the field.

    Example::

        options = durable.Options(lease_seconds=60, durability="full")
        runtime = durable.Runtime("sqlite:///jobs.db", options=options)
        strict = options.replace(secret_key=key)
    """

    lease_seconds: float
    """How long (seconds, or a timedelta) a workflow's owner is trusted
    without a heartbeat by processes on other hosts. Owners on the same host
    are checked directly, so a crash there is seen at once."""

    poll_interval: float
    """The longest pause (seconds) between two looks at a workflow that
    another live process is running, while waiting for its result."""

    event_poll_interval: float
    """How often (seconds) a workflow waiting for an event looks for it when
    no notification comes (SQLite has none; PostgreSQL notifies, and this is
    the fallback)."""

    max_recoveries: int
    """Resumes in a row after the owner died before the workflow is
    quarantined (never resumed again by itself, until resumed by hand)."""

    durability: Durability
    """``"normal"``: a step is acknowledged once its record is committed,
    surviving a crash of the process. ``"full"``: every commit is also synced
    to disk on SQLite, surviving a power loss. ``"batched"``: commits may be
    acknowledged before they reach the disk; a crash of the machine (not of
    the process) can lose the last ones, which then simply run again."""

    secret_key: str | bytes | None
    """Sign every stored payload (HMAC-SHA256) and refuse unsigned or tampered
    ones, never unpickling them. ``None`` reads ``$DURABLE_SECRET_KEY``; no key
    there, no signing. At least 16 bytes."""

    old_secret_keys: tuple[str | bytes, ...] | None
    """Former keys still accepted for reading (rotation). ``None`` reads
    ``$DURABLE_OLD_SECRET_KEYS`` (comma-separated)."""

    compress_threshold: int | None
    """Payloads from this size (bytes) are compressed when they compress well
    (zstd if installed, else zlib). ``None`` turns compression off."""

    max_payload_bytes: int | None
    """Refuse to store larger payloads (PayloadTooLargeError, before anything
    is written). ``None``: no limit beyond the store's own."""

    # A hand-written __init__ because the durations take timedelta too, stored as seconds.
    def __init__(
        self,
        *,
        lease_seconds: float | dt.timedelta = 30.0,
        poll_interval: float | dt.timedelta = 0.5,
        event_poll_interval: float | dt.timedelta = 0.1,
        max_recoveries: int = 10,
        durability: Durability = "normal",
        secret_key: str | bytes | None = None,
        old_secret_keys: Sequence[str | bytes] | None = None,
        compress_threshold: int | None = DEFAULT_COMPRESS_THRESHOLD,
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        given = dict(locals())
        del given["self"]
        for name, value in given.items():
            object.__setattr__(self, name, value)
        self._validate()

    def _validate(self) -> None:
        for name in ("lease_seconds", "poll_interval", "event_poll_interval"):
            value: float | dt.timedelta = getattr(self, name)
            object.__setattr__(self, name, float(duration(value, name, positive=True)))
        if isinstance(self.max_recoveries, bool) or not isinstance(self.max_recoveries, int):
            raise ConfigurationError(f"max_recoveries must be an int, not {self.max_recoveries!r}")
        if self.max_recoveries < 0:
            raise ConfigurationError(f"max_recoveries must be >= 0, not {self.max_recoveries}")
        check_durability(self.durability)
        check_bytes("compress_threshold", self.compress_threshold)
        check_bytes("max_payload_bytes", self.max_payload_bytes)
        if self.secret_key is not None and not isinstance(self.secret_key, (str, bytes)):
            raise ConfigurationError(
                f"secret_key must be a str or bytes, not {type(self.secret_key).__name__}"
            )
        old = self.old_secret_keys
        if old is not None:
            if isinstance(old, (str, bytes)) or not isinstance(old, Sequence):
                raise ConfigurationError(
                    "old_secret_keys must be a list of keys (str or bytes), not "
                    f"{type(old).__name__}"
                )
            if not all(isinstance(k, (str, bytes)) for k in old):
                raise ConfigurationError("old_secret_keys must hold only str or bytes keys")
            object.__setattr__(self, "old_secret_keys", tuple(old))

    def replace(self, **changes: Any) -> Options:
        """A copy with ``changes`` applied, validated like a new one."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(unknown)}; the options are "
                f"{', '.join(f.name for f in dataclasses.fields(self))}"
            )
        current = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return Options(**{**current, **changes})

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("secret_key", "old_secret_keys") and value:
                value = "<hidden>"
            elif isinstance(value, str):
                value = repr(value)
            shown.append(f"{f.name}={value}")
        return f"Options({', '.join(shown)})"


OPTION_DEFAULTS: dict[str, Any] = {
    f.name: getattr(Options(), f.name) for f in dataclasses.fields(Options)
}
"""Each option's default, as given (before validation: None stays None)."""
