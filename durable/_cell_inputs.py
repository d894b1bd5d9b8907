"""What a ``%%durable`` cell reads and assigns, and the fingerprint of what it reads.

The worst a checkpointed cell can do is restore stale values although an
input changed, so every doubt counts as an input: a name is "assigned
before read" only when an earlier statement at the cell's top level binds
it unconditionally; a function or class the notebook defined is
fingerprinted by its code and what it reads (defaults, closures, the
globals it names), not by its name.
"""

from __future__ import annotations

import ast
import re
import types
from collections.abc import Iterator
from typing import Any

from durable._errors import ConfigurationError
from durable._identity import fingerprint

_IPYTHON = re.compile(r"^(_|__|___|_i+|_i\d+|_\d+|_ih|_oh|_dh|_exit_code|In|Out)$")
"""Names IPython keeps in the namespace itself (history and outputs): never inputs."""
_HIDDEN = {"get_ipython", "exit", "quit", "open"}


def names_of(source: str) -> tuple[list[str], list[str]]:
    """The names a cell reads before assigning them, and the names it may assign.

    In the order the statements run: ``df = df.dropna()`` reads its input
    ``df``; ``for row in rows`` binds ``row`` before its body reads it. A
    name bound only in a branch, a loop or a ``try`` may not be bound, so
    a later read of it is still an input.
    """
    names = _Names()
    names.scan(ast.parse(source).body, certain=True)
    return names.reads, names.assigned


class _Names:
    """Reads and bindings of the notebook's globals, in the order they happen."""

    def __init__(self) -> None:
        self.reads: list[str] = []
        self.assigned: list[str] = []
        self.certain: set[str] = set()

    def load(self, node: ast.AST | None) -> None:
        for name in _loaded(node, frozenset()) if node is not None else ():
            if name not in self.certain and name not in self.reads:
                self.reads.append(name)

    def bind(self, certain: bool, *names: str) -> None:
        self.assigned += [n for n in names if n not in self.assigned]
        if certain:
            self.certain.update(names)

    def target(self, node: ast.AST, certain: bool) -> None:
        """An assignment target: what it reads (``x[i] = ...`` reads x and i) first."""
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Subscript, ast.Attribute)):
                self.load(inner.value)
                if isinstance(inner, ast.Subscript):
                    self.load(inner.slice)
        stored = [n for n in ast.walk(node) if isinstance(n, ast.Name)]
        self.bind(certain, *(n.id for n in stored if not _inside_subscript(node, n)))

    def scan(self, statements: list[ast.stmt], certain: bool) -> None:
        for st in statements:
            self.statement(st, certain)

    def block(self, statements: list[ast.stmt], *targets: ast.AST) -> None:
        """A block that may not run: within it, its own bindings hold; after it, none is sure."""
        saved = set(self.certain)
        for target in targets:
            self.target(target, certain=True)
        self.scan(statements, certain=True)
        self.certain = saved

    def statement(self, st: ast.stmt, certain: bool) -> None:
        if isinstance(st, (ast.For, ast.AsyncFor)):
            self.load(st.iter)
            self.block(st.body, st.target)
            self.block(st.orelse)
        elif isinstance(st, (ast.While, ast.If)):
            self.load(st.test)
            self.block(st.body)
            self.block(st.orelse)
        elif isinstance(st, (ast.With, ast.AsyncWith)):
            for item in st.items:
                self.load(item.context_expr)
                if item.optional_vars is not None:
                    self.target(item.optional_vars, certain)
            self.scan(st.body, certain)
        elif isinstance(st, ast.Try):
            self.block(st.body + st.orelse)
            for handler in st.handlers:
                self.load(handler.type)
                if handler.name:
                    self.bind(False, handler.name)
                self.block(handler.body)
            self.scan(st.finalbody, certain)
        elif isinstance(st, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            self.load(st.value)
            if isinstance(st, ast.AugAssign):
                self.load(
                    ast.Name(st.target.id, ast.Load())
                    if isinstance(st.target, ast.Name)
                    else st.target
                )
            for target in st.targets if isinstance(st, ast.Assign) else [st.target]:
                self.target(target, certain)
        elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.load(st)
            self.bind(certain, st.name)
        elif isinstance(st, (ast.Import, ast.ImportFrom)):
            self.bind(
                certain, *((a.asname or a.name).split(".")[0] for a in st.names if a.name != "*")
            )
        elif isinstance(st, ast.Global):
            self.bind(certain, *st.names)
        else:
            self.load(st)


def _inside_subscript(target: ast.AST, name: ast.Name) -> bool:
    """Whether ``name`` sits inside a subscript or attribute of ``target`` (a read, not a bind)."""
    for inner in ast.walk(target):
        if isinstance(inner, (ast.Subscript, ast.Attribute)) and any(
            n is name for n in ast.walk(inner)
        ):
            return True
    return False


def _loaded(node: ast.AST, local: frozenset[str]) -> Iterator[str]:
    """The global names ``node`` reads; ``local`` are the enclosing functions' own names.

    A definition reads its decorators, defaults, annotations and bases where
    it stands, and its body's globals (a function reads them when called).
    """
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        arguments = node.args
        outside: list[ast.AST] = [*arguments.defaults, *(d for d in arguments.kw_defaults if d)]
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
        if not isinstance(node, ast.Lambda):
            outside += [*node.decorator_list, *(a.annotation for a in every if a.annotation)]
            outside += [node.returns] if node.returns is not None else []
        for part in outside:
            yield from _loaded(part, local)
        body = [node.body] if isinstance(node, ast.Lambda) else node.body
        own = local | {a.arg for a in every} | _bound_in(body)
        for part in body:
            yield from _loaded(part, own)
        return
    if isinstance(node, ast.ClassDef):
        for part in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            yield from _loaded(part, local)
        for part in node.body:  # a class body's own names are not visible in its methods
            yield from _loaded(part, local)
        return
    if isinstance(node, _COMPREHENSIONS):
        own = local | {
            n.id for gen in node.generators for n in ast.walk(gen.target) if isinstance(n, ast.Name)
        }
        for child in ast.iter_child_nodes(node):
            yield from _loaded(child, own)
        return
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in local:
        yield node.id
    for child in ast.iter_child_nodes(node):
        yield from _loaded(child, local)


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _bound_in(body: list[ast.stmt] | list[ast.expr]) -> frozenset[str]:
    """The names a function body binds itself (not those of functions nested in it)."""
    found: set[str] = set()
    declared_global: set[str] = set()
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Global):
            declared_global.update(node.names)
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            found.add(node.id)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
            continue  # its own scope
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update((a.asname or a.name).split(".")[0] for a in node.names)
        if isinstance(
            node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
        ):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return frozenset(found - declared_global)


