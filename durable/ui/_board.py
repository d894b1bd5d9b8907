"""What every handler of the dashboard shares: the store, previews, what may change, rendering."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from durable._engine._runtime import Runtime
from durable._infos import Metrics
from durable._records import WorkflowStatus
from durable._store import Store
from durable.ui._data import Previews

HERE = Path(__file__).parent
POLL_MS = 2000
"""How often an open page asks for fresh data (live updates, by polling)."""
METRICS_SECONDS = 5.0
"""How long the store's metrics (which read every step record) and its counts by status
(which every open list asks for each time it polls) are reused."""


@dataclasses.dataclass
class Dashboard:
    """What every handler shares: the store, how values are shown, what may change."""

    runtime: Runtime
    previews: Previews
    read_only: bool
    csrf: str
    templates: Jinja2Templates
    _metrics: tuple[float, Metrics] | None = None
    _counts: tuple[float, dict[str, int]] | None = None
    _measuring: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def store(self) -> Store:
        """The store the dashboard shows."""
        return self.runtime.store

    def metrics(self) -> Metrics:
        """The store's metrics, read at most every :data:`METRICS_SECONDS` (by one thread)."""
        with self._measuring:
            now = time.monotonic()
            if self._metrics is None or now - self._metrics[0] > METRICS_SECONDS:
                self._metrics = (now, self.store.metrics())
            return self._metrics[1]

    def counts(self) -> dict[str, int]:
        """Workflows by status, counted at most every :data:`METRICS_SECONDS`."""
        with self._measuring:
            now = time.monotonic()
            if self._counts is None or now - self._counts[0] > METRICS_SECONDS:
                self._counts = (now, self.store.counts())
            return self._counts[1]

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        """A page (or, with ``?partial=1``, its live part) with the shared context."""
        context |= {
            "base": request.scope.get("root_path", ""),
            "store_url": self.store.url,
            "read_only": self.read_only,
            "csrf": self.csrf,
            "previews": self.previews,
            "notice": request.query_params.get("notice"),
            "problem": request.query_params.get("error"),
            "poll_ms": POLL_MS,
            "statuses": [s.value for s in WorkflowStatus],
        }
        if request.query_params.get("partial"):
            name = f"_{name.removesuffix('.html')}_live.html"
        return self.templates.TemplateResponse(request, name, context, status_code=status)


def dashboard(request: Request) -> Dashboard:
    """The dashboard serving ``request``."""
    found: Dashboard = request.app.state.dashboard
    return found


def when(stamp: float | None) -> str:
    """A Unix time as UTC text to the second (empty for None)."""
    if stamp is None:
        return ""
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
