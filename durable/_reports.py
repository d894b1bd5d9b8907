"""What the runtime reports: committed steps, store health, recovery."""

from __future__ import annotations

from dataclasses import dataclass, field

from durable._records import StepStatus


@dataclass(frozen=True)
class StepInfo:
    """A committed step record, with the failed attempts that preceded it."""

    position: int
    name: str
    status: StepStatus
    tries: int
    started_at: float
    finished_at: float
    payload_bytes: int
    failed_attempts: tuple[str, ...] = field(default=())
    """``"ErrorType: message"`` of each retried failure, oldest first."""


@dataclass(frozen=True)
class HealthReport:
    """What :meth:`Runtime.health_check` found."""

    ok: bool
    """True when the store answered."""
    backend: str
    """``"sqlite"`` or ``"postgresql"``."""
    url: str
    """The store's URL, with any password masked."""
    server_version: str | None
    """The SQLite library's or the PostgreSQL server's version."""
    schema_version: int
    """The durable schema version in use."""
    latency_ms: float | None
    """Time of one round trip to the store, in milliseconds."""
    error: str | None = None
    """Why the store did not answer, when it did not."""

    @classmethod
    def unavailable(cls, url: str, error: BaseException) -> HealthReport:
        """The report on a store at ``url`` (password masked) that did not answer."""
        from durable.backends import SCHEMA_VERSION

        return cls(
            ok=False,
            backend=url.split(":", 1)[0].split("+", 1)[0],
            url=url,
            server_version=None,
            schema_version=SCHEMA_VERSION,
            latency_ms=None,
            error=str(error),
        )


@dataclass
class RecoveryReport:
    """What :meth:`Runtime.recover` did."""

    resumed: list[str] = field(default_factory=list)
    """Ids of workflows that were resumed and finished."""
    failed: dict[str, BaseException] = field(default_factory=dict)
    """Ids of resumed workflows that raised, with their error."""
    unknown: dict[str, str] = field(default_factory=dict)
    """Ids of incomplete workflows whose name no imported code registers."""
    suspended: list[str] = field(default_factory=list)
    """Ids of resumed workflows that suspended themselves again to wait."""
