"""``durable queues ...`` (list, set flow control, pause, resume) and ``durable enqueue``."""

from __future__ import annotations

from typing import Any

import click

from durable._cli._format import cell, echo_json, new_table
from durable._cli._parse import duration_callback, json_value
from durable._cli._state import State, json_flag
from durable._client import Client
from durable._durations import parse_duration
from durable._queues import KEEP, QueueInfo


@click.group("queues", invoke_without_command=True)
@json_flag()
@click.pass_context
def queues(ctx: click.Context, as_json: bool) -> None:
    """Queues: what each holds and its flow control; set, pause, resume, delete.

    Without a command, lists every queue with terms in the store or work
    left. Workers claim by the terms the store holds, from their next claim.
    """
    if ctx.invoked_subcommand is None:
        _list(ctx.obj, as_json)


def _json(info: QueueInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "enqueued": info.enqueued,
        "delayed": info.delayed,
        "running": info.running,
        "paused": info.paused,
        "concurrency": info.concurrency,
        "worker_concurrency": info.worker_concurrency,
        "rate_limit": None
        if info.rate_limit is None
        else {"starts": info.rate_limit[0], "per_seconds": info.rate_limit[1]},
        "recent_starts": info.recent_starts,
        "partition_concurrency": info.partition_concurrency,
        "declared": info.declared,
    }


def _limit(value: int | None) -> str:
    return "-" if value is None else str(value)


def _period(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _list(state: State, as_json: bool) -> None:
    found = state.store().queues()
    if as_json:
        echo_json([_json(info) for info in found])
        return
    if not found:
        state.print(
            "no queues (enqueue to one, declare one with durable.Queue, or: durable queues set)"
        )
        return
    # Fits 80 columns: "limit" is concurrency, "worker" worker_concurrency,
    # "per key" partition_concurrency, "rate" the recent starts of the limit.
    table = new_table("queue", "enqueued", "running", "limit", "worker", "per key", "rate", "state")
    for info in found:
        rate = "-"
        if info.rate_limit is not None:
            rate = f"{info.recent_starts}/{info.rate_limit[0]} per {_period(info.rate_limit[1])}"
        table.add_row(
            cell(info.name),
            cell(_enqueued(info)),
            cell(str(info.running)),
            cell(_limit(info.concurrency)),
            cell(_limit(info.worker_concurrency)),
            cell(_limit(info.partition_concurrency)),
            cell(rate),
            cell("paused" if info.paused else "active", "yellow" if info.paused else ""),
        )
    state.print(table)


def _enqueued(info: QueueInfo) -> str:
    return f"{info.enqueued} ({info.delayed} delayed)" if info.delayed else str(info.enqueued)


def _rate(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``10/60s``, ``100/1m``: starts per period."""
    if value is None:
        return None
    starts, sep, period = value.partition("/")
    try:
        if not sep:
            raise ValueError("give STARTS/PERIOD")
        return int(starts), parse_duration(period)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r}: {exc} (e.g. 100/1m for 100 starts a minute)", ctx, param
        ) from None


_TERMS = ("concurrency", "worker-concurrency", "rate", "partition-concurrency")


@queues.command("set")
@click.argument("name")
@click.option("--concurrency", type=int, help="Most running at once, across all workers.")
@click.option("--worker-concurrency", type=int, help="Most running at once in one worker.")
@click.option("--rate", callback=_rate, help="Most starts per period: 100/1m, 5/10s.")
@click.option("--partition-concurrency", type=int, help="Most running at once per partition key.")
@click.option(
    "--clear", type=click.Choice(_TERMS), multiple=True, help="Lift this term (repeatable)."
)
@json_flag()
@click.pass_obj
def set_queue(
    state: State,
    name: str,
    concurrency: int | None,
    worker_concurrency: int | None,
    rate: Any,
    partition_concurrency: int | None,
    clear: tuple[str, ...],
    as_json: bool,
) -> None:
    """Change queue NAME's terms: the ones given; the others (and a pause) stay."""
    given = {
        "concurrency": concurrency,
        "worker-concurrency": worker_concurrency,
        "rate": rate,
        "partition-concurrency": partition_concurrency,
    }
    terms = {k: None if k in clear else KEEP if v is None else v for k, v in given.items()}
    info = state.store().set_queue(
        name,
        concurrency=terms["concurrency"],
        worker_concurrency=terms["worker-concurrency"],
        rate_limit=terms["rate"],
        partition_concurrency=terms["partition-concurrency"],
    )
    if as_json:
        echo_json(_json(info))
        return
    click.echo(f"queue {name!r} set")


@queues.command("pause")
@click.argument("name")
@click.pass_obj
def pause(state: State, name: str) -> None:
    """Stop workers claiming from queue NAME (what runs goes on; enqueues are kept)."""
    state.store().pause_queue(name)
    click.echo(f"queue {name!r} paused")


@queues.command("resume")
@click.argument("name")
@click.pass_obj
def resume(state: State, name: str) -> None:
    """Let workers claim from queue NAME again."""
    state.store().resume_queue(name)
    click.echo(f"queue {name!r} resumed")


@queues.command("delete")
@click.argument("name")
@click.pass_obj
def delete(state: State, name: str) -> None:
    """Drop queue NAME's terms: it works on without limits (its workflows stay)."""
    if state.store().delete_queue(name):
        click.echo(f"queue {name!r}: its terms are deleted")
    else:
        click.echo(f"queue {name!r} had no terms")


def _seconds(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    return None if value is None else duration_callback(ctx, param, value)


@click.command("enqueue")
@click.argument("workflow")
@click.option("--args", "args_json", default="[]", help="Its arguments, as a JSON list.")
@click.option("--kwargs", "kwargs_json", default="{}", help="Keyword arguments, as a JSON object.")
@click.option("--queue", default="default", show_default=True)
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--workflow-id", help="Its id (default: derived from the name and arguments).")
@click.option("--delay", callback=_seconds, help="Not before this long from now: 90s, 5m, 1h.")
@click.option("--dedup-id", help="Enqueue once while one with this dedup id has work left.")
@click.option("--partition", help="Its partition of a partitioned queue (e.g. a tenant).")
@click.option("--queue-timeout", callback=_seconds, help="Cancel it if not started within this.")
@click.option("--timeout", callback=_seconds, help="How long it may run once started.")
@json_flag()
@click.pass_obj
def enqueue(
    state: State,
    workflow: str,
    args_json: str,
    kwargs_json: str,
    queue: str,
    priority: int,
    workflow_id: str | None,
    delay: Any,
    dedup_id: str | None,
    partition: str | None,
    queue_timeout: Any,
    timeout: Any,
    as_json: bool,
) -> None:
    """Enqueue a call of the workflow registered as WORKFLOW, for a worker that has its code.

    This process needs no import of the code: the arguments are JSON here.
    """
    args, kwargs = json_value(args_json, "--args", list), json_value(kwargs_json, "--kwargs", dict)
    client = Client(runtime=state.runtime())
    options = client.options(
        workflow_id=workflow_id,
        queue=queue,
        priority=priority,
        delay=delay,
        dedup_id=dedup_id,
        partition=partition,
        queue_timeout=queue_timeout,
        timeout=timeout,
    )
    handle = options.enqueue(workflow, *args, **kwargs)  # kwargs are the workflow's only
    info = client.get_workflow(handle.workflow_id)
    status = info.status.value if info is not None else "enqueued"
    if as_json:
        echo_json({"workflow_id": handle.workflow_id, "queue": queue, "status": status})
        return
    click.echo(f"{handle.workflow_id} {status} on queue {queue!r}")


COMMANDS = (queues, enqueue)
