"""How long the pytest plugin's fixtures take to set up and tear down, per test.

Runs a throwaway pytest session of trivial tests that each ask for
``durable_runtime`` (a fresh isolated store, once per backend) and reads
pytest's own setup and teardown durations for each backend. The fixtures are
the plugin's, unchanged: a new SQLite file, an in-memory database, or a new
PostgreSQL schema (created with durable's tables, dropped afterwards).

Run: ``python benchmarks/fixture_setup.py [--tests N] [--markdown]``
(PostgreSQL from ``$DURABLE_TEST_POSTGRES_URL``, else the local server if it answers).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


class _Durations:
    def __init__(self) -> None:
        self.setup: dict[str, list[float]] = defaultdict(list)
        self.teardown: dict[str, list[float]] = defaultdict(list)

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when in ("setup", "teardown") and report.passed:
            ids = report.nodeid.rsplit("[", 1)[-1]
            backend = next(b for b in ("sqlite-file", "sqlite-memory", "postgresql") if b in ids)
            getattr(self, report.when)[backend].append(report.duration * 1000)


def _postgres_url() -> str | None:
    url = os.environ.get("DURABLE_TEST_POSTGRES_URL")
    if url:
        return url
    try:
        import psycopg

        psycopg.connect(LOCAL_POSTGRES, connect_timeout=2).close()
    except Exception:
        return None
    return LOCAL_POSTGRES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=40, help="tests per backend")
    parser.add_argument("--markdown", action="store_true")
    options = parser.parse_args()
    url = _postgres_url()
    backends = "sqlite-file,sqlite-memory" + (",postgresql" if url else "")
    with tempfile.TemporaryDirectory() as folder:
        test_file = Path(folder) / "test_fixture_setup.py"
        test_file.write_text(
            "import pytest\n\n"
            f"@pytest.mark.parametrize('n', range({options.tests}))\n"
            "def test_x(durable_runtime, n):\n"
            "    assert durable_runtime.url\n"
        )
        durations = _Durations()
        args = [str(test_file), "-q", "-p", "no:cacheprovider", f"--durable-backends={backends}"]
        if url:
            args.append(f"--durable-url={url}")
        code = pytest.main(args, plugins=[durations])
        if code != 0:
            raise SystemExit(f"the fixture session failed (pytest exit code {code})")
    print()
    print(f"fixture set-up and tear-down per test, median (p90) of {options.tests} tests, ms:")
    print("| backend | set-up | tear-down |")
    print("|---|--:|--:|")
    for backend in backends.split(","):
        setup, teardown = durations.setup[backend], durations.teardown[backend]
        print(
            f"| {backend} | {statistics.median(setup):.1f} ({_p90(setup):.1f}) "
            f"| {statistics.median(teardown):.1f} ({_p90(teardown):.1f}) |"
        )
    if not url:
        print("PostgreSQL: not reachable, skipped (set DURABLE_TEST_POSTGRES_URL)")


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


if __name__ == "__main__":
    main()
