"""A live view of a running workflow, in a notebook or a terminal.

In a notebook, a display updated in place; in a terminal, one status line
on stderr (opt-in: ``DURABLE_PROGRESS=1``).

The notebook's view lists the steps as they start and finish, replayed ones
marked with the time they saved, failed attempts with their error; when the
workflow returns or raises, it becomes the workflow's card and timeline
(what a :class:`durable.WorkflowInfo` renders). Set ``DURABLE_LIVE=0`` to
turn it off. The terminal's line is never drawn when stderr is not a
terminal, nor under CI. Without either, a call pays one look at
``sys.modules`` and the environment, and imports nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from contextvars import ContextVar
from typing import Any

from durable._display import escape
from durable._engine._core import Engine
from durable._engine._watch import StepEvent

log = logging.getLogger("durable")

_THROTTLE = 0.1
"""Seconds between two redraws (the last one is always drawn)."""

_TICK = 1.0
"""Seconds between two redraws while a step runs, so its elapsed time counts up."""


_QUIET: ContextVar[bool] = ContextVar("durable_live_quiet", default=False)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No live view for the workflows called in this block (a ``%%durable`` cell's own)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def watched(engine: Engine, coro: Coroutine[Any, Any, Any]) -> Coroutine[Any, Any, Any]:
    """``coro`` (a top-level workflow call), shown live where a person looks; else as it is."""
    view = None if _QUIET.get() else _view()
    if view is None:
        return coro
    return _run(engine, coro, view)


async def _run(engine: Engine, coro: Coroutine[Any, Any, Any], view: _View) -> Any:
    try:
        with engine.watchers.watching(view.on_event), _ticking(view):
            return await coro
    finally:
        view.finish(engine)


@contextlib.contextmanager
def _ticking(view: _View) -> Iterator[None]:
    """Redraw every second from a thread of its own: a sync step blocks the event loop."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(_TICK):
            try:
                view.tick()
            except Exception:  # a display gone away: the run goes on without it
                log.debug("live view: redraw failed", exc_info=True)
                return

    ticker = threading.Thread(target=tick, name="durable-live", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()


def _view() -> _View | None:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if getattr(shell, "kernel", None) is not None and os.environ.get("DURABLE_LIVE") != "0":
        return _NotebookView()
    if (
        os.environ.get("DURABLE_PROGRESS") == "1"
        and not os.environ.get("CI")
        and sys.stderr.isatty()
    ):
        return _TerminalView()
    return None


class _View:
    """The steps seen so far, by workflow and position."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], list[Any]] = {}
        self.first: str | None = None
        self.drawn = 0.0
        self.lock = threading.Lock()  # the ticker's thread draws too

    def on_event(self, event: StepEvent) -> None:
        with self.lock:
            self.first = self.first or event.workflow_id
            key = (event.workflow_id, event.position)
            self.rows[key] = [event, time.monotonic()]
            if event.kind in ("start", "replayed") and time.monotonic() - self.drawn < _THROTTLE:
                return
            self.drawn = time.monotonic()
            self.draw(event)

    def tick(self) -> None:
        """Redraw with the latest running step's elapsed time, if a step runs."""
        with self.lock:
            running = [(since, e) for e, since in self.rows.values() if e.kind == "start"]
            if running:
                self.drawn = time.monotonic()
                self.draw(max(running, key=lambda pair: pair[0])[1])

    def draw(self, event: StepEvent) -> None:
        raise NotImplementedError

    def finish(self, engine: Engine) -> None:
        raise NotImplementedError

    def replayed(self) -> tuple[int, float]:
        """How many steps were replayed, and the time they saved."""
        found = [e for e, _ in self.rows.values() if e.kind == "replayed"]
        return len(found), sum(e.seconds for e in found)


def _status(event: StepEvent, since: float) -> str:
    if event.kind == "start":
        return f"running ({time.monotonic() - since:.1f} s)"
    if event.kind == "replayed":
        return f"replayed (saved {event.seconds:.3g} s)"
    if event.kind == "done":
        return f"done in {event.seconds:.3g} s"
    return f"failed after {event.seconds:.3g} s: {event.error}"


class _NotebookView(_View):
    """An HTML table in one display, updated in place; the workflow's card at the end."""

    def __init__(self) -> None:
        super().__init__()
        import IPython.display

        shown: Any = IPython.display
        self._html: Any = shown.HTML
        self._handle: Any = shown.display(
            self._html("<i>durable: starting...</i>"), display_id=True
        )

    def draw(self, event: StepEvent) -> None:
        rows = "".join(
            f"<tr><td>{escape(wid)}</td><td>{pos}</td><td>{escape(e.name)}</td>"
            f"<td>{escape(_status(e, since))}</td></tr>"
            for (wid, pos), (e, since) in sorted(self.rows.items(), key=lambda kv: kv[1][1])
        )
        count, saved = self.replayed()
        head = f"durable: running {escape(self.first or '')}"
        if count:
            head += f" ({count} step(s) replayed, {saved:.3g} s saved)"
        table = (
            f"<div><b>{head}</b><table><tr><th>workflow</th><th>#</th><th>step</th>"
            f"<th>status</th></tr>{rows}</table></div>"
        )
        if self._handle is not None:
            self._handle.update(self._html(table))

    def finish(self, engine: Engine) -> None:
        if self.first is None or self._handle is None:
            return
        info = engine.runtime.get_workflow(self.first)  # type: ignore[attr-defined]
        if info is not None:
            self._handle.update(info)  # IPython shows its card (its HTML repr)


class _TerminalView(_View):
    """One line on stderr, rewritten in place."""

    def draw(self, event: StepEvent) -> None:
        count, saved = self.replayed()
        replayed = f" [{count} replayed, {saved:.3g} s saved]" if count else ""
        line = f"durable {event.workflow_id} #{event.position} {event.name}: "
        line += _status(event, self.rows[(event.workflow_id, event.position)][1]) + replayed
        sys.stderr.write("\r\x1b[K" + line[:200])
        sys.stderr.flush()

    def finish(self, engine: Engine) -> None:
        if self.rows:
            sys.stderr.write("\n")
            sys.stderr.flush()
