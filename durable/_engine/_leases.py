"""Leases: which calls here hold which workflows, whether an owner lives, and the heartbeat."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from durable._aio import block_for
from durable._engine._core import (
    Part,
    log,
    log_extra,
)
from durable._owner import current_owner, is_alive_locally, is_local
from durable._records import (
    WorkflowRow,
)
from durable.backends._notify import event_topic

if TYPE_CHECKING:
    from durable._engine._core import Engine


# Which workflows a call in this process runs right now, by store and id:
# process-wide, so that two runtimes on one store never take a workflow from
# each other.
_HELD: dict[tuple[str, str], object] = {}
_HELD_LOCK = threading.Lock()
# Claims from a queue in progress in this process: until a claimed row is
# held, its owner (this process) must not look dead to a recovery here.
_CLAIMING = 0


class Leases(Part):
    """The workflows this runtime holds, their leases, and the heartbeat that renews them."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._leases: dict[str, int] = {}
        self._heartbeat: threading.Thread | None = None
        self._closing = threading.Event()

    @property
    def held(self) -> dict[str, int]:
        """The workflows this runtime owns now, with their epochs (a copy)."""
        return dict(self._leases)

    def drop(self, workflow_id: str) -> None:
        """Stop renewing a workflow's lease (it finished, suspended or was released)."""
        self._leases.pop(workflow_id, None)

    def stop(self) -> None:
        """Stop the heartbeat (closing): its renewal in progress, if any, finishes."""
        self._closing.set()
        heartbeat = self._heartbeat
        if heartbeat is not None and heartbeat is not threading.current_thread():
            # Its renewal in progress, if any, is among the operations that
            # the backend's close waits for (a few seconds at most).
            heartbeat.join(timeout=0.5)

    def try_hold(self, workflow_id: str, token: object) -> bool:
        key = (self.engine.backend.identity, workflow_id)
        with _HELD_LOCK:
            if key in _HELD:
                return False
            _HELD[key] = token
            return True

    def holds(self, workflow_id: str, token: object) -> bool:
        """Whether ``token`` holds the workflow here."""
        with _HELD_LOCK:
            return _HELD.get((self.engine.backend.identity, workflow_id)) is token

    def release(self, workflow_id: str, token: object) -> None:
        key = (self.engine.backend.identity, workflow_id)
        with _HELD_LOCK:
            if _HELD.get(key) is token:
                del _HELD[key]

    @contextlib.contextmanager
    def claiming(self) -> Iterator[None]:
        """A claim from a queue, and the holds taken on what it claimed, in progress.

        Meanwhile rows this process owns and holds nothing of count as alive:
        a recovery here must not take what a worker here has just claimed.
        """
        global _CLAIMING
        with _HELD_LOCK:
            _CLAIMING += 1
        try:
            yield
        finally:
            with _HELD_LOCK:
                _CLAIMING -= 1

    def held_here(self, workflow_id: str) -> bool:
        with _HELD_LOCK:
            return (self.engine.backend.identity, workflow_id) in _HELD

    def owner_alive(self, row: WorkflowRow, holding: bool = False) -> bool:
        owner = row.owner
        if owner is None:
            return False
        if owner == current_owner():
            # This very process (whichever runtime of it): alive only if a
            # call here runs it now; an in-process crash leaves the row owned
            # by a live process.
            # A row a worker here is claiming counts as held until its hold is taken.
            return not holding and (self.held_here(row.workflow_id) or _CLAIMING > 0)
        leased = row.lease_expires_at is not None and row.lease_expires_at > row.db_now
        if is_local(owner):
            # A live process that abandoned the workflow (a cancelled task)
            # stops renewing its lease: then it counts as dead too.
            return leased and is_alive_locally(owner)
        return leased

    def hold(self, workflow_id: str, epoch: int) -> None:
        self._leases[workflow_id] = epoch
        if self._heartbeat is None and not self._closing.is_set():
            self._heartbeat = threading.Thread(
                target=self._renew, name="durable-heartbeat", daemon=True
            )
            self._heartbeat.start()

    def _renew(self) -> None:
        while not self._closing.wait(block_for(self.engine.options.lease_seconds / 3)):
            leases = dict(self._leases)
            if not leases:
                continue
            try:
                missed = self.engine.backend.run_sync(
                    self.engine.backend.renew_leases, leases, self.engine.options.lease_seconds
                )
            except Exception:  # the next beat tries again; the lease has slack for it
                log.warning("could not renew workflow leases", exc_info=True)
                continue
            for workflow_id in missed:
                # Cancelled (or taken over) from another process, which SQLite
                # cannot notify: its owner looks before its next step.
                self.engine.backend.notifier.notify(event_topic(workflow_id))
                log.debug(
                    "workflow %r: its lease was not renewed (cancelled or taken over?); "
                    "it looks before its next step",
                    workflow_id,
                    extra=log_extra(workflow_id),
                )
