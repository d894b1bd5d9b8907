"""What a ``%%durable`` cell reads and assigns (in a real kernel: tests/docs/test_cell_magic.py)."""

from __future__ import annotations

import threading

import pytest

import durable
from durable._cells import inputs_fingerprint, names_of


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


def test_an_input_that_cannot_be_fingerprinted_is_named() -> None:
    with pytest.raises(durable.ConfigurationError, match="reads 'lock'"):
        inputs_fingerprint(["lock"], {"lock": threading.Lock()})
