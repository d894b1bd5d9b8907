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
import ast
import hashlib
import shlex
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from durable._decorators import durable_workflow, step
from durable._engine._runtime import current_runtime
from durable._errors import ConfigurationError, SerializationError
from durable._identity import fingerprint
from durable._serialization import pickle_value

_HIDDEN = {"In", "Out", "get_ipython", "exit", "quit", "open"}


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
    return hashlib.sha256(f"{code}\x00{inputs}".encode("utf-8", "surrogatepass")).hexdigest()[:20]


def names_of(source: str) -> tuple[list[str], list[str]]:
    """The names a cell reads before assigning them, and the names it assigns.

    In the order the statements run: a name read before the cell assigned
    it is an input (``df = df.dropna()`` reads its input ``df``; ``for row in
    rows`` assigns ``row`` before its body reads it). Inside the functions
    and classes the cell defines, only the globals they read count.
    """
    names = _Names()
    names.scan(ast.parse(source).body)
    return names.reads, names.assigned


class _Names:
    """Reads and assignments of the notebook's globals, in the order they happen."""

    def __init__(self) -> None:
        self.reads: list[str] = []
        self.assigned: list[str] = []

    def load(self, node: ast.AST | None) -> None:
        for name in _loaded(node) if node is not None else ():
            if name not in self.assigned and name not in self.reads:
                self.reads.append(name)

    def store(self, *names: str) -> None:
        self.assigned += [n for n in names if n not in self.assigned]

    def target(self, node: ast.AST) -> None:
        self.store(*(n.id for n in ast.walk(node) if isinstance(n, ast.Name)))
        for inner in ast.walk(node):  # x[i] = ..., a.b = ...: reads x, i, a
            if isinstance(inner, (ast.Subscript, ast.Attribute)):
                self.load(inner)

    def scan(self, statements: list[ast.stmt]) -> None:
        for st in statements:
            if isinstance(st, (ast.For, ast.AsyncFor)):
                self.load(st.iter)
                self.target(st.target)
                self.scan(st.body + st.orelse)
            elif isinstance(st, (ast.With, ast.AsyncWith)):
                for item in st.items:
                    self.load(item.context_expr)
                    if item.optional_vars is not None:
                        self.target(item.optional_vars)
                self.scan(st.body)
            elif isinstance(st, (ast.If, ast.While)):
                self.load(st.test)
                self.scan(st.body + st.orelse)
            elif isinstance(st, ast.Try):
                self.scan(st.body)
                for handler in st.handlers:
                    self.load(handler.type)
                    if handler.name:
                        self.store(handler.name)
                    self.scan(handler.body)
                self.scan(st.orelse + st.finalbody)
            elif isinstance(st, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                self.load(st.value)
                if isinstance(st, ast.AugAssign):
                    self.load(
                        ast.Name(st.target.id, ast.Load())
                        if isinstance(st.target, ast.Name)
                        else st.target
                    )
                targets = st.targets if isinstance(st, ast.Assign) else [st.target]
                for target in targets:
                    self.target(target)
            elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for decorator in st.decorator_list:
                    self.load(decorator)
                self.load(st)
                self.store(st.name)
            elif isinstance(st, (ast.Import, ast.ImportFrom)):
                self.store(*((a.asname or a.name).split(".")[0] for a in st.names if a.name != "*"))
            elif isinstance(st, ast.Global):
                self.store(*st.names)
            else:
                self.load(st)


def _loaded(node: ast.AST) -> Iterator[str]:
    """The global names an expression (or a definition) reads.

    A function's parameters and locals, a class body's own names, and a
    comprehension's variables are not globals.
    """
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
        local = {
            n.id
            for n in ast.walk(node)
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
        }
        if not isinstance(node, ast.ClassDef):
            arguments = node.args
            every = arguments.posonlyargs + arguments.args + arguments.kwonlyargs
            every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
            local |= {a.arg for a in every}
        inner_nodes: list[ast.AST] = (
            [node.body] if isinstance(node, ast.Lambda) else list(node.body)
        )
        for inner in inner_nodes:
            yield from (name for name in _loaded(inner) if name not in local)
        return
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        bound = {
            n.id for gen in node.generators for n in ast.walk(gen.target) if isinstance(n, ast.Name)
        }
        for child in ast.iter_child_nodes(node):
            yield from (name for name in _loaded(child) if name not in bound)
        return
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        yield node.id
    for child in ast.iter_child_nodes(node):
        yield from _loaded(child)


def inputs_fingerprint(reads: list[str], namespace: dict[str, Any]) -> str:
    """The fingerprint of the values of the names a cell reads (modules by name)."""
    values: dict[str, Any] = {}
    for name in reads:
        if name not in namespace or name in _HIDDEN or name.startswith("_"):
            continue  # a builtin, or defined later: not an input
        value = namespace[name]
        if isinstance(value, types.ModuleType):
            values[name] = ("module", value.__name__)
            continue
        try:
            fingerprint((), {name: value})
        except Exception as exc:
            raise ConfigurationError(
                f"this cell reads {name!r} (a {type(value).__qualname__}), which cannot be "
                f"fingerprinted ({type(exc).__name__}: {exc}), so durable cannot tell whether "
                f"it changed. Read plain data in a %%durable cell, or create {name!r} in it.",
                variable=name,
            ) from exc
        values[name] = value
    return fingerprint((), values)


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
        workflow_id = f"{call}~{len(takes)}"
    with _running(code, namespace, assigned):
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
