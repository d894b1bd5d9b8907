"""Statements compiled ahead of time, and SQLAlchemy for the rest, on first use.

Opening a store and running workflows uses only fixed statements. Compiled
once into a generated module (``_precompile`` writes it; a test checks it
against SQLAlchemy), they need no SQLAlchemy at run time, whose import is
most of a short script's start-up and memory. A statement built per call
(a listing's filters, an IN list) comes from the real ``Statements``, built
the first time one is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from durable.backends._compiled import precompiled


class Precompiled:
    """Answers as ``Statements`` does: a compiled entry where there is one, else the real thing.

    ``texts`` mirrors the statements' attributes: an entry's literals
    (``Entry.text``), a nested mapping for a group of statements
    (``queues``), a list of pairs for a mapping of statements (``rows``).
    """

    def __init__(
        self, texts: Mapping[str, Any], build: Callable[[], object], path: tuple[str, ...] = ()
    ) -> None:
        self._build = build
        self._path = path
        for name, value in texts.items():
            if isinstance(value, dict):
                setattr(self, name, Precompiled(value, build, (*path, name)))
            elif isinstance(value, list):
                setattr(self, name, {key: precompiled(*text) for key, text in value})
            else:
                setattr(self, name, precompiled(*value))

    def __getattr__(self, name: str) -> Any:
        # Only for what was not compiled ahead: found once, then kept here.
        if name.startswith("__"):
            raise AttributeError(name)
        target = self._build()
        for part in self._path:
            target = getattr(target, part)
        found = getattr(target, name)
        setattr(self, name, found)
        return found
