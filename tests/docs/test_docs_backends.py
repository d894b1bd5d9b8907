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


def test_the_page_has_its_snippets() -> None:
    assert len(BLOCKS) == 2


def test_the_partitioning_snippet_runs(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import durable

    @durable.durable_workflow(name="docs_backends.job")
    def job() -> int:
        return 1

    with durable.Runtime(postgres_url):
        job.run_sync(workflow_id="recent")
    exec(
        compile(BLOCKS[0], "docs/backends.md#0", "exec"),
        {"__name__": "docs_backends", "POSTGRES_URL": postgres_url},
    )
    assert "moved 0 records; removed 0 workflows" in capsys.readouterr().out


def test_the_contract_snippet_passes(pytester: pytest.Pytester) -> None:
    block = BLOCKS[1]
    pytester.makepyfile(test_my_backend=block)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*55 passed*"])
