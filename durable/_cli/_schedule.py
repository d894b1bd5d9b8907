"""``durable schedule ...``: list, add, pause, resume, delete and backfill schedules."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from durable._cli._format import cell, echo_json, new_table
from durable._cli._parse import duration_callback, json_value, when_callback
from durable._cli._state import State, json_flag
from durable._schedules import CATCH_UP, ScheduleInfo


@click.group("schedule")
def schedule() -> None:
    """Schedules: list them, add one by workflow name, pause, resume, delete, backfill.

    Workers fire them (`durable worker --import ...`): each tick enqueues one
    workflow, whose id names the tick, however many workers run.
    """


def _json(info: ScheduleInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "workflow": info.workflow,
        "cron": info.cron,
        "every": None if info.every is None else info.every.total_seconds(),
        "timezone": info.timezone,
        "queue": info.queue,
        "priority": info.priority,
        "catch_up": info.catch_up,
        "paused": info.paused,
        "last_tick": info.last_tick.isoformat(),
        "next_tick": None if info.next_tick is None else info.next_tick.isoformat(),
        "backfill": None if info.backfill is None else [t.isoformat() for t in info.backfill],
    }


def _when(info: ScheduleInfo) -> str:
    if info.cron is not None:
        return info.cron if info.timezone == "UTC" else f"{info.cron} ({info.timezone})"
    assert info.every is not None
    return f"every {info.every.total_seconds():g}s"


@schedule.command("list")
@json_flag()
@click.pass_obj
def list_schedules(state: State, as_json: bool) -> None:
    """List the schedules: when each fires, its next tick, paused or not."""
    found = state.store().schedules()
    if as_json:
        echo_json([_json(info) for info in found])
        return
    if not found:
        state.print("no schedules (declare one in code, or: durable schedule add)")
        return
    table = new_table("name", "workflow", "when", "next tick", "catch-up", "queue", "state")
    for info in found:
        status = "paused" if info.paused else "active"
        if info.backfill is not None:
            status += f", backfilling from {info.backfill[0]:%Y-%m-%d %H:%M}"
        table.add_row(
            cell(info.name),
            cell(info.workflow),
            cell(_when(info)),
            cell("?" if info.next_tick is None else f"{info.next_tick:%Y-%m-%d %H:%M}"),
            cell(info.catch_up),
            cell(info.queue),
            cell(status, "yellow" if info.paused else ""),
        )
    state.print(table)


def _period(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.timedelta | None:
    return None if value is None else duration_callback(ctx, param, value)


@schedule.command("add")
@click.argument("name")
@click.argument("workflow")
@click.option("--cron", help='A cron expression, e.g. "*/5 * * * *".')
@click.option("--every", callback=_period, help="A period: 90s, 5m, 1h.")
@click.option(
    "--args", "args_json", default="[]", help="The arguments after the tick's time, as a JSON list."
)
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments, as a JSON object.")
@click.option(
    "--timezone", default="UTC", show_default=True, help="An IANA zone, e.g. Europe/Paris."
)
@click.option("--queue", default="default", show_default=True)
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--catch-up", type=click.Choice(CATCH_UP), default="last", show_default=True)
@click.option("--replace", is_flag=True, help="Change an existing schedule (its state is kept).")
@json_flag()
@click.pass_obj
def add(
    state: State,
    name: str,
    workflow: str,
    cron: str | None,
    every: dt.timedelta | None,
    args_json: str,
    kwargs_json: str,
    timezone: str,
    queue: str,
    priority: int,
    catch_up: str,
    replace: bool,
    as_json: bool,
) -> None:
    """Add schedule NAME, starting the workflow registered as WORKFLOW at each tick."""
    args, kwargs = json_value(args_json, "--args", list), json_value(kwargs_json, "--kwargs", dict)
    info = state.store().add_schedule(
        name,
        workflow,
        cron=cron,
        every=every,
        args=args,
        kwargs=kwargs,
        timezone=timezone,
        queue=queue,
        priority=priority,
        catch_up=catch_up,  # type: ignore[arg-type]
        replace=replace,
    )
    if as_json:
        echo_json(_json(info))
        return
    click.echo(f"schedule {info.name!r} added: {_when(info)}, next tick {info.next_tick}")


@schedule.command("pause")
@click.argument("name")
@click.pass_obj
def pause(state: State, name: str) -> None:
    """Stop firing schedule NAME until it is resumed."""
    state.store().pause_schedule(name)
    click.echo(f"schedule {name!r} paused")


@schedule.command("resume")
@click.argument("name")
@click.pass_obj
def resume(state: State, name: str) -> None:
    """Fire schedule NAME again (the ticks it missed follow its catch-up policy)."""
    state.store().resume_schedule(name)
    click.echo(f"schedule {name!r} resumed")


@schedule.command("delete")
@click.argument("name")
@click.pass_obj
def delete(state: State, name: str) -> None:
    """Delete schedule NAME (the workflows it started stay)."""
    state.store().delete_schedule(name)
    click.echo(f"schedule {name!r} deleted")


@schedule.command("backfill")
@click.argument("name")
@click.option("--start", required=True, callback=when_callback, help="From this time (exclusive).")
@click.option("--end", required=True, callback=when_callback, help="To this time (inclusive).")
@click.pass_obj
def backfill(state: State, name: str, start: dt.datetime, end: dt.datetime) -> None:
    """Fire the ticks of schedule NAME between --start and --end (workers enqueue them)."""
    count = state.store().backfill_schedule(name, start, end)
    click.echo(f"schedule {name!r}: {count} tick(s) to backfill; workers enqueue them")


COMMANDS = (schedule,)
