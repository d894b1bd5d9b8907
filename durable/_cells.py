"""Notebook cells that checkpoint themselves: ``%load_ext durable``, then ``%%durable [name]``.

A cell under the magic runs as a workflow of one step, in the current
runtime's store. What it assigns is recorded when it finishes; run again
with the same code and the same values of the names it reads (also after a
kernel restart), it restores those names without running. A changed cell,
or a changed input, runs again. Loaded only by ``%load_ext durable``: a
plain ``import durable`` imports none of IPython.

What counts as an input: every name the cell reads before assigning it (at
the top level, in statement order) that the notebook's namespace holds,
fingerprinted like a workflow's arguments (modules by name). What is
recorded: every name the cell assigns (variables, functions, classes,
imports), pickled with cloudpickle. What is not: printed output and
displays (not replayed: the cell says it restored instead), files the cell
wrote, and changes to objects it did not assign (``df.drop(..., inplace=True)``
of an input).
"""

from __future__ import annotations

import argparse
import shlex
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from durable._cell_inputs import inputs_fingerprint, names_of
from durable._decorators import durable_workflow, step
from durable._digests import sha256
from durable._engine._runtime import current_runtime
from durable._errors import ConfigurationError, SerializationError
from durable._live import quiet
from durable._serialization import pickle_value


@dataclass
class _Running:
    """The cell the step runs: its code and the namespace it runs in."""

    code: str
    namespace: dict[str, Any]
    assigned: list[str]


_CURRENT: list[_Running] = []


@step(name="durable.cell.run")
def _run_cell(cell_id: str) -> dict[str, Any]:
    """Run the cell in its namespace; the values it assigned (what is recorded)."""
    if not _CURRENT:
        raise ConfigurationError(
            f"cell {cell_id!r} runs only in the notebook kernel that defines it: run the "
            "cell again there (nothing outside a kernel can resume a cell)"
        )
    running = _CURRENT[-1]
    exec(compile(running.code, f"<cell {cell_id}>", "exec"), running.namespace)
    outputs = {n: running.namespace[n] for n in running.assigned if n in running.namespace}
    unpicklable = []
    for name, value in outputs.items():
        try:
            pickle_value(value, what=f"cell variable {name!r}")
        except SerializationError:
            unpicklable.append(f"{name!r} (a {type(value).__qualname__})")
    if unpicklable:
        # The cell ran and its values are in the notebook; only the record fails.
        raise SerializationError(
            f"cell {cell_id!r} ran, but {', '.join(unpicklable)} does not pickle, so it "
            "cannot be recorded and the cell will run again next time. Assign only "
            "picklable values in a %%durable cell (create clients and connections in "
            "another cell).",
            what=f"variables of cell {cell_id!r}",
        )
    return outputs


@durable_workflow(name="durable.cell")
def _cell(code: str, inputs: str) -> dict[str, Any]:
    """One notebook cell: its code and its inputs' fingerprint name the call."""
    return _run_cell(_cell_key(code, inputs))


def _cell_key(code: str, inputs: str) -> str:
    return sha256(f"{code}\x00{inputs}".encode("utf-8", "surrogatepass")).hexdigest()[:20]


@contextmanager
def _running(code: str, namespace: dict[str, Any], assigned: list[str]) -> Iterator[None]:
    _CURRENT.append(_Running(code, namespace, assigned))
    try:
        yield
    finally:
        _CURRENT.pop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%%durable", add_help=False)
    parser.add_argument("name", nargs="?", default=None)
    parser.add_argument("--rerun", action="store_true")
    return parser


def run_cell(line: str, cell: str, shell: Any) -> None:
    """Run (or restore) one ``%%durable`` cell in ``shell``'s namespace."""
    try:
        options = _parser().parse_args(shlex.split(line))
    except SystemExit:
        raise ConfigurationError(
            f"%%durable {line}: give at most a name and --rerun, e.g. %%durable prepare"
        ) from None
    code = shell.transform_cell(cell)
    if "get_ipython()" in code:
        raise ConfigurationError(
            "a %%durable cell must be plain Python: its magics and shell commands (%time, "
            "!ls) hide what it reads and assigns. Move them to another cell."
        )
    namespace = shell.user_ns
    reads, assigned = names_of(code)
    inputs = inputs_fingerprint(reads, namespace)
    call = f"cell:{options.name or 'cell'}:{_cell_key(code, inputs)}"
    runtime = current_runtime()
    # Every take of this call is kept (newest first); --rerun starts another.
    takes = runtime.store.list_workflows(id_prefix=call, limit=None)
    latest = takes[0] if takes else None
    restoring = latest is not None and latest.status == "success" and not options.rerun
    workflow_id = call if latest is None else latest.workflow_id
    if options.rerun and latest is not None:
        workflow_id = f"{call}~{uuid.uuid4().hex[:12]}"  # a new take, whatever was deleted
    with _running(code, namespace, assigned), quiet():  # the cell shows its own output
        outputs = _cell.run_sync(code, inputs, workflow_id=workflow_id)
    if restoring:
        assert latest is not None
        namespace.update(outputs)
        print(_restored(list(outputs), latest))


def _restored(names: list[str], info: Any) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.finished_at or info.created_at))
    took = ""
    if info.finished_at is not None:
        took = f", it ran {info.finished_at - (info.started_at or info.created_at):.3g} s"
    return (
        f"durable: restored {', '.join(names) or 'nothing'} (recorded {when}{took}); its "
        "output is not replayed. %%durable --rerun runs it again."
    )


def register(shell: Any) -> None:
    """Add the ``%%durable`` cell magic to an IPython shell."""

    def durable_cell(line: str, cell: str) -> None:
        run_cell(line, cell, shell)

    durable_cell.__doc__ = __doc__
    shell.register_magic_function(durable_cell, magic_kind="cell", magic_name="durable")
