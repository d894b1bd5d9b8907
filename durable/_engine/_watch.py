"""Who watches steps as they run: a live view in a notebook or a terminal.

Watchers are called in the step's own task, synchronously, for every step
of every workflow of the engine while they watch; with none (the usual
case) a step pays one test of an empty list. A watcher that raises is
dropped from that event, never from the workflow.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Literal

log = logging.getLogger("durable")

StepEventKind = Literal["start", "replayed", "done", "failed"]


class StepEvent:
    """A step began, was replayed from its record, finished, or failed an attempt.

    A plain class, not a dataclass: it is defined on every ``import durable``.
    """

    __slots__ = ("error", "kind", "name", "position", "seconds", "workflow_id")

    def __init__(
        self,
        kind: StepEventKind,
        workflow_id: str,
        name: str,
        position: int,
        seconds: float = 0.0,
        error: str | None = None,
    ) -> None:
        self.kind, self.workflow_id, self.name, self.position = kind, workflow_id, name, position
        self.seconds = seconds
        """How long it ran (replayed: how long it ran when recorded: the time saved)."""
        self.error = error


Watcher = Callable[[StepEvent], None]


class Watchers:
    """The watchers of one engine's steps."""

    def __init__(self) -> None:
        self.active: list[Watcher] = []

    def tell(self, event: StepEvent) -> None:
        for watcher in list(self.active):
            try:
                watcher(event)
            except Exception:  # a display must never break a workflow
                log.debug("a step watcher failed", exc_info=True)

    @contextlib.contextmanager
    def watching(self, watcher: Watcher) -> Iterator[None]:
        self.active.append(watcher)
        try:
            yield
        finally:
            self.active.remove(watcher)
