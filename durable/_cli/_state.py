"""What every command shares: the store URL, the console, the options they repeat."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from durable._cli._format import WIDTH
from durable._errors import ConfigurationError

if TYPE_CHECKING:
    import click
    from rich.console import Console

    from durable._engine._runtime import Runtime
    from durable._store import Store

F = TypeVar("F", bound=Callable[..., Any])


class Failure(Exception):
    """A command that ran and failed in a way worth one line (a module that would not import)."""


@dataclasses.dataclass
class State:
    """What every command shares: the store URL, the debug flag, the open runtime."""

    url: str | None = None
    debug: bool = False
    settings: dict[str, str] = dataclasses.field(default_factory=dict)
    """Runtime settings given as flags (``--lease-seconds 60``), as text."""
    _runtime: Runtime | None = None
    _console: Console | None = None

    def runtime(self, *, create: bool = False) -> Runtime:
        """The runtime on ``--url``, opened on first use (closed when the command ends).

        A SQLite file that is not there is refused (a typo), unless ``create``.
        """
        if self._runtime is None:
            from durable._engine._runtime import Runtime

            url, given = self.runtime_arguments(create=create)
            self._runtime = Runtime(url, **given)
        return self._runtime

    def runtime_arguments(self, *, create: bool = False) -> tuple[str, dict[str, Any]]:
        """The store's URL and the runtime options the flags gave (see :meth:`runtime`)."""
        from durable._config import resolve_url
        from durable._settings import checked, from_text

        url = resolve_url(self.url)
        if not create:
            check_store_exists(url, self.url)
        given = {}
        for field, text in self.settings.items():
            flag = "--" + field.replace("_", "-")
            given[field] = checked(field, from_text(field, text, flag), flag)
        return url, given

    def store(self) -> Store:
        return self.runtime().store

    def resolve_id(self, given: str) -> str:
        """The workflow id ``given`` names: itself if recorded, else the one id it begins."""
        import click

        store = self.store()
        if store.get_workflow(given) is not None:
            return given
        found = [info.workflow_id for info in store.list_workflows(id_prefix=given, limit=11)]
        if len(found) == 1:
            return found[0]
        if not found:
            return given  # the command says what it does with an id the store lacks
        shown = "\n  ".join(found[:10]) + ("\n  ..." if len(found) > 10 else "")
        raise click.UsageError(f"{given!r} begins the ids of several workflows:\n  {shown}")

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            # Without a terminal rich would wrap at 80 columns; logs and
            # pipes read better wider. Markup is off: ids and names may hold
            # brackets, which must print as they are.
            width = None if sys.stdout.isatty() else columns()
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

    @contextlib.contextmanager
    def active(self) -> Iterator[Runtime]:
        """The runtime, made the active one for the block (``with runtime:``), closed after."""
        runtime = self.runtime()
        self._runtime = None  # the block closes it
        with runtime:
            yield runtime

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


def columns() -> int:
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return WIDTH


def check_store_exists(url: str, given: str | None) -> None:
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


OUTPUTS = ("text", "json", "jsonl")
"""What a read command prints: text, JSON, or JSON lines (one object per line)."""


def json_flag() -> Callable[[F], F]:
    """``-o text|json|jsonl`` (``--json`` is ``-o json``); the command receives ``as_json``.

    The format itself is kept on the :class:`State` for ``echo_json``, which
    prints JSON lines when asked.
    """
    import click

    def add(given: F) -> F:
        @functools.wraps(given)
        def with_output(*args: Any, output: str, json_alias: bool, **kwargs: Any) -> Any:
            from durable._cli._format import OUTPUT_KEY

            chosen = "json" if json_alias and output == "text" else output
            click.get_current_context().meta[OUTPUT_KEY] = chosen
            return given(*args, as_json=chosen != "text", **kwargs)

        command: Any = click.option(
            "--json", "json_alias", is_flag=True, help="Print JSON: the same as -o json."
        )(with_output)
        command = click.option(
            "-o",
            "--output",
            "output",
            type=click.Choice(OUTPUTS),
            default="text",
            show_default=True,
            help="text, json, or jsonl (one JSON object per line, for tools that stream).",
        )(command)
        return command  # type: ignore[no-any-return]

    return add


