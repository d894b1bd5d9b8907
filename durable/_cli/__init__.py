"""The ``durable`` command line: look into a store, rewind, fork, clean up, recover.

click and rich come with the ``cli`` extra and are imported when the command
runs, never by ``import durable``. The package is laid out by job:

- ``_app``: the group, its options, error handling and exit codes (``main``);
- ``_state``: what every command shares (the store, the console, options);
- ``_parse``: durations and times as the user types them;
- ``_format``: every table, line and JSON document the commands print;
- ``_inspect``, ``_change``, ``_run``: the commands that read a store, change
  it, and run workflows.

To add a command, write it in the module of its job and add it in that
module's ``add_commands``. Errors the user can act on (any
:class:`durable.DurableError`, a bad option) are one ``error: ...`` line on
stderr; ``--debug`` adds the traceback.
"""

from durable._cli._app import build_cli, main
from durable._cli._parse import parse_duration, parse_when

__all__ = ["build_cli", "main", "parse_duration", "parse_when"]
