"""``durable ui``: the local web dashboard (the ``ui`` extra), started from the command line."""

from __future__ import annotations

import click

from durable._cli._state import Failure, State

UI_EXTRA_MISSING = 'durable ui needs its extra: pip install "durable-sdk[ui]"'


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="The port."
)
@click.option(
    "--read-only", is_flag=True, help="Show everything, change nothing (no cancel, fork...)."
)
@click.option(
    "--trust-store",
    is_flag=True,
    help="Preview every stored value, signed or not (unpickling runs code: only for a "
    "store that nobody untrusted writes to).",
)
@click.option(
    "--token",
    envvar="DURABLE_UI_TOKEN",
    metavar="TOKEN",
    help="Access token every request must carry; required with a --host other than "
    "loopback. Default: $DURABLE_UI_TOKEN (better than the flag: others can read a "
    "command line).",
)
@click.pass_obj
def ui(
    state: State, host: str, port: int, read_only: bool, trust_store: bool, token: str | None
) -> None:
    """Open the web dashboard on the store and print its address (Ctrl-C stops it)."""
    try:
        import jinja2  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise Failure(f"{UI_EXTRA_MISSING} ({exc.name} is missing)") from None
    from durable.ui import serve

    url, options = state.runtime_arguments()
    serve(
        url,
        host=host,
        port=port,
        token=token or None,
        read_only=read_only,
        trust_store=trust_store,
        announce=click.echo,
        **options,
    )


COMMANDS = (ui,)
"""This module's commands."""
