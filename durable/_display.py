"""How records look: a plain-text table for terminals, HTML with a timeline for notebooks.

The HTML is self-contained (inline styles, no JavaScript): a table of step
attempts with status, duration and size, and Gantt-style bars on one time
axis, so a slow or retried step stands out at a glance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from durable._durations import format_utc
from durable._records import StreamSummary, WorkflowStatus


def escape(text: str) -> str:
    """``text`` safe inside HTML."""
    import html  # when something is drawn: its entity table is a large import

    return html.escape(text)


class HistoryEntry(Protocol):
    """What a history table shows of one step attempt (``durable.HistoryEntry``)."""

    @property
    def position(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def started_at(self) -> float: ...
    @property
    def finished_at(self) -> float: ...
    @property
    def duration(self) -> float: ...
    @property
    def payload_bytes(self) -> int: ...
    @property
    def error(self) -> str | None: ...
    @property
    def superseded(self) -> bool: ...


class WorkflowInfo(Protocol):
    """What a workflow card shows (``durable.WorkflowInfo``)."""

    @property
    def workflow_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> WorkflowStatus: ...
    @property
    def attempts(self) -> int: ...
    @property
    def created_at(self) -> float: ...
    @property
    def finished_at(self) -> float | None: ...
    @property
    def deadline(self) -> float | None: ...


_COLORS = {
    "success": "#2e7d32",
    "error": "#c62828",
    "retried": "#ef6c00",
    "snapshot": "#1565c0",
}


def duration_text(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def size_text(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"


def history_text(entries: Sequence[HistoryEntry]) -> str:
    """A fixed-width table of a workflow's step attempts."""
    if not entries:
        return "(no steps recorded)"
    rows = [("pos", "step", "kind", "status", "duration", "size", "note")]
    for e in entries:
        note = "superseded" if e.superseded else (e.error or "")
        rows.append(
            (
                str(e.position),
                e.name,
                e.kind,
                e.status,
                duration_text(e.duration),
                size_text(e.payload_bytes) if e.payload_bytes else "",
                note[:60],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


def history_html(entries: Sequence[HistoryEntry]) -> str:
    """An HTML table of step attempts with a timeline column."""
    if not entries:
        return "<p><em>No steps recorded.</em></p>"
    start = min(e.started_at for e in entries)
    span = max(max(e.finished_at for e in entries) - start, 1e-9)
    cells = []
    for e in entries:
        left = (e.started_at - start) / span * 100
        width = max((e.finished_at - e.started_at) / span * 100, 0.6)
        color = _COLORS.get(e.status, "#616161")
        opacity = "0.35" if e.superseded else "1"
        note = "superseded" if e.superseded else (e.error or "")
        bar = (
            f'<div style="position:relative;height:10px;min-width:160px;background:#eee">'
            f'<div title="{escape(duration_text(e.duration))}" style="position:absolute;'
            f"left:{left:.2f}%;width:{min(width, 100 - left):.2f}%;height:10px;"
            f'background:{color};opacity:{opacity}"></div></div>'
        )
        cells.append(
            "<tr>"
            f"<td>{e.position}</td><td><code>{escape(e.name)}</code></td>"
            f"<td>{escape(e.kind)}</td>"
            f'<td style="color:{color}">{escape(e.status)}</td>'
            f'<td style="text-align:right">{escape(duration_text(e.duration))}</td>'
            f'<td style="text-align:right">'
            f"{escape(size_text(e.payload_bytes)) if e.payload_bytes else ''}</td>"
            f"<td>{bar}</td><td>{escape(note[:120])}</td>"
            "</tr>"
        )
    header = "".join(
        f"<th>{h}</th>"
        for h in ("pos", "step", "kind", "status", "duration", "size", "timeline", "note")
    )
    return (
        '<table class="durable-history" style="border-collapse:collapse;font-size:90%">'
        f"<thead><tr>{header}</tr></thead><tbody>{''.join(cells)}</tbody></table>"
    )


def workflow_summary(info: WorkflowInfo) -> str:
    took = (
        f", took {duration_text(info.finished_at - info.created_at)}"
        if info.finished_at is not None
        else ""
    )
    return (
        f"workflow {info.workflow_id!r} ({info.name}): {info.status.value}, "
        f"attempt {info.attempts}{took}"
    )


def published_html(published: Mapping[str, str]) -> str:
    """The latest published value of each key (already as text), as a small table."""
    if not published:
        return ""
    rows = "".join(
        f"<tr><td><code>{escape(key)}</code></td>"
        f"<td><code>{escape(_short(value, 200))}</code></td></tr>"
        for key, value in published.items()
    )
    return (
        '<table class="durable-published" style="border-collapse:collapse;font-size:90%">'
        f"<thead><tr><th>published</th><th>latest value</th></tr></thead><tbody>{rows}</tbody>"
        "</table>"
    )


def streams_html(streams: Sequence[StreamSummary]) -> str:
    """A workflow's streams: key, chunks, restarts, whether each ended."""
    if not streams:
        return ""
    rows = "".join(
        f"<tr><td><code>{escape(s.key)}</code></td><td>{s.chunks}</td>"
        f"<td>{s.restarts or ''}</td><td>{'ended' if s.ended else 'open'}</td></tr>"
        for s in streams
    )
    return (
        '<table class="durable-streams" style="border-collapse:collapse;font-size:90%">'
        "<thead><tr><th>stream</th><th>chunks</th><th>restarts</th><th></th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def workflow_html(
    info: WorkflowInfo,
    entries: Sequence[HistoryEntry],
    published: Mapping[str, str],
    streams: Sequence[StreamSummary],
) -> str:
    color = _COLORS.get(info.status.value, "#616161")
    return (
        '<div class="durable-workflow">'
        f"<p><strong><code>{escape(info.workflow_id)}</code></strong> "
        f"({escape(info.name)}): "
        f'<span style="color:{color}">{escape(info.status.value)}</span>, '
        f"attempt {info.attempts}"
        + (
            f", took {escape(duration_text(info.finished_at - info.created_at))}"
            if info.finished_at is not None
            else ""
        )
        + (f", deadline {escape(format_utc(info.deadline))}" if info.deadline is not None else "")
        + "</p>"
        + published_html(published)
        + streams_html(streams)
        + history_html(entries)
        + "</div>"
    )
