"""docs/architecture.md names every module of the package, and only modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()


def _modules() -> set[str]:
    """Each private module's short name (``_steps``), the way the page names them."""
    names = set()
    for path in (ROOT / "durable").rglob("*.py"):
        if path.name != "__init__.py" and path.stem.startswith("_") and path.stem != "__main__":
            names.add(path.stem)
    names.update(p.name for p in (ROOT / "durable").iterdir() if p.is_dir() and p.name[0] == "_")
    return names - {"__pycache__"}


def _named() -> set[str]:
    cells = re.findall(r"`([^`]+)`", DOC)
    found = set()
    for cell in cells:
        for token in re.split(r"[\s,./()]+", cell):
            if re.fullmatch(r"_[a-z][a-z_]*", token):
                found.add(token)
    return found


def test_every_module_is_named() -> None:
    missing = sorted(_modules() - _named())
    assert not missing, f"docs/architecture.md does not say what these own: {missing}"


def test_every_named_module_exists() -> None:
    ignored = {"_self_"}  # wrapt's attribute prefix, not a module
    unknown = sorted(n for n in _named() - _modules() - ignored if not n.startswith("_self"))
    private_members = {"_take", "_claim", "_own", "_execute"}  # methods the step path names
    assert set(unknown) <= private_members, unknown
