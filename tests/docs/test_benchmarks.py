"""The benchmark scripts still run (smoke runs: their figures are read, never asserted)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        [
            "bench.py",
            "--quick",
            "--no-dbos",
            "--no-langgraph",
            "--backends",
            "sqlite",
            "--markdown",
        ],
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


def _langgraph_installed() -> bool:
    """Whether bench.py can run LangGraph on SQLite (CI does not install it)."""
    try:
        return importlib.util.find_spec("langgraph.func") is not None and all(
            importlib.util.find_spec(m) is not None
            for m in ("langgraph.checkpoint.sqlite.aio", "aiosqlite")
        )
    except ImportError:
        return False


def _bench_quick(env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench.py"),
            *("--quick", "--no-dbos", "--backends", "sqlite", "--markdown"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=env,
    )


@pytest.mark.slow
def test_bench_langgraph_peer() -> None:
    """bench.py measures LangGraph beside durable if it is installed, else says it is not."""
    result = _bench_quick()
    assert result.returncode == 0, result.stdout + result.stderr
    if not _langgraph_installed():
        assert "LangGraph: not installed" in result.stdout
        return
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in result.stdout.splitlines()
        if line.startswith("|")
    ]
    peers = ["durable", "LangGraph (default)", "LangGraph (WAL+NORMAL)", "raw sqlite3"]
    assert ["Scenario", "Metric", *peers] in rows, result.stdout
    engines = [row[1] for row in rows]
    # Each setup ran scenario 3 in a process of its own for the memory table.
    assert "LangGraph (default)" in engines
    assert "LangGraph (WAL+NORMAL)" in engines


@pytest.mark.slow
def test_bench_without_langgraph(tmp_path: Path) -> None:
    """Where langgraph cannot be imported, bench.py leaves it out with a note."""
    blocker = tmp_path / "langgraph"
    blocker.mkdir()
    (blocker / "__init__.py").write_text('raise ImportError("not installed, for this test")\n')
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp_path), env.get("PYTHONPATH")) if p)
    result = _bench_quick(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LangGraph: not installed" in result.stdout
    assert "LangGraph (" not in result.stdout


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
