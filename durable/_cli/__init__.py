"""The ``durable`` command line: look into a store, rewind, fork, clean up, recover.

click and rich come with the ``cli`` extra and are imported when the command
runs, never by ``import durable``. The package is laid out by job:

- ``_app``: the group, its options, error handling and exit codes (``main``);
- ``_state``: what every command shares (the store, the console, options);
- ``_parse``: durations and times as the user types them;
- ``_format``: every table, line and JSON document the commands print;
- ``_inspect``, ``_change``, ``_work``: the commands that read a store,
  change it, and run workflows.

To add a command, write it in the module of its job and list it in that
module's ``COMMANDS``; click is imported only once ``main`` found it
installed. Errors the user can act on (any :class:`durable.DurableError`, a
bad option) are one ``error: ...`` line on stderr; ``--debug`` adds the
traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from durable._cli._parse import parse_when
from durable._durations import parse_duration

if TYPE_CHECKING:
    import click

EXTRA_MISSING = 'the durable CLI needs its extra: pip install "durable-sdk[cli]"'


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
    from durable._cli._app import run

    return run(argv)


def build_cli() -> click.Group:
    """The ``durable`` click group with every command (click must be installed)."""
    from durable._cli._app import build_cli as build

    return build()


__all__ = ["build_cli", "main", "parse_duration", "parse_when"]
