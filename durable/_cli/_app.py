"""The ``durable`` group: its options, error handling and exit codes."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from durable._cli import _change, _inspect, _queues, _schedule, _ui, _work
from durable._cli._state import Failure, State
from durable._errors import DurableError


def run(argv: Sequence[str] | None) -> int:
    """Run the command line once click and rich are known to be there (see ``main``)."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # `durable list | head`: the reader left; say nothing more, and keep
        # Python from complaining about stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _run(argv: Sequence[str] | None) -> int:
    import click

    state = State()
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
    except (DurableError, Failure) as exc:
        _error(str(exc), exc if state.debug else None)
        return 1
    # standalone_mode=False hands back ctx.exit() codes, or the command's None.
    return code if isinstance(code, int) else 0


def _error(message: str, exc: BaseException | None = None) -> None:
    if exc is not None:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    # One line, whatever the message holds, so that scripts can grep it.
    print(f"error: {' '.join(message.split())}", file=sys.stderr)


def _setting_flags(command: Any) -> Any:
    """A flag per runtime setting (``--lease-seconds``...), read as its variable would be."""
    import click

    from durable._settings import FIELDS, SECRETS, env_name

    # Never a secret on the command line (other users see it in the process list).
    for field in reversed([f for f in FIELDS if f not in SECRETS]):
        flag = "--" + field.replace("_", "-")
        command = click.option(
            flag,
            field,
            metavar="VALUE",
            help=f"The runtime's {field} (default: ${env_name(field)}, [tool.durable], built-in).",
        )(command)
    return command


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
        "Default: $DURABLE_URL, else url in [tool.durable] of pyproject.toml, else "
        "sqlite:///.durable/durable.db.",
    )
    @click.option("--debug", is_flag=True, help="Show tracebacks and the library's debug log.")
    @_setting_flags
    @click.version_option(durable.__version__, "-V", "--version", prog_name="durable")
    @click.pass_context
    def cli(ctx: click.Context, /, url: str | None, debug: bool, **settings: str | None) -> None:
        """Inspect and maintain a durable store: list, show, rewind, fork, clean up, recover.

        Each setting of the runtime is also read from $DURABLE_<NAME> and from
        [tool.durable] in pyproject.toml; a flag here wins over both.
        """
        state = ctx.ensure_object(State)
        state.url = url
        state.debug = debug
        state.settings = {name: value for name, value in settings.items() if value is not None}
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

    for command in (
        *_inspect.COMMANDS,
        *_change.COMMANDS,
        *_work.COMMANDS,
        *_schedule.COMMANDS,
        *_queues.COMMANDS,
        *_ui.COMMANDS,
    ):
        cli.add_command(command)
    return cli
