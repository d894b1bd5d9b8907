"""The ``durable`` command line: look into a store, rewind, fork, clean up, recover.

click and rich come with the ``cli`` extra and are imported when the command
runs, never by ``import durable``. Each command is one ``_add_<name>``
function, registered with ``@_command``, that adds it to the group: to add a
command, write one more.

Errors the user can act on (any :class:`durable.DurableError`, a bad option)
are one ``error: ...`` line on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from durable._durations import duration, parse_timestamp, to_datetime
from durable._errors import ConfigurationError, DurableError, WorkflowNotFoundError

if TYPE_CHECKING:
    import click
    from rich.console import Console, OverflowMethod
    from rich.table import Table
    from rich.text import Text

    from durable._engine._runtime import Runtime
    from durable._infos import CleanupReport, HistoryEntry, Metrics, WorkflowInfo
    from durable._reports import HealthReport, RecoveryReport
    from durable._store import Store

EXTRA_MISSING = 'the durable CLI needs its extra: pip install "durable-sdk[cli]"'

F = TypeVar("F", bound=Callable[..., Any])

_WIDTH = 120
"""Table width when stdout is not a terminal and $COLUMNS is not set."""

_STATUS_STYLES = {
    "success": "green",
    "error": "red",
    "running": "yellow",
    "waiting": "cyan",
    "enqueued": "cyan",
    "cancelled": "dim",
    "retried": "dark_orange",
    "snapshot": "blue",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``durable`` command line; returns the exit code.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).
    """
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError:
        print(f"error: {EXTRA_MISSING}", file=sys.stderr)
        return 1
    try:
        return _run(argv)
    except BrokenPipeError:
        # `durable list | head`: the reader left; say nothing more, and keep
        # Python from complaining about stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(argv: Sequence[str] | None) -> int:
    import click

    state = _State()
    try:
        code = build_cli().main(
            args=list(argv) if argv is not None else None,
            prog_name="durable",
            standalone_mode=False,
            obj=state,
        )
    except click.UsageError as exc:  # BadParameter and friends: the user's typo, exit 2
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _error(exc.format_message() + hint)
        return exc.exit_code
    except click.ClickException as exc:
        _error(exc.format_message(), exc if state.debug else None)
        return exc.exit_code
    except click.Abort:
        _error("aborted")
        return 130
    except (DurableError, _Failure) as exc:
        _error(str(exc), exc if state.debug else None)
        return 1
    # standalone_mode=False hands back ctx.exit() codes, or the command's None.
    return code if isinstance(code, int) else 0


def _error(message: str, exc: BaseException | None = None) -> None:
    if exc is not None:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    # One line, whatever the message holds, so that scripts can grep it.
    print(f"error: {' '.join(message.split())}", file=sys.stderr)


class _Failure(Exception):
    """A command that ran and failed in a way worth one line (a module that would not import)."""


# The group ---------------------------------------------------------------------


@dataclasses.dataclass
class _State:
    """What every command shares: the store URL, the debug flag, the open runtime."""

    url: str | None = None
    debug: bool = False
    _runtime: Runtime | None = None
    _console: Console | None = None

    def runtime(self) -> Runtime:
        """The runtime on ``--url``, opened on first use (closed when the command ends)."""
        if self._runtime is None:
            from durable._config import resolve_url
            from durable._engine._runtime import Runtime

            url = resolve_url(self.url)
            _check_store_exists(url, self.url)
            self._runtime = Runtime(url)
        return self._runtime

    def store(self) -> Store:
        return self.runtime().store

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            # Without a terminal rich would wrap at 80 columns; logs and
            # pipes read better wider. Markup is off: ids and names may hold
            # brackets, which must print as they are.
            width = None if sys.stdout.isatty() else _columns()
            self._console = Console(width=width, markup=False, highlight=False, emoji=False)
        return self._console

    def print(self, renderable: Any = "") -> None:
        """Print a table or a line; piped, without the padding rich adds to every line."""
        if self.console.is_terminal:
            self.console.print(renderable)
            return
        with self.console.capture() as captured:
            self.console.print(renderable)
        sys.stdout.write("".join(f"{line.rstrip()}\n" for line in captured.get().splitlines()))

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


