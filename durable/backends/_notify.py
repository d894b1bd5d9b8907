"""Wake-ups for waiters: an event sent, a workflow enqueued or cancelled, a wait over.

A waiter subscribes to a topic (``event:<workflow id>``, ``queue``, ``due``)
before it looks in the store, then sleeps until notified or until its poll
interval ends, and looks again. A notification is only a hint to look now:
the store is the truth, so a lost notification costs at most one poll interval.

A wake is either a notification of the waiter's topic or, from SQLite's file
watcher, a hint that something was committed (which may or may not concern
it): :meth:`Subscription.take_notified` tells them apart, for waiters whose
look is costly or who back their polling off while nothing comes.

Sends in this process notify directly; PostgreSQL also relays them between
processes (LISTEN/NOTIFY, see ``_postgres``); SQLite files watch their data
version (``_filewatch``).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from durable._aio import block_for
from durable.backends._forks import renew_in_children

if TYPE_CHECKING:
    import asyncio


class Subscription:
    """One waiter's interest in a topic; remembers a wake-up that came early."""

    __slots__ = ("_async", "_loop", "_notified", "_sync", "_woken", "topic")

    def __init__(self, topic: str) -> None:
        self.topic = topic
        # A flag for take(), which runs before every step; the events that
        # wait() and await_() block on are made only by a waiter that blocks.
        self._woken = False
        self._notified = False
        self._sync: threading.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async: asyncio.Event | None = None

    def wake(self, hint: bool = False) -> None:
        """Wake the waiter: notified of its topic, or (``hint``) told to look in case."""
        self._woken = True
        if not hint:
            self._notified = True
        sync = self._sync
        if sync is not None:
            sync.set()
        if self._loop is not None and self._async is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed
                self._loop.call_soon_threadsafe(self._async.set)

    def take(self) -> bool:
        """True (once) if woken since the last look; never blocks."""
        if not self._woken:
            return False
        self._woken = False
        if self._sync is not None:
            self._sync.clear()
        return True

    def take_notified(self) -> bool:
        """True (once) if its topic was notified since the last call, not only hinted."""
        # Cleared only once seen set: a notification from another thread between
        # the read and the write then counts now, never for nothing.
        if not self._notified:
            return False
        self._notified = False
        return True

    def wait(self, timeout: float) -> bool:
        """Block until woken or ``timeout`` seconds pass; True if woken."""
        if self._sync is None:
            self._sync = threading.Event()
        # A wake before the event existed set only the flag; one after it sets both.
        woken = self._woken or self._sync.wait(block_for(timeout))  # callers look again
        self._sync.clear()
        self._woken = False
        return woken

    async def await_(self, timeout: float) -> bool:
        """Suspend until woken or ``timeout`` seconds pass; True if woken."""
        import asyncio

        if self._async is None:
            self._loop = asyncio.get_running_loop()
            self._async = asyncio.Event()
            if self._woken:
                self._async.set()
        try:
            await asyncio.wait_for(self._async.wait(), max(timeout, 0.0))
            woken = True
        except asyncio.TimeoutError:
            woken = False
        self._async.clear()
        self._woken = False
        if self._sync is not None:
            self._sync.clear()
        return woken


class Notifier:
    """Topics and their subscribers, in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = {}
        renew_in_children(self)

    def after_fork(self) -> None:
        """In a forked child: a thread of the parent may have held the lock at the fork."""
        self._lock = threading.Lock()

    def subscribe(self, topic: str) -> _Subscribed:
        """Be woken by notifications of ``topic`` while in the block (``with ... as sub``)."""
        return _Subscribed(self, topic)

    def add(self, subscription: Subscription) -> None:
        """Begin waking ``subscription`` (what :meth:`subscribe`'s block does on entry)."""
        with self._lock:
            self._subscribers.setdefault(subscription.topic, set()).add(subscription)
        self._listening()

    def remove(self, subscription: Subscription) -> None:
        """Stop waking ``subscription`` (what :meth:`subscribe`'s block does on exit)."""
        topic = subscription.topic
        with self._lock:
            found = self._subscribers.get(topic)
            if found is not None:
                found.discard(subscription)
                if not found:
                    del self._subscribers[topic]

    def notify(self, topic: str) -> None:
        """Wake every subscriber of ``topic``."""
        with self._lock:
            found = list(self._subscribers.get(topic, ()))
        for subscription in found:
            subscription.wake()

    def notify_all(self, hint: bool = False) -> None:
        """Wake every subscriber: notifications may have been missed, or (``hint``) may not."""
        with self._lock:
            found = [sub for subs in self._subscribers.values() for sub in subs]
        for subscription in found:
            subscription.wake(hint)

    def has_subscribers(self, topic: str | None = None) -> bool:
        """Whether anything in this process waits for a notification (of ``topic``) now."""
        with self._lock:
            return bool(self._subscribers if topic is None else self._subscribers.get(topic))

    def quiesce(self) -> None:
        """Hook: a store of this notifier is closing; stop relaying if nothing waits."""

    def _listening(self) -> None:
        """Hook: a backend that relays notifications between processes starts here."""


class _Subscribed:
    """The block of :meth:`Notifier.subscribe`.

    A class, not a ``contextlib.contextmanager``: every workflow call enters
    one, and a generator's block costs several calls more, and an exception
    (its StopIteration) on the way out.
    """

    __slots__ = ("_notifier", "_subscription")

    def __init__(self, notifier: Notifier, topic: str) -> None:
        self._notifier = notifier
        self._subscription = Subscription(topic)

    def __enter__(self) -> Subscription:
        self._notifier.add(self._subscription)
        return self._subscription

    def __exit__(self, *exc: object) -> None:
        self._notifier.remove(self._subscription)


_SHARED: weakref.WeakValueDictionary[str, Notifier] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def shared_notifier(identity: str, make: Callable[[], Notifier] = Notifier) -> Notifier:
    """The notifier of every backend of this process on the store ``identity``.

    So a cancel or an event sent through one runtime wakes the waiters (and
    stops the workflows) of another runtime of this process on the same store.
    """
    with _SHARED_LOCK:
        notifier = _SHARED.get(identity)
        if notifier is None:
            notifier = _SHARED[identity] = make()
        return notifier


def event_topic(workflow_id: str) -> str:
    """The topic of one workflow: an event sent to it, its cancel, its lease lost.

    A running workflow subscribes to it for as long as it runs, and looks
    whether it still owns itself before its next step when woken.
    """
    return f"event:{workflow_id}"


def published_topic(workflow_id: str) -> str:
    """The topic of a workflow's published state: a value was published under some key."""
    return f"published:{workflow_id}"


def stream_topic(workflow_id: str) -> str:
    """The topic of a workflow's streams: an entry was appended to one of them."""
    return f"stream:{workflow_id}"


QUEUE_TOPIC = "queue"
"""The topic of workflows enqueued (on any queue)."""

DUE_TOPIC = "due"
"""The topic of suspended workflows whose wait ended early: their event arrived.

Workers subscribe to it and look for due work soon after, instead of at
their next scheduled look.
"""
