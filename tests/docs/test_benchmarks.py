"""The benchmark scripts still run (smoke runs: their figures are read, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["bench.py", "--quick", "--no-dbos", "--backends", "sqlite", "--markdown"],
        ["fixture_setup.py", "--tests", "3"],
        ["queues.py", "--quick", "--no-dbos", "--backends", "sqlite", "--markdown"],
        ["checkpoints.py", "--steps", "3", "--repeat", "1"],
        ["vs_joblib.py", "--quick"],
        ["large_cpu.py", "--size-mib", "1", "--count", "2", "--repeat", "1"],
        ["ui_pages.py", "--workflows", "300", "--repeat", "1"],
        ["store_scale.py", "--workflows", "300", "--backends", "sqlite", "--markdown"],
        ["index_pages.py", "--workflows", "5", "--repeat", "1", "--only", "all"],
        ["bare_engine.py", "--workflows", "20", "--repeat", "1"],
    ],
    ids=[
        "bench",
        "fixture_setup",
        "queues",
        "checkpoints",
        "vs_joblib",
        "large_cpu",
        "ui_pages",
        "store_scale",
        "index_pages",
        "bare_engine",
    ],
)
def test_benchmark_smoke_run(command: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / command[0]), *command[1:]],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "|" in result.stdout  # it printed its table


@pytest.mark.slow
def test_concurrency_benchmark_smoke_run(postgres_url: str) -> None:
    """concurrency.py runs on both stores (each run makes a schema of its own and drops it)."""
    server = postgres_url.split("?", 1)[0]
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "concurrency.py"),
            "--repeat",
            "1",
            "--processes",
            "2",
            "--postgres-url",
            server,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| sqlite |" in result.stdout
    assert "| postgresql |" in result.stdout


@pytest.mark.slow
def test_short_workflows_benchmark_smoke_run() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "short_workflows.py")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.rstrip().endswith("workflows/s")


@pytest.mark.slow
def test_waiting_benchmark_smoke_run() -> None:
    """waiting.py holds a few workflows in a worker, both ways, and wakes them (SQLite)."""
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "waiting.py"),
            "--smoke",
            "--backends",
            "sqlite",
            "--markdown",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split("|")[1:4] for line in result.stdout.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in row] for row in rows]
    assert ["SQLite", "held", "20 (10)"] in cells
    assert ["SQLite", "suspended", "20 (10)"] in cells
    assert ["SQLite", "p99 save, ms", "< 20"] in cells
