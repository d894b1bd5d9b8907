"""The numbers behind the queues and metrics pages: workers, and charts of recent workflows.

Each chart is a list of columns with heights in percent, drawn by the
templates as inline SVG (no chart library, no network).
"""

from __future__ import annotations

import dataclasses
import math
import time

from durable._display import duration_text
from durable._durations import parse_duration
from durable._infos import WorkflowInfo
from durable._records import WorkflowStatus
from durable._store import Store

RECENT = 2000
"""Most recent workflows the charts read (a bounded, indexed query)."""
BUCKETS = 30
ACTIVE = 2000
"""Most running or waiting workflows read to find the processes running them."""


@dataclasses.dataclass(frozen=True)
class Worker:
    """A process that owns running or waiting workflows now (a worker, a script)."""

    host: str
    pid: int | None
    running: int
    waiting: int
    alive: bool | None
    last_update: float
    lease_until: float | None
    """The latest lease of its workflows: renewed by its heartbeats while it lives."""
    example: str
    """One of its workflows (its lease is renewed by the process's heartbeats)."""


def workers(store: Store) -> list[Worker]:
    """The owners of the running and waiting workflows, busiest first."""
    active = store.list_workflows(
        status=[WorkflowStatus.RUNNING, WorkflowStatus.WAITING], limit=ACTIVE
    )
    groups: dict[tuple[str, int | None], list[WorkflowInfo]] = {}
    for w in active:
        if w.owner_host is not None:
            groups.setdefault((w.owner_host, w.owner_pid), []).append(w)
    found = []
    for (host, pid), held in groups.items():
        found.append(
            Worker(
                host=host.split("/", 1)[0],
                pid=pid,
                running=sum(1 for w in held if w.status is WorkflowStatus.RUNNING),
                waiting=sum(1 for w in held if w.status is WorkflowStatus.WAITING),
                alive=store.owner_alive(held[0].workflow_id),
                last_update=max(w.updated_at for w in held),
                lease_until=max((w.lease_expires_at or 0.0 for w in held), default=0.0) or None,
                example=held[0].workflow_id,
            )
        )
    return sorted(found, key=lambda w: (-(w.running + w.waiting), w.host, w.pid or 0))


def window(text: str) -> float:
    """The charts' time window in seconds, from ``1h``, ``24h``, ``7d``... (default 1 h)."""
    try:
        seconds = parse_duration(text).total_seconds()
    except ValueError:
        return 3600.0
    return min(max(seconds, 60.0), 366 * 86400.0)


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of a chart: its label and the height of each series, in percent."""

    label: str
    values: tuple[int, ...]
    heights: tuple[float, ...]


@dataclasses.dataclass(frozen=True)
class Chart:
    """A bar chart: its title, series names and columns, and the largest value."""

    title: str
    series: tuple[str, ...]
    columns: list[Column]
    top: int


def _chart(
    title: str, series: tuple[str, ...], labelled: list[tuple[str, tuple[int, ...]]]
) -> Chart:
    top = max([sum(values) for _, values in labelled] + [1])
    columns = [
        Column(label, values, tuple(round(v / top * 100, 2) for v in values))
        for label, values in labelled
    ]
    return Chart(title, series, columns, top)


def recent(store: Store, seconds: float) -> list[Chart]:
    """Throughput and failures over time, and how long workflows took, in the window."""
    now = time.time()
    start = now - seconds
    rows = store.list_workflows(since=start, limit=RECENT)
    width = seconds / BUCKETS
    done = [[0, 0] for _ in range(BUCKETS)]
    took: list[float] = []
    for w in rows:
        if w.finished_at is None or w.status not in (WorkflowStatus.SUCCESS, WorkflowStatus.ERROR):
            continue
        bucket = min(BUCKETS - 1, max(0, int((w.finished_at - start) / width)))
        done[bucket][0 if w.status is WorkflowStatus.SUCCESS else 1] += 1
        took.append(w.finished_at - (w.started_at or w.created_at))
    label = duration_text(width)
    throughput = _chart(
        f"Workflows finished per {label}",
        ("success", "error"),
        [
            (f"-{duration_text(now - (start + (i + 1) * width))}", tuple(c))
            for i, c in enumerate(done)
        ],
    )
    failures = _chart(
        f"Failures per {label}",
        ("error",),
        [
            (f"-{duration_text(now - (start + (i + 1) * width))}", (c[1],))
            for i, c in enumerate(done)
        ],
    )
    return [throughput, failures, _durations(took)]


def _durations(took: list[float]) -> Chart:
    """How many finished workflows took each power of ten of time (a histogram)."""
    edges = [1e-4 * 10**i for i in range(8)]  # 100 µs ... 1000 s
    counts = [0] * (len(edges) + 1)
    for seconds in took:
        i = 0 if seconds <= 0 else max(0, min(len(edges), math.ceil(math.log10(seconds / 1e-4))))
        counts[i] += 1
    labels = [f"≤{duration_text(e)}" for e in edges] + [f">{duration_text(edges[-1])}"]
    return _chart(
        "Workflow durations", ("count",), [(lb, (n,)) for lb, n in zip(labels, counts, strict=True)]
    )
