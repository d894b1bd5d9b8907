"""What an operation runs its statements on: a transaction, and what a statement gives back."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeAlias

if TYPE_CHECKING:
    import sqlalchemy as sa

    from durable.backends._compiled import Entry

    # A statement in SQLAlchemy Core, or one compiled ahead of time (_precompiled).
    Statement: TypeAlias = sa.Executable | Entry


class Result(NamedTuple):
    """What an executed statement gives back."""

    rowcount: int
    rows: Sequence[Any]


class Tx(Protocol):
    """Executes statements inside one transaction (or in autocommit)."""

    topics: list[str]
    """Topics to notify in this process once the transaction commits."""
    done: list[Callable[[], object]]
    """What to do once the transaction commits (remove the files of deleted rows)."""

    async def execute(self, stmt: Statement, params: dict[str, Any] | None = None) -> Result:
        """Execute ``stmt`` with ``params`` bound by name (without the ``p_`` prefix)."""
        ...
