"""Everything the commands print: tables, summary lines and JSON documents."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from durable._display import duration_text, size_text
from durable._durations import to_datetime
from durable._errors import WorkflowNotFoundError
from durable._records import StreamSummary, WorkflowStatus

if TYPE_CHECKING:
    from rich.console import OverflowMethod
    from rich.table import Table
    from rich.text import Text

    from durable._infos import CleanupReport, HistoryEntry, Metrics, WorkflowInfo
    from durable._reports import RecoveryReport
    from durable._store import Store

WIDTH = 120
"""Table width when stdout is not a terminal and $COLUMNS is not set."""

STATUS_STYLES = {
    "success": "green",
    "error": "red",
    "running": "yellow",
    "waiting": "cyan",
    "enqueued": "cyan",
    "cancelled": "dim",
    "retried": "dark_orange",
    "snapshot": "blue",
}


def local(ts: float | None) -> str:
    """A table's time: local, ISO, to the second."""
    if ts is None:
        return ""
    moment = to_datetime(ts)
    return moment.isoformat(sep=" ", timespec="seconds") if moment is not None else repr(ts)


def iso(ts: float | None) -> str | None:
    """A JSON time: ISO 8601 in UTC, to the microsecond."""
    if ts is None:
        return None
    # A time a datetime cannot hold (recorded by an older version) shows as is.
    moment = to_datetime(ts, dt.timezone.utc)
    return moment.isoformat(timespec="microseconds") if moment is not None else repr(ts)


def cell(value: object, style: str = "") -> Text:
    from rich.text import Text

    return Text(str(value), style=style)


def status_cell(value: str) -> Text:
    return cell(value, STATUS_STYLES.get(value, ""))


def new_table(*columns: str, right: Sequence[str] = ()) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in columns:
        justify: Literal["left", "right"] = "right" if name in right else "left"
        if name in ("id", "workflow", "session", "stream"):
            # Ids are what people copy into the next command: on one line,
            # whole, however narrow the terminal (the other columns give way).
            table.add_column(name, justify=justify, no_wrap=True, overflow="ignore")
            continue
        overflow: OverflowMethod = "fold" if name == "step" else "ellipsis"
        table.add_column(name, justify=justify, overflow=overflow)
    return table


OUTPUT_KEY = "durable.output"
"""Where the command's ``-o`` choice is kept, in click's context (``ctx.meta``)."""


