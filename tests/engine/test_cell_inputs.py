"""What a ``%%durable`` cell reads and assigns; how its inputs are fingerprinted."""

from __future__ import annotations

import threading

import pytest

import durable
from durable._cell_inputs import inputs_fingerprint, names_of


@pytest.mark.parametrize(
    ("source", "reads", "assigned"),
    [
        ("total = sum(range(n))", ["sum", "range", "n"], ["total"]),
        ("df = df.dropna()", ["df"], ["df"]),  # overwrites its own input: reads it
        ("x = 1\ny = x + z", ["z"], ["x", "y"]),
        ("import numpy as np\nfrom os import path", [], ["np", "path"]),
        ("def f(a):\n    b = a + k\n    return b\nr = f(2)", ["k"], ["f", "r"]),
        ("class C:\n    size = limit\n", ["limit"], ["C"]),
        ("s = [i * w for i in items]", ["w", "items"], ["s"]),
        ("for row in rows:\n    acc += row", ["rows", "acc"], ["row", "acc"]),
        # A subscript or attribute target reads its base and index.
        ("params['seed'] = 42\nx[i] = v", ["params", "x", "i", "v"], []),
        # Bound only maybe (a branch, a loop that may not run): a later read is an input.
        (
            "if 'df' not in globals():\n    df = load()\ndf2 = df",
            ["globals", "load", "df"],
            ["df", "df2"],
        ),
        ("for r in rows:\n    last = r\nout = last", ["rows", "last"], ["r", "last", "out"]),
        # Defaults, decorators and bases are read where the definition stands.
        ("def h(v=t):\n    return v\nf = lambda w=u: w", ["t", "u"], ["h", "f"]),
        ("class K(Base, metaclass=Meta):\n    pass", ["Base", "Meta"], ["K"]),
        # A local of one method does not hide a global read in another.
        (
            "class K:\n    def a(self):\n        g = 1\n        return g\n"
            "    def b(self):\n        return g",
            ["g"],
            ["K"],
        ),
        ("_private = _seed + 1", ["_seed"], ["_private"]),
    ],
)
def test_a_cell_reads_what_it_uses_before_assigning_it(
    source: str, reads: list[str], assigned: list[str]
) -> None:
    found_reads, found_assigned = names_of(source)
    assert sorted(found_reads) == sorted(reads)
    assert sorted(found_assigned) == sorted(assigned)


def test_inputs_are_fingerprinted_by_value_and_modules_by_name() -> None:
    import json

    one = inputs_fingerprint(["n", "json", "missing"], {"n": 1, "json": json})
    assert one == inputs_fingerprint(["n", "json"], {"n": 1, "json": json})
    assert one != inputs_fingerprint(["n", "json"], {"n": 2, "json": json})


def test_the_notebooks_functions_count_by_what_they_do() -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec("k = 2\ndef f(x):\n    return x * k\n", namespace)
    for value in namespace.values():
        if callable(value):
            value.__module__ = "__main__"  # type: ignore[union-attr]
    before = inputs_fingerprint(["f"], namespace)
    namespace["k"] = 3  # a global the helper reads changed
    assert inputs_fingerprint(["f"], namespace) != before
    namespace["k"] = 2
    assert inputs_fingerprint(["f"], namespace) == before
    exec("def f(x):\n    return x * k + 1\n", namespace)
    namespace["f"].__module__ = "__main__"  # type: ignore[attr-defined]
    assert inputs_fingerprint(["f"], namespace) != before  # its body was edited


def test_an_input_that_cannot_be_fingerprinted_is_named() -> None:
    with pytest.raises(durable.ConfigurationError, match="reads 'lock'"):
        inputs_fingerprint(["lock"], {"lock": threading.Lock()})
