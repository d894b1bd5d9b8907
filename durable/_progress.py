"""``durable.progress(items)``: a loop's progress that knows which items were replayed.

In a workflow that handles many items, a resumed run replays the items
whose steps are recorded in an instant, then goes on with the rest. The
progress says so: "replayed 370 of 500 (saved 6 min)", instead of a bar that
starts at zero and races. The bar is tqdm's (its notebook widget in a
kernel), drawn only where a person looks: a notebook, or a terminal on
stderr; never in a pipe or a CI log. Without tqdm (the ``progress`` extra),
or with ``bar=False``, nothing is drawn and the counts are still kept.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

from durable._engine import _context
from durable._engine._core import WorkflowContext

T = TypeVar("T")


class Progress(Generic[T]):
    """An iteration over items, counting those replayed from records and those run.

    Iterate it like the items. Its counts are there during and after the loop.

    Example::

        @durable.durable_workflow
        async def enrich(rows: list[int]) -> None:
            for row in durable.progress(rows, desc="enrich"):
                await enrich_row(row)
    """

    def __init__(
        self,
        items: Iterable[T],
        *,
        total: int | None = None,
        desc: str | None = None,
        bar: bool | None = None,
    ) -> None:
        self._items = items
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        self.total = total
        """How many items there are, if known."""
        self.desc = desc
        self.replayed = 0
        """Items whose every step was replayed from its record."""
        self.ran = 0
        """Items that ran at least one step (or outside a workflow: every item)."""
        self.saved_seconds = 0.0
        """What the replayed steps took when they ran (the time a resume saved)."""
        self._bar = _new_bar(total, desc) if bar is not False and _visible(bar) else None

    @property
    def done(self) -> int:
        """Items handled so far."""
        return self.replayed + self.ran

    def __repr__(self) -> str:
        of = f" of {self.total}" if self.total is not None else ""
        return f"<durable.progress {self.done}{of}: replayed {self.replayed}, ran {self.ran}>"

    def __iter__(self) -> Iterator[T]:
        try:
            for item in self._items:
                ctx = _workflow()
                start = ctx.next_position if ctx is not None else 0
                yield item
                self._count(ctx, start)
        finally:
            if self._bar is not None:
                self._bar.close()

    def _count(self, ctx: WorkflowContext | None, start: int) -> None:
        """Count one item: replayed if it called steps and every one was recorded."""
        positions = range(start, ctx.next_position) if ctx is not None else range(0)
        records = [ctx.recorded.get(p) for p in positions] if ctx is not None else []
        if records and all(r is not None for r in records):
            self.replayed += 1
            self.saved_seconds += sum(
                max(0.0, r.finished_at - r.started_at) for r in records if r is not None
            )
        else:
            self.ran += 1
        if self._bar is not None:
            self._bar.update(1)
            if self.replayed:
                self._bar.set_postfix_str(self._replayed_text(), refresh=False)

    def _replayed_text(self) -> str:
        of = f" of {self.total}" if self.total is not None else ""
        return f"replayed {self.replayed}{of} (saved {_duration(self.saved_seconds)})"


def progress(
    items: Iterable[T],
    *,
    total: int | None = None,
    desc: str | None = None,
    bar: bool | None = None,
) -> Progress[T]:
    """Iterate ``items`` with a progress bar that counts the items a resume replayed.

    Args:
        items: What the loop handles (its length is the total, if it has one).
        total: The number of items, when ``items`` has no length.
        desc: The bar's label.
        bar: ``True`` draws the bar wherever stderr goes, ``False`` never;
            by default only in a notebook or on a terminal (needs tqdm: the
            ``progress`` extra).

    Example::

        for row in durable.progress(rows, desc="enrich"):
            await enrich_row(row)        # a step: replayed on a resume
    """
    return Progress(items, total=total, desc=desc, bar=bar)


def _workflow() -> WorkflowContext | None:
    ctx = _context.current.get()
    return ctx if isinstance(ctx, WorkflowContext) else None


def _visible(bar: bool | None) -> bool:
    """Whether a person sees the bar: asked for, or a notebook, or a terminal (never CI)."""
    if bar:
        return True
    if os.environ.get("CI"):
        return False
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if getattr(shell, "kernel", None) is not None:
        return True
    return sys.stderr.isatty()


def _new_bar(total: int | None, desc: str | None) -> Any:
    try:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]
    except ImportError:  # the "progress" extra: counting goes on without a bar
        return None
    return tqdm(total=total, desc=desc, dynamic_ncols=True)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"
