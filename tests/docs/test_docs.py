"""Every snippet of docs/testing.md is a test module; run each one as a user would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = (Path(__file__).parents[2] / "docs" / "testing.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"


def test_every_snippet_is_collected() -> None:
    assert len(BLOCKS) == 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_snippet_runs(pytester: pytest.Pytester, index: int) -> None:
    block = BLOCKS[index]
    pytester.makeini(INI)
    name = "test_booking" if "ISSUED" in block else f"test_snippet_{index}"
    pytester.makepyfile(**{name: block})
    # With the default backends, as a user runs it (PostgreSQL too where configured).
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    if "# fails, and says where" in block:
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        out = result.stdout.str()
        assert "crash sweep of test_booking.book: 4 crash points, 3 passed, 1 failed" in out
        assert "FAIL  after_step:issue_ticket" in out
        assert (
            "returned 'concert ticket #2' where the crash-free run returned 'concert ticket #1'"
            in out
        )
        assert "setup=test_booking.ISSUED.clear, only='after_step:issue_ticket')" in out
    else:
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()