def status_option(help: str) -> Callable[[F], F]:
    """``--status``, repeatable, one of the workflow statuses (``{statuses}`` in ``help``)."""
    import click

    from durable._records import WorkflowStatus

    choices = [s.value for s in WorkflowStatus]
    return click.option(
        "--status",
        "statuses",
        multiple=True,
        type=click.Choice(choices),
        metavar="STATUS",
        help=help.format(statuses=", ".join(choices)),
    )


def count_option(flag: str, *, default: int, minimum: int, help: str) -> Callable[[F], F]:
    """A whole-number option with a default (``--limit``, ``--keep-snapshots``)."""
    import click

    kind = click.IntRange(min=minimum)
    return click.option(flag, type=kind, default=default, show_default=True, metavar="N", help=help)


def workflow_id_argument(required: bool = True) -> Callable[[F], F]:
    """The ``ID`` argument of a command on one workflow: a whole id, or a unique prefix of one.

    Default ids are long (a name and a fingerprint); any prefix that names
    one workflow of the store will do. An ambiguous one is refused with the
    candidates listed.
    """
    import click

    def resolve(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        state = ctx.find_object(State)
        assert state is not None
        return state.resolve_id(value)

    return click.argument(
        "workflow_id", metavar="ID" if required else "[ID]", required=required, callback=resolve
    )


def shows_workflow(name: str) -> Callable[[Callable[..., Any]], click.Command]:
    """A command that shows one workflow: ``durable NAME ID [--json]``."""
    import click

    def decorate(command: Callable[..., Any]) -> click.Command:
        decorated = workflow_id_argument()(json_flag()(click.pass_obj(command)))
        return click.command(name)(decorated)

    return decorate


@dataclasses.dataclass(frozen=True)
class Filters:
    """What a command on many workflows selects them by (``--status``, ``--name``...)."""

    statuses: tuple[str, ...]
    name: str | None
    queue: str | None
    older_than: Any
    """A timedelta, or None."""
    dry_run: bool

    def given(self) -> bool:
        """Whether any filter (or ``--dry-run``) was given."""
        return bool(self.statuses or self.name or self.queue or self.older_than or self.dry_run)

    def arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``Store.cancel_many`` and ``resume_many``."""
        return {
            "status": list(self.statuses) or None,
            "name": self.name,
            "queue": self.queue,
            "older_than": self.older_than,
            "dry_run": self.dry_run,
        }


def filter_options(statuses: str) -> Callable[[F], F]:
    """The filters of a command that acts on many workflows: status, name, queue, age, dry run.

    The command receives them as one ``filters`` argument (:class:`Filters`).
    """
    import click

    from durable._cli._parse import duration_callback

    def optional_duration(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        return None if value is None else duration_callback(ctx, param, value)

    def add(given: F) -> F:
        @functools.wraps(given)
        def taking_filters(*args: Any, **kwargs: Any) -> Any:
            names = ("statuses", "name", "queue", "older_than", "dry_run")
            filters = Filters(**{name: kwargs.pop(name) for name in names})
            return given(*args, filters=filters, **kwargs)

        command: Any = taking_filters
        for option in reversed(
            (
                status_option(statuses),
                click.option("--name", help="Only workflows of this registered name."),
                click.option("--queue", help="Only workflows enqueued on this queue."),
                click.option(
                    "--older-than",
                    metavar="AGE",
                    callback=optional_duration,
                    help="Only workflows created more than AGE ago: 30d, 12h, 15m, 90s, 2w.",
                ),
                click.option("--dry-run", is_flag=True, help="List what it would do; do nothing."),
            )
        ):
            command = option(command)
        return command  # type: ignore[no-any-return]

    return add


def imports_option(required: bool) -> Callable[[F], F]:
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


def import_modules(modules: Sequence[str]) -> None:
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
                raise Failure(
                    f"cannot import {name!r}: no such module in {os.getcwd()} or on sys.path"
                ) from exc
            raise Failure(f"importing {name!r} failed: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            raise Failure(f"importing {name!r} failed: {type(exc).__name__}: {exc}") from exc