def echo_json(data: object) -> None:
    """JSON to stdout (not through rich, which would wrap long lines); JSON lines if asked."""
    import click

    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get(OUTPUT_KEY) == "jsonl":
        for item in data if isinstance(data, list) else [data]:
            click.echo(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
        return
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def took(info: WorkflowInfo) -> str:

    if info.finished_at is None:
        return ""
    return duration_text(info.finished_at - info.created_at)


def workflow_json(info: WorkflowInfo) -> dict[str, Any]:
    return {
        "workflow_id": info.workflow_id,
        "name": info.name,
        "status": info.status.value,
        "attempts": info.attempts,
        "created_at": iso(info.created_at),
        "enqueued_at": iso(info.enqueued_at),
        "started_at": iso(info.started_at),
        "updated_at": iso(info.updated_at),
        "finished_at": iso(info.finished_at),
        "duration_seconds": (
            info.finished_at - info.created_at if info.finished_at is not None else None
        ),
        "parent_id": info.parent_id,
        "forked_from": info.forked_from,
        "owner_host": info.owner_host,
        "owner_pid": info.owner_pid,
        "queue": info.queue,
        "priority": info.priority,
        "partition": info.partition,
        "start_by": iso(info.start_by),
        "wake_at": iso(info.wake_at),
        "waiting_for": info.waiting_for,
        "recoveries": info.recoveries,
        "timeout_seconds": info.timeout,
        "deadline": iso(info.deadline),
    }


def entry_json(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "position": entry.position,
        "name": entry.name,
        "kind": entry.kind,
        "status": entry.status,
        "attempt": entry.attempt,
        "started_at": iso(entry.started_at),
        "finished_at": iso(entry.finished_at),
        "duration_seconds": entry.duration,
        "payload_bytes": entry.payload_bytes,
        "error": entry.error,
        "superseded": entry.superseded,
        "transaction_id": entry.transaction_id,
    }


def require(store: Store, workflow_id: str) -> WorkflowInfo:
    info = store.get_workflow(workflow_id)
    if info is None:
        raise WorkflowNotFoundError(
            f"no workflow {workflow_id!r} in the store {store.url}",
            workflow_id=workflow_id,
        )
    return info


def outcome(info: WorkflowInfo) -> tuple[str | None, str | None]:
    """The recorded result's repr, or the recorded error, of a finished workflow."""
    if info.status not in (WorkflowStatus.SUCCESS, WorkflowStatus.ERROR, WorkflowStatus.CANCELLED):
        return None, None
    try:
        result = info.result()
    except Exception as exc:
        # A failed workflow raises its recorded error here; a result fails to
        # unpickle when its type's module cannot be imported here: show that
        # rather than fail the whole command.
        text = f"{type(exc).__name__}: {exc}"
        if info.status is WorkflowStatus.CANCELLED:  # why: a timeout, or a cancel
            return None, text
        if info.status is WorkflowStatus.SUCCESS:
            return f"(cannot load it here: {text})", None
        return None, text
    return short(repr(result)), None


def published_reprs(info: WorkflowInfo) -> dict[str, str]:
    """The latest published value of each key, as short reprs (a note if they cannot load)."""
    try:
        return {key: short(repr(value)) for key, value in info.published().items()}
    except Exception as exc:  # a value whose type's module cannot be imported here
        return {"(not shown)": f"cannot load them here: {type(exc).__name__}: {exc}"}


def published_table(published: dict[str, str]) -> Table:
    """``durable show``'s published keys and their latest values."""
    table = new_table("published", "latest value")
    for key, value in published.items():
        table.add_row(cell(key), cell(value))
    return table


def streams_table(streams: Sequence[StreamSummary]) -> Table:
    """``durable show``'s streams: key, chunks, restarts, ended."""
    table = new_table("stream", "chunks", "restarts", "state", right=("chunks", "restarts"))
    for s in streams:
        table.add_row(
            cell(s.key),
            cell(s.chunks),
            cell(s.restarts or ""),
            cell("ended" if s.ended else "open"),
        )
    return table


def echo_many(ids: list[str], verb: str, as_json: bool, dry_run: bool, then: str = "") -> None:
    """What a command on many workflows did (or would do), and what comes next."""
    import click

    if as_json:
        echo_json({"workflow_ids": ids, "dry_run": dry_run})
        return
    click.echo(f"{verb} {len(ids)} workflow{'s' if len(ids) != 1 else ''}")
    for workflow_id in ids:
        click.echo(f"  {workflow_id}")
    if ids and not dry_run and then:
        click.echo(then)


def short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cleanup_text(report: CleanupReport) -> str:
    verb = "would delete" if report.dry_run else "deleted"
    return (
        f"{verb} {report.workflows} workflow{'s' if report.workflows != 1 else ''}, "
        f"{report.steps} step record{'s' if report.steps != 1 else ''}, "
        f"{report.attempts} failed attempt{'s' if report.attempts != 1 else ''}"
    )


def metrics_rows(metrics: Metrics) -> list[tuple[str, str]]:

    by_status = ", ".join(f"{n} {status}" for status, n in sorted(metrics.by_status.items()))
    rows = [
        ("workflows", f"{metrics.workflows}" + (f" ({by_status})" if by_status else "")),
        ("steps", str(metrics.steps)),
        ("storage", size_text(metrics.storage_bytes)),
    ]
    if metrics.step_ms_mean is not None and metrics.step_ms_max is not None:
        rows.append(
            ("step time", f"mean {metrics.step_ms_mean:.1f} ms, max {metrics.step_ms_max:.1f} ms")
        )
    # Checkpoint times are measured by the process that commits; this one
    # commits nothing, so they are in --json (as null) and not shown here.
    return rows


def recovery_json(report: RecoveryReport) -> dict[str, Any]:
    return {
        "resumed": report.resumed,
        "unknown": report.unknown,
        "failed": {wid: f"{type(exc).__name__}: {exc}" for wid, exc in report.failed.items()},
        "suspended": report.suspended,
    }


def workflow_fields(
    info: WorkflowInfo, dead: bool | None, result: str | None, error: str | None
) -> list[tuple[str, str]]:
    """The summary of ``durable show``: label and value, empty values left out by the grid."""
    # The host id goes on with boot and pid-namespace ids after a "/": too
    # long for a summary (--json has it whole).
    owner = (
        f"{info.owner_host.split('/')[0]} (pid {info.owner_pid})"
        if info.owner_host is not None
        else ""
    )
    return [
        ("workflow", info.workflow_id),
        ("name", info.name),
        ("status", info.status.value),
        ("attempts", str(info.attempts)),
        ("owner", owner + (", no longer alive: durable recover resumes it" if dead else "")),
        ("created", local(info.created_at)),
        ("started", _started(info)),
        ("finished", local(info.finished_at)),
        ("took", took(info)),
        ("forked from", info.forked_from or ""),
        ("parent", info.parent_id or ""),
        ("queue", _queue(info)),
        ("start by", local(info.start_by) if info.status == "enqueued" else ""),
        ("waiting for", f"event {info.waiting_for!r}" if info.waiting_for else ""),
        ("wakes", local(info.wake_at) if info.status.active else ""),
        ("recoveries", str(info.recoveries) if info.recoveries else ""),
        ("deadline", deadline_text(info)),
        ("result", result or ""),
        ("error", error or ""),
    ]


def _queue(info: WorkflowInfo) -> str:
    if not info.queue:
        return ""
    partition = f", partition {info.partition!r}" if info.partition is not None else ""
    return f"{info.queue} (priority {info.priority}{partition})"


def _started(info: WorkflowInfo) -> str:
    """When it first ran, and for a queued one how long it waited in the queue."""
    if info.started_at is None or info.started_at - info.created_at < 0.001:
        return ""
    waited = (
        f" (waited {info.started_at - info.created_at:.3g} s in the queue)" if info.queue else ""
    )
    return local(info.started_at) + waited


def deadline_text(info: WorkflowInfo) -> str:
    """When it times out, and why: its own timeout, or a parent's deadline."""
    if info.deadline is None:
        return ""
    why = f"timeout {info.timeout:g} s" if info.timeout is not None else "its parent's deadline"
    passed = info.status is WorkflowStatus.CANCELLED and (info.finished_at or 0) >= info.deadline
    return f"{local(info.deadline)} ({why}{', timed out' if passed else ''})"


def summary_grid(fields: Sequence[tuple[str, str]], styles: dict[str, str] | None = None) -> Table:
    """Label and value, one per line, those without a value left out."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, value in fields:
        if value:
            shown = status_cell(value) if label == "status" else cell(value)
            if styles and label in styles:
                shown = cell(value, styles[label])
            grid.add_row(cell(label), shown)
    return grid


def steps_table(entries: Sequence[HistoryEntry], *, history: bool = False) -> Table:
    """Step records as a table: the live ones (``show``), or every attempt (``history``)."""
    head = ["pos", "step", "kind", "status", "try" if history else "tries"]
    head += ["started"] if history else []
    steps = new_table(
        *head,
        "duration",
        "size",
        "note" if history else "error",
        right=("pos", "try", "tries", "duration", "size"),
    )
    for e in entries:
        note = "superseded" if history and e.superseded else (e.error or "")
        steps.add_row(
            cell(e.position),
            cell(e.name),
            cell(e.kind),
            status_cell(e.status),
            cell(e.attempt),
            *([cell(local(e.started_at))] if history else []),
            cell(duration_text(e.duration)),
            cell(size_text(e.payload_bytes) if e.payload_bytes else ""),
            cell(short(note, 60), "dim" if e.superseded else ""),
        )
    return steps
