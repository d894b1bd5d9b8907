"""Every example runs, and says what it claims to show."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parents[2] / "examples"


def run_example(name: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DURABLE_URL"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_quickstart_kills_resumes_and_skips_finished_steps(tmp_path: Path) -> None:
    out = run_example("quickstart.py", tmp_path)
    first, _, rest = out.partition("2) the same call again")
    second, _, third = rest.partition("3) once more")
    assert all(f"ran {s}" in first for s in ("download", "clean", "summarize"))
    assert "killed process" in first
    assert "ran download" not in second
    assert "ran clean" not in second
    assert "ran summarize" in second  # interrupted before its record committed
    assert "ran publish" in second
    assert "skipped, recorded before the crash: download, clean" in second
    assert "published: 3 warm readings, mean 12.5 C (steps run: 0," in third
    assert (tmp_path / ".durable" / "durable.db").is_file()  # the default store
