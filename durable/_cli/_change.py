"""Commands that change a store: restore, fork, cancel, cleanup, prune, send-event."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import click

from durable._cli._format import cleanup_text, echo_json, echo_many, require
from durable._cli._parse import duration_callback
from durable._cli._state import (
    Filters,
    State,
    count_option,
    filter_options,
    json_flag,
    status_option,
    workflow_id_argument,
)


@click.command("restore")
@workflow_id_argument()
@click.argument("snapshot")
@click.pass_obj
def restore(state: State, workflow_id: str, snapshot: str) -> None:
    """Rewind a workflow to a snapshot: its next run goes on from there."""
    state.store().restore(workflow_id, snapshot)
    click.echo(
        f"restored {workflow_id} to snapshot {snapshot!r}; run it again to go on from "
        f"there: durable resume {workflow_id} --import MODULE"
    )


@click.command("fork")
@workflow_id_argument()
@click.argument("snapshot")
@click.argument("new_id", metavar="NEW_ID")
@click.pass_obj
def fork(state: State, workflow_id: str, snapshot: str, new_id: str) -> None:
    """Start NEW_ID from a snapshot of ID, sharing the records up to it."""
    state.store().fork(workflow_id, snapshot, new_id)
    click.echo(
        f"forked {workflow_id} at snapshot {snapshot!r} into {new_id}; run it with: "
        f"durable resume {new_id} --import MODULE"
    )


@click.command("cancel")
@workflow_id_argument(required=False)
@filter_options("Only workflows in this status (repeatable; default: enqueued, running, waiting).")
@json_flag()
@click.pass_obj
def cancel(
    state: State,
    workflow_id: str | None,
    filters: Filters,
    as_json: bool,
) -> None:
    """Cancel a workflow and its children, or every active workflow the filters select."""
    store = state.store()
    if workflow_id is None:
        ids = store.cancel_many(**filters.arguments())
        dry_run = filters.dry_run
        echo_many(ids, "would cancel" if dry_run else "cancelled", as_json, dry_run)
        return
    if filters.given():
        raise click.UsageError("give an ID or filters (--status, --name, ...), not both")
    if store.cancel(workflow_id):
        click.echo(
            f"cancelled {workflow_id} and its children; each stops at its next step. "
            f"durable resume {workflow_id} --import MODULE goes on with it later"
        )
    else:
        status = require(store, workflow_id).status.value
        click.echo(f"{workflow_id} is {status} already; nothing to cancel")


@click.command("cleanup")
@click.option(
    "--older-than",
    metavar="AGE",
    required=True,
    callback=duration_callback,
    help="Delete workflows that finished more than AGE ago: 30d, 12h, 15m, 90s, 2w.",
)
@status_option("Only finished workflows in this status (repeatable; default: every finished one).")
@click.option("--name", help="Only workflows of this registered name.")
@click.option("--queue", help="Only workflows enqueued on this queue.")
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@json_flag()
@click.pass_obj
def cleanup(
    state: State,
    older_than: dt.timedelta,
    statuses: tuple[str, ...],
    name: str | None,
    queue: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete finished workflows, with all their records. Running ones are never touched."""
    report = state.store().cleanup(
        older_than=older_than,
        status=list(statuses) or None,
        name=name,
        queue=queue,
        dry_run=dry_run,
    )
    if as_json:
        echo_json(dataclasses.asdict(report))
    else:
        click.echo(cleanup_text(report))


@click.command("cleanup-sessions")
@click.option(
    "--older-than",
    metavar="AGE",
    required=True,
    callback=duration_callback,
    help="Delete sessions last written more than AGE ago: 90d, 12h, 0s (all).",
)
@click.option("--session", "session_id", metavar="ID", help="Only this session.")
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@json_flag()
@click.pass_obj
def cleanup_sessions(
    state: State, older_than: dt.timedelta, session_id: str | None, dry_run: bool, as_json: bool
) -> None:
    """Delete the state of sessions nobody wrote to for a while."""
    keys = state.store().cleanup_sessions(
        older_than=older_than, session_id=session_id, dry_run=dry_run
    )
    if as_json:
        echo_json({"keys": keys, "dry_run": dry_run})
    else:
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"{verb} {keys} session key{'s' if keys != 1 else ''}")


@click.command("migrate")
@click.option(
    "--partition-by-month",
    is_flag=True,
    help="PostgreSQL: keep the step records in one partition per month, so that a cleanup "
    "drops whole months (a one-off copy; stop the workers first).",
)
@json_flag()
@click.pass_obj
def migrate(state: State, partition_by_month: bool, as_json: bool) -> None:
    """Bring the store's tables to this durable-sdk's schema version (opening it does too)."""
    from durable.backends import SCHEMA_VERSION

    before = state.runtime().backend.schema_before
    moved = state.store().partition_by_month() if partition_by_month else None
    if as_json:
        found: dict[str, Any] = {"before": before, "after": SCHEMA_VERSION}
        if partition_by_month:
            found["records_moved"] = moved
        echo_json(found)
        return
    if before == 0:
        click.echo(f"created a new store at schema version {SCHEMA_VERSION}")
    elif before is not None and before < SCHEMA_VERSION:
        click.echo(f"migrated from schema version {before} to {SCHEMA_VERSION}")
    else:
        done = "" if partition_by_month else "; nothing to do"
        click.echo(f"already at schema version {SCHEMA_VERSION}{done}")
    if partition_by_month:
        click.echo(
            "the step records were kept by month already"
            if moved is None
            else f"moved {moved:,} step records into one partition per month"
        )


@click.command("prune")
@count_option(
    "--keep-snapshots",
    default=3,
    minimum=0,
    help="Snapshots to keep per finished workflow (the newest).",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@json_flag()
@click.pass_obj
def prune(state: State, keep_snapshots: int, dry_run: bool, as_json: bool) -> None:
    """Drop superseded records and old snapshots of finished workflows."""
    report = state.store().prune(keep_snapshots=keep_snapshots, dry_run=dry_run)
    if as_json:
        echo_json(dataclasses.asdict(report))
    else:
        click.echo(cleanup_text(report))


@click.command("send-event")
@workflow_id_argument()
@click.argument("key")
@click.argument("value", required=False)
@click.option(
    "--text",
    is_flag=True,
    help="Send VALUE as a string; without it VALUE is read as JSON when it parses "
    '(42, true, {"a": 1}), else sent as a string.',
)
@click.option("--idempotency-key", metavar="KEY", help="Send at most once under this key.")
@click.pass_obj
def send_event(
    state: State,
    workflow_id: str,
    key: str,
    value: str | None,
    text: bool,
    idempotency_key: str | None,
) -> None:
    """Send the event KEY with VALUE (JSON, or text) to the workflow ID."""
    from durable._events import send_event_sync

    payload: Any = value
    if value is not None and not text:
        try:
            payload = json.loads(value)
        except ValueError:
            payload = value
    with state.active():
        sent = send_event_sync(workflow_id, key, payload, idempotency_key=idempotency_key)
    click.echo(
        f"sent {key!r} to {workflow_id}"
        if sent
        else f"not sent: idempotency key {idempotency_key!r} was used already"
    )


COMMANDS = (restore, fork, cancel, cleanup, cleanup_sessions, migrate, prune, send_event)
"""This module's commands, in the order ``durable --help`` lists them."""