def inputs_fingerprint(reads: list[str], namespace: dict[str, Any]) -> str:
    """The fingerprint of what a cell reads: values, and the notebook's code by value."""
    values: dict[str, Any] = {}
    for name in reads:
        if name not in namespace or name in _HIDDEN or _IPYTHON.match(name):
            continue  # a builtin, or defined later: not an input
        value = namespace[name]
        try:
            values[name] = _describe(value, namespace, set())
            fingerprint((), {name: values[name]})
        except Exception as exc:
            raise ConfigurationError(
                f"this cell reads {name!r} (a {type(value).__qualname__}), which cannot be "
                f"fingerprinted ({type(exc).__name__}: {exc}), so durable cannot tell whether "
                f"it changed. Read plain data in a %%durable cell, or create {name!r} in it.",
                variable=name,
            ) from exc
    return fingerprint((), values)


def _describe(value: Any, namespace: dict[str, Any], seen: set[int]) -> Any:
    """``value`` as the fingerprint should see it: the notebook's code by what it is."""
    if isinstance(value, types.ModuleType):
        return ("module", value.__name__)
    if id(value) in seen:
        return ("seen", getattr(value, "__qualname__", type(value).__qualname__))
    if isinstance(value, (types.FunctionType, type)) and value.__module__ == "__main__":
        seen.add(id(value))
        if isinstance(value, type):
            members = {
                k: _member(v, namespace, seen)
                for k, v in vars(value).items()
                if not k.startswith("__") or k in ("__init__", "__call__")
            }
            bases = [_describe(b, namespace, seen) for b in value.__bases__]
            return ("class", value.__qualname__, bases, members)
        return _function(value, namespace, seen)
    if isinstance(value, (list, tuple)):
        return type(value)(_describe(v, namespace, seen) for v in value)
    if isinstance(value, dict):
        return {k: _describe(v, namespace, seen) for k, v in value.items()}
    if type(value).__module__ == "__main__" and hasattr(value, "__dict__"):
        cls = _describe(type(value), namespace, seen)
        return ("instance", cls, _describe(dict(vars(value)), namespace, seen))
    return value


def _member(member: Any, namespace: dict[str, Any], seen: set[int]) -> Any:
    """A class member: methods by value (static, class, property too), data as it is."""
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    if isinstance(member, property):
        return [_member(f, namespace, seen) for f in (member.fget, member.fset) if f]
    described = _describe(member, namespace, seen)
    try:
        fingerprint((), {"member": described})
    except Exception:  # a descriptor that does not pickle: its type stands for it
        return ("member", type(member).__qualname__)
    return described


def _function(fn: types.FunctionType, namespace: dict[str, Any], seen: set[int]) -> Any:
    """A notebook function by value: its code, defaults, closure, and the globals it names."""
    names: set[str] = set()

    def code(c: types.CodeType) -> Any:
        names.update(c.co_names)
        consts = [code(k) if isinstance(k, types.CodeType) else repr(k) for k in c.co_consts]
        return (c.co_code, c.co_names, c.co_varnames, consts)

    body = code(fn.__code__)
    closure = [_describe(cell.cell_contents, namespace, seen) for cell in fn.__closure__ or ()]
    used = {
        n: _describe(namespace[n], namespace, seen)
        for n in sorted(names)
        if n in namespace and not _IPYTHON.match(n)
    }
    defaults = _describe(list(fn.__defaults__ or ()), namespace, seen)
    kwdefaults = _describe(dict(fn.__kwdefaults__ or {}), namespace, seen)
    return ("function", fn.__qualname__, body, defaults, kwdefaults, closure, used)
