"""The package's shape, kept by the suite (docs/architecture.md says why).

- modules talk through public methods: no ``obj._member`` of another object;
- no import circle, counting imports under TYPE_CHECKING and inside functions;
- ``durable/backends/`` imports nothing of the engine, and the leaves import
  nothing of durable but other leaves;
- each storage operation is written once: no ``x``/``ax`` twins in backends;
- modules under 600 lines and functions under 80 (docstrings not counted);
- tests use the public API: a private module is imported only by the unit
  test named for it.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "durable"

LEAVES = {
    "durable._errors",
    "durable._records",
    "durable._aio",
}
"""The shared vocabulary: importable by everything, importing nothing of durable but each other."""

DEBT = {
    "circles": 0,
    "backend imports of the engine": 0,
    "private reaches": 0,
    "twins": 0,
    "too big": 0,
    "private imports in tests": 0,
}
"""What each check tolerates: all paid off by the restructuring (issue 15). A
check fails if its count grows; a figure above 0 here would have to come with
a reason."""

NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}
"""Members whose leading underscore is a public API of the standard library."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def _modules() -> dict[str, tuple[Path, ast.Module]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    return {_module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in paths}


def _imports(name: str, tree: ast.Module, path: Path) -> Iterator[tuple[str, int]]:
    """Every durable module ``name`` imports, wherever the import statement is."""
    modules = _modules()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("durable"):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if not base.startswith("durable"):
                continue
            for alias in node.names:
                child = f"{base}.{alias.name}"
                yield (child if child in modules else base), node.lineno


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {target for target, _ in _imports(name, tree, path) if target in modules}
        for name, (path, tree) in modules.items()
    }


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle() -> None:
    graph = _graph()
    # The package's __init__ re-exports the public API; a module that imports
    # `durable` itself would close a circle through it, which counts too.
    circles = _circles(graph)
    _within_debt("circles", [" <-> ".join(c) for c in circles])


def test_backends_import_nothing_of_the_engine() -> None:
    wrong = [
        f"{name} imports {target} (line {line})"
        for name, (path, tree) in _modules().items()
        if name.startswith("durable.backends")
        for target, line in _imports(name, tree, path)
        if not target.startswith("durable.backends") and target not in LEAVES
    ]
    _within_debt("backend imports of the engine", wrong)


def test_leaves_import_only_leaves() -> None:
    wrong = [
        f"{name} imports {target} (line {line})"
        for name, (path, tree) in _modules().items()
        if name in LEAVES
        for target, line in _imports(name, tree, path)
        if target not in LEAVES
    ]
    assert not wrong, "\n".join(wrong)


def _module_aliases(tree: ast.Module) -> set[str]:
    """Names bound to modules by imports: ``mod._x`` is a module's member, not an object's."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names


def test_no_reach_into_another_objects_private_members() -> None:
    reaches = []
    for path, tree in _modules().values():
        modules = _module_aliases(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            attr = node.attr
            if not attr.startswith("_") or attr.startswith("__") or attr in NAMEDTUPLE_API:
                continue
            if attr.startswith("_self_"):
                continue  # wrapt's documented namespace for a proxy's own attributes
            owner = node.value
            if isinstance(owner, ast.Name) and (owner.id in ("self", "cls") or owner.id in modules):
                continue
            if isinstance(owner, ast.Call) and ast.unparse(owner.func) == "super":
                continue
            reaches.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    _within_debt("private reaches", reaches)


def test_each_backend_operation_is_written_once() -> None:
    twins = []
    for name, (_, tree) in _modules().items():
        if not name.startswith("durable.backends"):
            continue
        for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
            methods = {
                f.name for f in cls.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
            twins += [f"{name}.{cls.name}.{m}" for m in methods if m[1:] in methods and m[0] == "a"]
    _within_debt("twins", twins)


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    assert node.end_lineno is not None
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        assert first.end_lineno is not None
        lines -= first.end_lineno - first.lineno + 1
    return lines


def test_small_modules_and_functions() -> None:
    too_big = []
    for path, tree in _modules().values():
        where = path.relative_to(ROOT)
        length = len(path.read_text().splitlines())
        if length > 600:
            too_big.append(f"{where}: {length} lines")
        for node in ast.walk(tree):
            functions = (ast.FunctionDef, ast.AsyncFunctionDef)
            if isinstance(node, functions) and (lines := _body_lines(node)) > 80:
                too_big.append(f"{where}:{node.lineno} {node.name}: {lines} lines")
    _within_debt("too big", too_big)


_PRIVATE_IMPORT = re.compile(
    r"^\s*(?:from\s+durable(?:\.\w+)*\s+import\s+(?P<names>.+)|(?:from|import)\s+(?P<path>durable[\w.]*))"
)


def _private_parts(line: str) -> list[str]:
    m = _PRIVATE_IMPORT.match(line)
    if m is None:
        return []
    if m["path"] is not None and m["names"] is None:
        return [p for p in m["path"].split(".") if p.startswith("_") and not p.startswith("__")]
    head = line.split("import", 1)[0]
    parts = [p for p in head.split()[1].split(".") if p.startswith("_") and not p.startswith("__")]
    names = [n.strip().split(" as ")[0] for n in m["names"].strip("() \\").split(",")]
    return parts + [n for n in names if n.startswith("_") and not n.startswith("__")]


def test_tests_use_the_public_api() -> None:
    """A test imports a private module only if it is that module's unit test.

    ``tests/backends/test_checkpointer.py`` may import
    ``durable.backends._checkpointer``; nothing else may.
    """
    wrong = [
        f"{path.relative_to(ROOT)}:{i}: {line.strip()}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        for part in _private_parts(line)
        if part.lstrip("_") not in path.stem
    ]
    _within_debt("private imports in tests", wrong)


def _within_debt(measure: str, found: list[str]) -> None:
    shown = "\n".join(found)
    assert len(found) <= DEBT[measure], f"{measure}: {len(found)} > {DEBT[measure]}:\n{shown}"
    assert len(found) == DEBT[measure], (
        f"{measure} went down to {len(found)}: lower DEBT[{measure!r}] here to keep it there"
    )