def _columns() -> int:
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return _WIDTH


def _check_store_exists(url: str, given: str | None) -> None:
    """Refuse a SQLite file that is not there: opening it would create an empty store.

    A typo in ``--url``, or running in the wrong folder, would otherwise list
    nothing and leave a stray ``.durable/durable.db`` behind.
    """
    from durable._config import ENV_VAR
    from durable.backends._url import is_memory, parse_url, path_hint

    parsed = parse_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or is_memory(parsed) or Path(database).exists():
        return
    source = "--url" if given else f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "the default"
    raise ConfigurationError(
        f"no durable store at {database}{path_hint(database)} (from {source}); run a "
        f"workflow there first, or point --url or ${ENV_VAR} at an existing store"
    )


_Adder = Callable[["click.Group"], None]
_COMMANDS: list[_Adder] = []


def _command(adder: _Adder) -> _Adder:
    """Register a function that adds one command to the group."""
    _COMMANDS.append(adder)
    return adder


def build_cli() -> click.Group:
    """The ``durable`` click group with every command (click must be installed)."""
    import click

    import durable

    # Bare `durable` prints the help and succeeds, whatever the click version
    # (8.2 made no_args_is_help a usage error, exit 2).
    @click.group(
        invoke_without_command=True,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
    @click.option(
        "--url",
        metavar="URL",
        help="The store: sqlite:///path/to/file.db or postgresql://user@host/db. "
        "Default: $DURABLE_URL, else sqlite:///.durable/durable.db.",
    )
    @click.option("--debug", is_flag=True, help="Show tracebacks and the library's debug log.")
    @click.version_option(durable.__version__, "-V", "--version", prog_name="durable")
    @click.pass_context
    def cli(ctx: click.Context, url: str | None, debug: bool) -> None:
        """Inspect and maintain a durable store: list, show, rewind, fork, clean up, recover."""
        state = ctx.ensure_object(_State)
        state.url = url
        state.debug = debug
        ctx.call_on_close(state.close)
        if ctx.invoked_subcommand is None:
            click.echo(ctx.get_help())
            return
        if debug:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            logger = logging.getLogger("durable")
            logger.addHandler(handler)
            logger.setLevel(logging.DEBUG)

    for add in _COMMANDS:
        add(cli)
    return cli


# Option helpers -------------------------------------------------------------------------


def _json_flag() -> Callable[[F], F]:
    import click

    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _statuses() -> list[str]:
    from durable._records import WorkflowStatus

    return [s.value for s in WorkflowStatus]


def _imports_option(required: bool) -> Callable[[F], F]:
    import click

    return click.option(
        "--import",
        "modules",
        metavar="MODULE",
        multiple=True,
        required=required,
        help="A module that defines your workflows (repeatable); imported with the "
        "working directory on sys.path, as python -m does.",
    )


_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 7 * 86400,
    "week": 7 * 86400,
}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*")


def parse_duration(text: str) -> dt.timedelta:
    """Read a duration: ``30d``, ``12h``, ``15m``, ``90s``, ``2w``, ``1d12h``, ``30 days``.

    Units: s, m (minutes), h, d, w, also spelled out (``sec``, ``min``,
    ``hours``, ``days``, ``weeks``).

    Raises:
        ValueError: saying what is expected, when ``text`` is not one (a
            ConfigurationError when it is longer than 100 years).
    """
    compact = text.lower()
    seconds, end = 0.0, 0
    for match in _DURATION_PART.finditer(compact):
        unit = match[2]
        # Plurals of the spelled-out units only: "days", not "ds".
        plural = len(unit) > 2 and unit.endswith("s")
        factor = _UNITS.get(unit) or (_UNITS.get(unit[:-1]) if plural else None)
        if match.start() != end or factor is None:
            break
        seconds += float(match[1]) * factor
        end = match.end()
    if end and end == len(compact):
        try:
            return dt.timedelta(seconds=duration(seconds, "duration"))
        except ConfigurationError:
            raise ConfigurationError(
                f"{text!r} is longer than 100 years, the longest duration durable takes",
                parameter="duration",
                value=text,
            ) from None
    raise ValueError(
        f"{text!r} is not a duration; write a number and a unit (s, m, h, d or w), "
        "like 30d, 12h, 15m, 90s, 2w, or combined like 1d12h"
    )


