"""Commands that read a store: list, show, history, metrics, health."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING

import click

from durable._cli._format import (
    cell,
    echo_json,
    entry_json,
    iso,
    local,
    metrics_rows,
    new_table,
    outcome,
    published_reprs,
    published_table,
    require,
    short,
    status_cell,
    steps_table,
    streams_table,
    summary_grid,
    took,
    workflow_fields,
    workflow_json,
)
from durable._cli._parse import when_callback
from durable._cli._state import State, count_option, json_flag, shows_workflow, status_option
from durable._errors import DurableError

if TYPE_CHECKING:
    from durable._infos import WorkflowInfo
    from durable._reports import HealthReport
    from durable._store import Store


@click.command("list")
@status_option("Only workflows in this status (repeatable): {statuses}.")
@click.option(
    "--name", metavar="NAME", help="Only workflows of this registered name (module.function)."
)
@click.option(
    "--since",
    metavar="WHEN",
    callback=when_callback,
    help="Only workflows created at or after WHEN: 2024-05-01, 2024-05-01T12:30, or 2h (ago).",
)
@click.option(
    "--until", metavar="WHEN", callback=when_callback, help="Only those created before WHEN."
)
@count_option("--limit", default=50, minimum=1, help="At most N workflows.")
@json_flag()
@click.pass_obj
def list_(
    state: State,
    statuses: tuple[str, ...],
    name: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """List workflows, newest first."""
    found = state.store().list_workflows(
        status=list(statuses) or None, name=name, since=since, until=until, limit=limit
    )
    if as_json:
        echo_json([workflow_json(info) for info in found])
        return
    if not found:
        state.print("no workflows")
        return
    table = new_table(
        "id", "name", "status", "attempts", "created", "finished", "took", right=("attempts",)
    )
    for info in found:
        table.add_row(
            cell(info.workflow_id),
            cell(info.name),
            status_cell(info.status.value),
            cell(info.attempts),
            cell(local(info.created_at)),
            cell(local(info.finished_at)),
            cell(took(info)),
        )
    state.print(table)


def owner_dead(store: Store, info: WorkflowInfo) -> bool | None:
    """Whether a running workflow's owner died (it waits for a resume); None if not running."""
    from durable._records import WorkflowStatus

    if info.status is not WorkflowStatus.RUNNING:
        return None
    return store.owner_alive(info.workflow_id) is False


@shows_workflow("show")
def show(state: State, workflow_id: str, as_json: bool) -> None:
    """Show a workflow: its record, result or error, and steps."""
    info = require(state.store(), workflow_id)
    history = info.history()
    live = [e for e in history if not e.superseded and e.status != "retried"]
    result, error = outcome(info)
    dead = owner_dead(state.store(), info)
    published = published_reprs(info)
    streams = info.streams()
    if as_json:
        echo_json(
            {
                **workflow_json(info),
                "owner_dead": dead,
                "result": result,
                "error": error,
                "published": published,
                "streams": [dataclasses.asdict(s) for s in streams],
                "steps": [entry_json(e) for e in live],
            }
        )
        return
    state.print(summary_grid(workflow_fields(info, dead, result, error)))
    if published:
        state.print()
        state.print(published_table(published))
    if streams:
        state.print()
        state.print(streams_table(streams))
    state.print()
    if not live:
        state.print("no steps recorded")
        return
    state.print(steps_table(live))
    hidden = len(history) - len(live)
    if hidden:
        state.print(
            f"{hidden} failed or superseded attempt{'s' if hidden != 1 else ''} "
            f"not shown: durable history {info.workflow_id}"
        )


@shows_workflow("history")
def history(state: State, workflow_id: str, as_json: bool) -> None:
    """Every step attempt of a workflow, failed and superseded ones too."""
    info = require(state.store(), workflow_id)
    entries = info.history()
    if as_json:
        echo_json([entry_json(e) for e in entries])
        return
    if not entries:
        state.print("no steps recorded")
        return
    state.print(steps_table(entries, history=True))


@click.command("sessions")
@click.argument("session_id", metavar="[ID]", required=False)
@json_flag()
@click.pass_obj
def sessions(state: State, session_id: str | None, as_json: bool) -> None:
    """List the sessions with state, or show the keys and values of one."""
    store = state.store()
    if session_id is None:
        found = store.sessions()
        if as_json:
            echo_json(
                [
                    {"session_id": s.session_id, "keys": s.keys, "updated_at": iso(s.updated_at)}
                    for s in found
                ]
            )
            return
        if not found:
            state.print("no sessions")
            return
        table = new_table("session", "keys", "updated", right=("keys",))
        for s in found:
            table.add_row(cell(s.session_id), cell(s.keys), cell(local(s.updated_at)))
        state.print(table)
        return
    values = {key: short(repr(value)) for key, value in store.session_values(session_id).items()}
    if as_json:
        echo_json({"session_id": session_id, "values": values})
        return
    if not values:
        state.print(f"session {session_id!r} has no state")
        return
    table = new_table("key", "value")
    for key, value in values.items():
        table.add_row(cell(key), cell(value))
    state.print(table)


@click.command("metrics")
@json_flag()
@click.pass_obj
def metrics(state: State, as_json: bool) -> None:
    """The store at a glance: workflows by status, steps, bytes, times."""
    found = state.store().metrics()
    if as_json:
        echo_json(dataclasses.asdict(found))
        return
    state.print(summary_grid(metrics_rows(found)))


def health_report(state: State) -> HealthReport:
    """The runtime's health check; a store that cannot even be opened is unhealthy too."""
    from durable._reports import HealthReport

    try:
        return state.runtime().health_check()
    except DurableError as exc:
        # Not a crash of this command: monitors get the same report and exit code 1.
        from durable._config import resolve_url
        from durable.backends._url import mask_password

        return HealthReport.unavailable(mask_password(resolve_url(state.url)), exc)


@click.command("health")
@json_flag()
@click.pass_context
def health(ctx: click.Context, as_json: bool) -> None:
    """Check that the store answers, and how fast. Exit code 1 when it does not."""
    state: State = ctx.obj
    report = health_report(state)
    if as_json:
        echo_json(dataclasses.asdict(report))
    else:
        rows = [
            ("status", "ok" if report.ok else "unavailable"),
            ("backend", report.backend),
            ("url", report.url),
            ("server", report.server_version or ""),
            ("schema", str(report.schema_version)),
            ("latency", f"{report.latency_ms:.2f} ms" if report.latency_ms is not None else ""),
            ("error", report.error or ""),
        ]
        state.print(summary_grid(rows, {"status": "green" if report.ok else "red"}))
    if not report.ok:
        ctx.exit(1)


COMMANDS = (list_, show, history, sessions, metrics, health)
"""This module's commands, in the order ``durable --help`` lists them."""
