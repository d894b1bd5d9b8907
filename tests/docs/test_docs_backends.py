"""docs/backends.md: its contract snippet runs as a user's test module, and passes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from durable.backends import OPERATIONS

DOC = (Path(__file__).parents[2] / "docs" / "backends.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)


def test_the_page_lists_every_operation() -> None:
    listed = set(re.findall(r"`(\w+)`", DOC.split("The operations", 1)[1]))
    assert set(OPERATIONS) <= listed, sorted(set(OPERATIONS) - listed)


def test_the_contract_snippet_passes(pytester: pytest.Pytester) -> None:
    (block,) = BLOCKS
    pytester.makepyfile(test_my_backend=block)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*55 passed*"])