def parse_when(text: str, now: dt.datetime | None = None, *, name: str = "time") -> dt.datetime:
    """Read a point in time: ISO 8601 (local time unless it has an offset) or a duration ago.

    ``2024-05-01``, ``2024-05-01T12:30``, ``2024-05-01T12:30:00Z``,
    ``2024-05-01T12:30+02:00`` or ``2h`` (two hours ago); the ISO forms are
    read by :func:`durable._durations.parse_timestamp`, the same on every
    supported Python version.

    Raises:
        ValueError: saying what is expected, when ``text`` is neither.
    """
    try:
        return (now or dt.datetime.now().astimezone()) - parse_duration(text)
    except ConfigurationError:
        raise  # a duration, but too long
    except ValueError:
        pass
    if re.match(r"\s*\d{4}-", text):  # a date: its own error says what is wrong with it
        return parse_timestamp(text, name)
    raise ValueError(
        f"{text!r} is neither a date and time (2024-05-01, 2024-05-01T12:30, "
        "2024-05-01T12:30:00Z, 2024-05-01T12:30+02:00) nor a duration ago (2h, 7d)"
    )


def _duration_callback(ctx: click.Context, param: click.Parameter, value: str) -> dt.timedelta:
    import click

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _seconds_callback(ctx: click.Context, param: click.Parameter, value: float) -> float:
    import click

    try:
        return duration(value, f"--{param.name}")
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _when_callback(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> dt.datetime | None:
    import click

    if value is None:
        return None
    try:
        return parse_when(value, name=f"--{param.name}")
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


# Formatting -------------------------------------------------------------------------------


def _local(ts: float | None) -> str:
    """A table's time: local, ISO, to the second."""
    if ts is None:
        return ""
    moment = to_datetime(ts)
    return moment.isoformat(sep=" ", timespec="seconds") if moment is not None else repr(ts)


def _iso(ts: float | None) -> str | None:
    """A JSON time: ISO 8601 in UTC, to the microsecond."""
    if ts is None:
        return None
    # A time a datetime cannot hold (recorded by an older version) shows as is.
    moment = to_datetime(ts, dt.timezone.utc)
    return moment.isoformat(timespec="microseconds") if moment is not None else repr(ts)


def _cell(value: object, style: str = "") -> Text:
    from rich.text import Text

    return Text(str(value), style=style)


def _status(value: str) -> Text:
    return _cell(value, _STATUS_STYLES.get(value, ""))


def _table(*columns: str, right: Sequence[str] = ()) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for name in columns:
        # Ids are what people copy into the next command: wrap, never cut.
        overflow: OverflowMethod = "fold" if name in ("id", "workflow", "step") else "ellipsis"
        table.add_column(name, justify="right" if name in right else "left", overflow=overflow)
    return table


def _echo_json(data: object) -> None:
    import click

    # Straight to stdout, not through rich, which would wrap long lines.
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _took(info: WorkflowInfo) -> str:
    from durable._display import duration_text

    if info.finished_at is None:
        return ""
    return duration_text(info.finished_at - info.created_at)


def _workflow_json(info: WorkflowInfo) -> dict[str, Any]:
    return {
        "workflow_id": info.workflow_id,
        "name": info.name,
        "status": info.status.value,
        "attempts": info.attempts,
        "created_at": _iso(info.created_at),
        "updated_at": _iso(info.updated_at),
        "finished_at": _iso(info.finished_at),
        "duration_seconds": (
            info.finished_at - info.created_at if info.finished_at is not None else None
        ),
        "parent_id": info.parent_id,
        "forked_from": info.forked_from,
        "owner_host": info.owner_host,
        "owner_pid": info.owner_pid,
        "queue": info.queue,
        "priority": info.priority,
        "wake_at": _iso(info.wake_at),
        "waiting_for": info.waiting_for,
        "recoveries": info.recoveries,
    }


def _entry_json(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "position": entry.position,
        "name": entry.name,
        "kind": entry.kind,
        "status": entry.status,
        "attempt": entry.attempt,
        "started_at": _iso(entry.started_at),
        "finished_at": _iso(entry.finished_at),
        "duration_seconds": entry.duration,
        "payload_bytes": entry.payload_bytes,
        "error": entry.error,
        "superseded": entry.superseded,
        "transaction_id": entry.transaction_id,
    }


def _require(store: Store, workflow_id: str) -> WorkflowInfo:
    info = store.get_workflow(workflow_id)
    if info is None:
        raise WorkflowNotFoundError(
            f"no workflow {workflow_id!r} in the store {store._runtime.url}",
            workflow_id=workflow_id,
        )
    return info


def _outcome(info: WorkflowInfo) -> tuple[str | None, str | None]:
    """The recorded result's repr, or the recorded error, of a finished workflow."""
    from durable._records import WorkflowStatus

    if info.status not in (WorkflowStatus.SUCCESS, WorkflowStatus.ERROR):
        return None, None
    try:
        result = info.result()
    except Exception as exc:
        # A failed workflow raises its recorded error here; a result fails to
        # unpickle when its type's module cannot be imported here: show that
        # rather than fail the whole command.
        text = f"{type(exc).__name__}: {exc}"
        if info.status is WorkflowStatus.SUCCESS:
            return f"(cannot load it here: {text})", None
        return None, text
    return _short(repr(result)), None


def _owner_dead(runtime: Runtime, info: WorkflowInfo) -> bool | None:
    """Whether a running workflow's owner died (it waits for a resume); None if not running."""
    from durable._records import WorkflowStatus

    if info.status is not WorkflowStatus.RUNNING:
        return None
    row = runtime.backend.run_sync(runtime.backend.get_workflow, info.workflow_id)
    return (
        row is not None
        and row.status is WorkflowStatus.RUNNING
        and not runtime.engine.leases.owner_alive(row)
    )


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _import_modules(modules: Sequence[str]) -> None:
    """Import the user's workflow modules, so that the registry knows their names."""
    # A console script's sys.path starts with its own folder, not the
    # working directory; `python -m` puts the working directory first.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            if exc.name is not None and (name == exc.name or name.startswith(f"{exc.name}.")):
                raise _Failure(
                    f"cannot import {name!r}: no such module in {os.getcwd()} or on sys.path"
                ) from exc
            raise _Failure(f"importing {name!r} failed: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            raise _Failure(f"importing {name!r} failed: {type(exc).__name__}: {exc}") from exc


# Commands ---------------------------------------------------------------------------------


@_command
def _add_list(cli: click.Group) -> None:
    import click

    @cli.command("list")
    @click.option(
        "--status",
        "statuses",
        multiple=True,
        type=click.Choice(_statuses()),
        metavar="STATUS",
        help=f"Only workflows in this status (repeatable): {', '.join(_statuses())}.",
    )
    @click.option(
        "--name", metavar="NAME", help="Only workflows of this registered name (module.function)."
    )
    @click.option(
        "--since",
        metavar="WHEN",
        callback=_when_callback,
        help="Only workflows created at or after WHEN: 2024-05-01, 2024-05-01T12:30, or 2h (ago).",
    )
    @click.option(
        "--until", metavar="WHEN", callback=_when_callback, help="Only those created before WHEN."
    )
    @click.option(
        "--limit",
        type=click.IntRange(min=1),
        default=50,
        show_default=True,
        metavar="N",
        help="At most N workflows.",
    )
    @_json_flag()
    @click.pass_obj
    def list_(
        state: _State,
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
            _echo_json([_workflow_json(info) for info in found])
            return
        if not found:
            state.print("no workflows")
            return
        table = _table(
            "id", "name", "status", "attempts", "created", "finished", "took", right=("attempts",)
        )
        for info in found:
            table.add_row(
                _cell(info.workflow_id),
                _cell(info.name),
                _status(info.status.value),
                _cell(info.attempts),
                _cell(_local(info.created_at)),
                _cell(_local(info.finished_at)),
                _cell(_took(info)),
            )
        state.print(table)


@_command
def _add_show(cli: click.Group) -> None:
    import click

    @cli.command("show")
    @click.argument("workflow_id", metavar="ID")
    @_json_flag()
    @click.pass_obj
    def show(state: _State, workflow_id: str, as_json: bool) -> None:
        """Show a workflow: its record, result or error, and steps."""
        from durable._display import duration_text, size_text

        info = _require(state.store(), workflow_id)
        history = info.history()
        live = [e for e in history if not e.superseded and e.status != "retried"]
        result, error = _outcome(info)
        dead = _owner_dead(state.runtime(), info)
        if as_json:
            _echo_json(
                {
                    **_workflow_json(info),
                    "owner_dead": dead,
                    "result": result,
                    "error": error,
                    "steps": [_entry_json(e) for e in live],
                }
            )
            return
        # The host id goes on with boot and pid-namespace ids after a "/":
        # too long for a summary (--json has it whole).
        owner = (
            f"{info.owner_host.split('/')[0]} (pid {info.owner_pid})"
            if info.owner_host is not None
            else ""
        )
        fields = [
            ("workflow", info.workflow_id),
            ("name", info.name),
            ("status", info.status.value),
            ("attempts", str(info.attempts)),
            ("owner", owner + (", no longer alive: durable recover resumes it" if dead else "")),
            ("created", _local(info.created_at)),
            ("finished", _local(info.finished_at)),
            ("took", _took(info)),
            ("forked from", info.forked_from or ""),
            ("parent", info.parent_id or ""),
            ("queue", f"{info.queue} (priority {info.priority})" if info.queue else ""),
            ("waiting for", f"event {info.waiting_for!r}" if info.waiting_for else ""),
            ("wakes", _local(info.wake_at) if info.status.active else ""),
            ("recoveries", str(info.recoveries) if info.recoveries else ""),
            ("result", result or ""),
            ("error", error or ""),
        ]
        from rich.table import Table

        summary = Table.grid(padding=(0, 2))
        summary.add_column(style="bold")
        summary.add_column(overflow="fold")
        for label, value in fields:
            if value:
                summary.add_row(_cell(label), _status(value) if label == "status" else _cell(value))
        state.print(summary)
        state.print()
        if not live:
            state.print("no steps recorded")
            return
        table = _table(
            "pos",
            "step",
            "kind",
            "status",
            "tries",
            "duration",
            "size",
            "error",
            right=("pos", "tries", "duration", "size"),
        )
        for e in live:
            table.add_row(
                _cell(e.position),
                _cell(e.name),
                _cell(e.kind),
                _status(e.status),
                _cell(e.attempt),
                _cell(duration_text(e.duration)),
                _cell(size_text(e.payload_bytes) if e.payload_bytes else ""),
                _cell(_short(e.error or "", 60)),
            )
        state.print(table)
        hidden = len(history) - len(live)
        if hidden:
            state.print(
                f"{hidden} failed or superseded attempt{'s' if hidden != 1 else ''} "
                f"not shown: durable history {info.workflow_id}"
            )


@_command
def _add_history(cli: click.Group) -> None:
    import click

    @cli.command("history")
    @click.argument("workflow_id", metavar="ID")
    @_json_flag()
    @click.pass_obj
    def history(state: _State, workflow_id: str, as_json: bool) -> None:
        """Every step attempt of a workflow, failed and superseded ones too."""
        from durable._display import duration_text, size_text

        info = _require(state.store(), workflow_id)
        entries = info.history()
        if as_json:
            _echo_json([_entry_json(e) for e in entries])
            return
        if not entries:
            state.print("no steps recorded")
            return
        table = _table(
            "pos",
            "step",
            "kind",
            "status",
            "try",
            "started",
            "duration",
            "size",
            "note",
            right=("pos", "try", "duration", "size"),
        )
        for e in entries:
            note = "superseded" if e.superseded else (e.error or "")
            table.add_row(
                _cell(e.position),
                _cell(e.name),
                _cell(e.kind),
                _status(e.status),
                _cell(e.attempt),
                _cell(_local(e.started_at)),
                _cell(duration_text(e.duration)),
                _cell(size_text(e.payload_bytes) if e.payload_bytes else ""),
                _cell(_short(note, 60), "dim" if e.superseded else ""),
            )
        state.print(table)


@_command
def _add_restore(cli: click.Group) -> None:
    import click

    @cli.command("restore")
    @click.argument("workflow_id", metavar="ID")
    @click.argument("snapshot")
    @click.pass_obj
    def restore(state: _State, workflow_id: str, snapshot: str) -> None:
        """Rewind a workflow to a snapshot: its next run goes on from there."""
        state.store().restore(workflow_id, snapshot)
        click.echo(
            f"restored {workflow_id} to snapshot {snapshot!r}; run it again to go on from "
            f"there: durable resume {workflow_id} --import MODULE"
        )


@_command
def _add_fork(cli: click.Group) -> None:
    import click

    @cli.command("fork")
    @click.argument("workflow_id", metavar="ID")
    @click.argument("snapshot")
    @click.argument("new_id", metavar="NEW_ID")
    @click.pass_obj
    def fork(state: _State, workflow_id: str, snapshot: str, new_id: str) -> None:
        """Start NEW_ID from a snapshot of ID, sharing the records up to it."""
        state.store().fork(workflow_id, snapshot, new_id)
        click.echo(
            f"forked {workflow_id} at snapshot {snapshot!r} into {new_id}; run it with: "
            f"durable resume {new_id} --import MODULE"
        )


@_command
def _add_cancel(cli: click.Group) -> None:
    import click

    @cli.command("cancel")
    @click.argument("workflow_id", metavar="ID")
    @click.pass_obj
    def cancel(state: _State, workflow_id: str) -> None:
        """Cancel a workflow that is running or waiting to resume."""
        store = state.store()
        if store.cancel(workflow_id):
            click.echo(f"cancelled {workflow_id}; it stops at its next step and never resumes")
        else:
            status = _require(store, workflow_id).status.value
            click.echo(f"{workflow_id} is {status} already; nothing to cancel")


def _cleanup_text(report: CleanupReport) -> str:
    verb = "would delete" if report.dry_run else "deleted"
    return (
        f"{verb} {report.workflows} workflow{'s' if report.workflows != 1 else ''}, "
        f"{report.steps} step record{'s' if report.steps != 1 else ''}, "
        f"{report.attempts} failed attempt{'s' if report.attempts != 1 else ''}"
    )


@_command
def _add_cleanup(cli: click.Group) -> None:
    import click

    @cli.command("cleanup")
    @click.option(
        "--older-than",
        metavar="AGE",
        required=True,
        callback=_duration_callback,
        help="Delete workflows that finished more than AGE ago: 30d, 12h, 15m, 90s, 2w.",
    )
    @click.option(
        "--status",
        "statuses",
        multiple=True,
        type=click.Choice(_statuses()),
        metavar="STATUS",
        help="Only finished workflows in this status (repeatable; default: every finished one).",
    )
    @click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
    @_json_flag()
    @click.pass_obj
    def cleanup(
        state: _State,
        older_than: dt.timedelta,
        statuses: tuple[str, ...],
        dry_run: bool,
        as_json: bool,
    ) -> None:
        """Delete finished workflows, with all their records. Running ones are never touched."""
        report = state.store().cleanup(
            older_than=older_than, status=list(statuses) or None, dry_run=dry_run
        )
        if as_json:
            _echo_json(dataclasses.asdict(report))
        else:
            click.echo(_cleanup_text(report))


@_command
def _add_prune(cli: click.Group) -> None:
    import click

    @cli.command("prune")
    @click.option(
        "--keep-snapshots",
        type=click.IntRange(min=0),
        default=3,
        show_default=True,
        metavar="N",
        help="Snapshots to keep per finished workflow (the newest).",
    )
    @click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
    @_json_flag()
    @click.pass_obj
    def prune(state: _State, keep_snapshots: int, dry_run: bool, as_json: bool) -> None:
        """Drop superseded records and old snapshots of finished workflows."""
        report = state.store().prune(keep_snapshots=keep_snapshots, dry_run=dry_run)
        if as_json:
            _echo_json(dataclasses.asdict(report))
        else:
            click.echo(_cleanup_text(report))


def _metrics_rows(metrics: Metrics) -> list[tuple[str, str]]:
    from durable._display import size_text

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


@_command
def _add_metrics(cli: click.Group) -> None:
    import click

    @cli.command("metrics")
    @_json_flag()
    @click.pass_obj
    def metrics(state: _State, as_json: bool) -> None:
        """The store at a glance: workflows by status, steps, bytes, times."""
        from rich.table import Table

        found = state.store().metrics()
        if as_json:
            _echo_json(dataclasses.asdict(found))
            return
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for label, value in _metrics_rows(found):
            grid.add_row(_cell(label), _cell(value))
        state.print(grid)


def _health(state: _State) -> HealthReport:
    from durable._reports import HealthReport
    from durable.backends import SCHEMA_VERSION

    try:
        return state.runtime().health_check()
    except DurableError as exc:
        # A store that cannot even be opened is unhealthy, not a crash of
        # this command: monitors get the same report and exit code 1.
        from durable._config import resolve_url
        from durable.backends._url import mask_password

        url = mask_password(resolve_url(state.url))
        return HealthReport(
            ok=False,
            backend=url.split(":", 1)[0].split("+", 1)[0],
            url=url,
            server_version=None,
            schema_version=SCHEMA_VERSION,
            latency_ms=None,
            error=str(exc),
        )


@_command
def _add_health(cli: click.Group) -> None:
    import click

    @cli.command("health")
    @_json_flag()
    @click.pass_context
    def health(ctx: click.Context, as_json: bool) -> None:
        """Check that the store answers, and how fast. Exit code 1 when it does not."""
        from rich.table import Table

        state: _State = ctx.obj
        report = _health(state)
        if as_json:
            _echo_json(dataclasses.asdict(report))
        else:
            grid = Table.grid(padding=(0, 2))
            grid.add_column(style="bold")
            grid.add_column(overflow="fold")
            rows = [
                ("status", "ok" if report.ok else "unavailable"),
                ("backend", report.backend),
                ("url", report.url),
                ("server", report.server_version or ""),
                ("schema", str(report.schema_version)),
                ("latency", f"{report.latency_ms:.2f} ms" if report.latency_ms is not None else ""),
                ("error", report.error or ""),
            ]
            for label, value in rows:
                if value:
                    style = "" if label != "status" else "green" if report.ok else "red"
                    grid.add_row(_cell(label), _cell(value, style))
            state.print(grid)
        if not report.ok:
            ctx.exit(1)


def _recovery_json(report: RecoveryReport) -> dict[str, Any]:
    return {
        "resumed": report.resumed,
        "unknown": report.unknown,
        "failed": {wid: f"{type(exc).__name__}: {exc}" for wid, exc in report.failed.items()},
        "suspended": report.suspended,
    }


@_command
def _add_recover(cli: click.Group) -> None:
    import click

    @cli.command("recover")
    @_imports_option(required=False)
    @_json_flag()
    @click.pass_context
    def recover(ctx: click.Context, modules: tuple[str, ...], as_json: bool) -> None:
        """Resume every incomplete workflow whose owner died. Exit code 1 if one fails.

        Import the modules that define the workflows with --import; workflows
        of names no imported module registers are reported as unknown.
        """
        state: _State = ctx.obj
        _import_modules(modules)
        report = state.runtime().recover_sync()
        if as_json:
            _echo_json(_recovery_json(report))
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


@_command
def _add_resume(cli: click.Group) -> None:
    import click

    @cli.command("resume")
    @click.argument("workflow_id", metavar="ID")
    @_imports_option(required=True)
    @click.pass_obj
    def resume(state: _State, workflow_id: str, modules: tuple[str, ...]) -> None:
        """Run one workflow again from its records; print its result."""
        from durable._errors import WorkflowSuspendedError

        _import_modules(modules)
        runtime = state.runtime()
        _require(runtime.store, workflow_id)  # no such id: an error of its own, not a failure
        try:
            result = runtime.resume_sync(workflow_id)
        except WorkflowSuspendedError as exc:  # waiting for its timer or event: not a failure
            click.echo(str(exc))
            return
        except WorkflowNotFoundError as exc:
            if exc.details.get("workflow_id") != workflow_id:
                raise _Failure(
                    f"workflow {workflow_id!r} failed: {type(exc).__name__}: {exc}"
                ) from exc
            # The id exists, so its workflow's name is what nothing registers.
            raise _Failure(f"{exc}, with --import MODULE") from exc
        except Exception as exc:  # the workflow's own error, or the SDK's while running it
            raise _Failure(f"workflow {workflow_id!r} failed: {type(exc).__name__}: {exc}") from exc
        click.echo(repr(result))


@_command
def _add_worker(cli: click.Group) -> None:
    import click

    @cli.command("worker")
    @_imports_option(required=True)
    @click.option(
        "--queue",
        "queues",
        metavar="NAME",
        multiple=True,
        default=("default",),
        show_default=True,
        help="A queue to claim from (repeatable).",
    )
    @click.option(
        "--concurrency",
        type=click.IntRange(min=1),
        default=16,
        show_default=True,
        help="Workflows run at once by this worker.",
    )
    @click.option(
        "--limit",
        "limits",
        metavar="QUEUE=N",
        multiple=True,
        help="Most workflows of QUEUE running at once across all workers (repeatable); "
        "give every worker the same limits.",
    )
    @click.option(
        "--grace",
        type=float,
        callback=_seconds_callback,
        default=30.0,
        show_default=True,
        help="Seconds running workflows may take to finish on SIGTERM before they are "
        "released for another worker.",
    )
    @click.option(
        "--until-idle",
        is_flag=True,
        help="Exit once nothing is running, enqueued or due (batch jobs, tests).",
    )
    @click.option(
        "--max-recoveries",
        type=click.IntRange(min=0),
        default=None,
        help="Resumes in a row after a workflow's owner died before it is quarantined "
        "(default 10).",
    )
    @click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"]),
        default="info",
        show_default=True,
        help="What the worker logs to stderr.",
    )
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
        from durable._worker import Worker

        state: _State = ctx.obj
        queue_limits = _parse_limits(limits)
        _import_modules(modules)
        if not state.debug:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logging.getLogger("durable").addHandler(handler)
            logging.getLogger("durable").setLevel(log_level.upper())
        runtime = state.runtime()
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


def _parse_limits(limits: Sequence[str]) -> dict[str, int]:
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


@_command
def _add_send_event(cli: click.Group) -> None:
    import click

    @cli.command("send-event")
    @click.argument("workflow_id", metavar="ID")
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
        state: _State,
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
        runtime: Runtime = state.runtime()
        with runtime:
            sent = send_event_sync(workflow_id, key, payload, idempotency_key=idempotency_key)
        state._runtime = None  # closed by `with`
        click.echo(
            f"sent {key!r} to {workflow_id}"
            if sent
            else f"not sent: idempotency key {idempotency_key!r} was used already"
        )
