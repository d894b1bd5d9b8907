"""Commands that run workflows: recover, resume, worker."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from durable._cli._format import echo_json, echo_many, recovery_json, require
from durable._cli._parse import seconds_callback
from durable._cli._state import (
    Failure,
    Filters,
    State,
    filter_options,
    import_modules,
    imports_option,
    json_flag,
    workflow_id_argument,
)
from durable._errors import WorkflowNotFoundError

F = TypeVar("F", bound=Callable[..., Any])


@click.command("recover")
@imports_option(required=False)
@json_flag()
@click.pass_context
def recover(ctx: click.Context, modules: tuple[str, ...], as_json: bool) -> None:
    """Resume every incomplete workflow whose owner died. Exit code 1 if one fails.

    Import the modules that define the workflows with --import; workflows
    of names no imported module registers are reported as unknown.
    """
    state: State = ctx.obj
    import_modules(modules)
    report = state.runtime().recover_sync()
    if as_json:
        echo_json(recovery_json(report))
    else:
        click.echo(f"resumed {len(report.resumed)}: {', '.join(report.resumed)}".rstrip(": "))
        if report.unknown:
            names = ", ".join(f"{wid} ({name})" for wid, name in report.unknown.items())
            click.echo(
                f"unknown {len(report.unknown)}: {names}; --import the module that defines them"
            )
        if report.suspended:
            click.echo(
                f"suspended {len(report.suspended)}: {', '.join(report.suspended)} (waiting "
                "for a timer or an event; recovered again once it is due)"
            )
        for wid, exc in report.failed.items():
            click.echo(f"failed {wid}: {type(exc).__name__}: {exc}")
    if report.failed:
        ctx.exit(1)


@click.command("resume")
@workflow_id_argument(required=False)
@imports_option(required=False)
@filter_options("Only workflows in this status (repeatable; default: cancelled, quarantined).")
@json_flag()
@click.pass_obj
def resume(
    state: State,
    workflow_id: str | None,
    modules: tuple[str, ...],
    filters: Filters,
    as_json: bool,
) -> None:
    """Run one workflow again from its records (also a cancelled one), or reopen many.

    With ID: runs it here and prints its result (--import its module). With
    filters instead: reopens every cancelled or quarantined workflow they
    select, for durable recover or a worker to run.
    """
    if workflow_id is None:
        ids = state.store().resume_many(**filters.arguments())
        then = "durable recover --import MODULE (or a worker) runs them"
        verb = "would reopen" if filters.dry_run else "reopened"
        echo_many(ids, verb, as_json, filters.dry_run, then)
        return
    if filters.given():
        raise click.UsageError("give an ID or filters (--status, --name, ...), not both")
    if not modules:
        raise click.UsageError("resuming ID runs it here: say where it is with --import MODULE")
    run_one(state, workflow_id, modules)


def run_one(state: State, workflow_id: str, modules: tuple[str, ...]) -> None:
    """``durable resume ID``: run it here from its records and print its result."""
    from durable._errors import WorkflowSuspendedError

    import_modules(modules)
    runtime = state.runtime()
    require(runtime.store, workflow_id)  # no such id: an error of its own, not a failure
    try:
        result = runtime.resume_sync(workflow_id)
    except WorkflowSuspendedError as exc:  # waiting for its timer or event: not a failure
        click.echo(str(exc))
        return
    except WorkflowNotFoundError as exc:
        if exc.details.get("workflow_id") != workflow_id:
            raise Failure(f"workflow {workflow_id!r} failed: {type(exc).__name__}: {exc}") from exc
        # The id exists, so its workflow's name is what nothing registers.
        raise Failure(f"{exc}, with --import MODULE") from exc
    except Exception as exc:  # the workflow's own error, or the SDK's while running it
        raise Failure(f"workflow {workflow_id!r} failed: {type(exc).__name__}: {exc}") from exc
    click.echo(repr(result))


def _worker_options(command: F) -> F:
    """The options of ``durable worker`` beside ``--import``."""
    options = [
        click.option(
            "--queue",
            "queues",
            metavar="NAME",
            multiple=True,
            default=("default",),
            show_default=True,
            help="A queue to claim from (repeatable).",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(min=1),
            default=16,
            show_default=True,
            help="Workflows run at once by this worker.",
        ),
        click.option(
            "--limit",
            "limits",
            metavar="QUEUE=N",
            multiple=True,
            help="Most workflows of QUEUE running at once across all workers (repeatable); "
            "give every worker the same limits.",
        ),
        click.option(
            "--grace",
            type=float,
            callback=seconds_callback,
            default=30.0,
            show_default=True,
            help="Seconds running workflows may take to finish on SIGTERM before they are "
            "released for another worker.",
        ),
        click.option(
            "--until-idle",
            is_flag=True,
            help="Exit once nothing is running, enqueued or due (batch jobs, tests).",
        ),
        click.option(
            "--max-recoveries",
            type=click.IntRange(min=0),
            default=None,
            help="Resumes in a row after a workflow's owner died before it is quarantined "
            "(default 10).",
        ),
        click.option(
            "--log-level",
            type=click.Choice(["debug", "info", "warning", "error"]),
            default="info",
            show_default=True,
            help="What the worker logs to stderr.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command("worker")
@imports_option(required=True)
@_worker_options
@click.pass_context
def worker(
    ctx: click.Context,
    modules: tuple[str, ...],
    queues: tuple[str, ...],
    concurrency: int,
    limits: tuple[str, ...],
    grace: float,
    until_idle: bool,
    max_recoveries: int | None,
    log_level: str,
) -> None:
    """Run enqueued workflows; resume due waits and the work of dead workers.

    Stops gracefully on SIGTERM or Ctrl-C: it claims nothing more, lets
    running workflows finish within --grace, and releases the rest for
    another worker. A second signal releases them at once.
    """
    from durable._engine._worker import Worker

    state: State = ctx.obj
    queue_limits = parse_limits(limits)
    import_modules(modules)
    if not state.debug:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger("durable").addHandler(handler)
        logging.getLogger("durable").setLevel(log_level.upper())
    from durable._schedules import declared

    # Schedules declared in the imported code are work enough to start a new store for.
    runtime = state.runtime(create=bool(declared()))
    if max_recoveries is not None:
        runtime.max_recoveries = max_recoveries
    runner = Worker(
        runtime=runtime,
        queues=queues,
        concurrency=concurrency,
        queue_limits=queue_limits,
        shutdown_grace=grace,
    )
    report = runner.run_sync(until_idle=until_idle, handle_signals=True)
    click.echo(
        f"worker done: {len(report.completed)} completed, {len(report.resumed)} resumed, "
        f"{len(report.failed)} failed, {len(report.suspended)} suspended, "
        f"{len(report.released)} released"
    )


def parse_limits(limits: Sequence[str]) -> dict[str, int]:
    import click

    parsed: dict[str, int] = {}
    for item in limits:
        name, _, number = item.partition("=")
        if not name or not number.isdigit() or int(number) < 1:
            raise click.BadParameter(
                f"{item!r} is not QUEUE=N with N a whole number >= 1 (e.g. emails=4)",
                param_hint="--limit",
            )
        parsed[name] = int(number)
    return parsed


COMMANDS = (recover, resume, worker)
"""This module's commands, in the order ``durable --help`` lists them."""
