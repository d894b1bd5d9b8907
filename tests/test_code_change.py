"""Code that changed between a crash and a resume, edited for real between two processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import durable

PIPELINE = """
import json, os, sys
import durable

def effect(line):
    with open(os.environ["EFFECTS"], "a") as f:
        f.write(line + "\\n")

def helper(x):
    return x + {helper_delta}

@durable.step
def load(x):
    effect("load")
    return x * 10

@durable.step
def enrich(x):
    effect("enrich")
    return helper(x) + {enrich_delta}

@durable.step
def publish(x):
    effect("publish")
    if os.environ.get("FAIL"):
        raise RuntimeError("publish failed")
    return x

@durable.durable_workflow(name="code.pipeline", on_code_change=os.environ.get("POLICY") or None)
def pipeline(x):
    return publish(enrich(load(x)))

durable.configure(url=os.environ["DURABLE_URL"])
try:
    print(json.dumps({{"result": pipeline.run(1, workflow_id="p")}}))
except Exception as exc:
    print(json.dumps({{"error": f"{{type(exc).__name__}}: {{exc}}"}}))
"""


def run(
    tmp_path: Path, db_url: str, *, enrich_delta: int = 0, helper_delta: int = 1, **env: str
) -> dict[str, str]:
    module = tmp_path / "pipeline.py"
    module.write_text(
        textwrap.dedent(PIPELINE.format(enrich_delta=enrich_delta, helper_delta=helper_delta))
    )
    result = subprocess.run(
        [sys.executable, "-W", "always::durable.CodeChangedWarning", str(module)],
        env={"PATH": "", **env, "DURABLE_URL": db_url, "EFFECTS": str(tmp_path / "effects")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out: dict[str, str] = json.loads(result.stdout)
    out["stderr"] = result.stderr
    return out


def effects(tmp_path: Path) -> list[str]:
    return (tmp_path / "effects").read_text().split()


@pytest.fixture
def failed_once(tmp_path: Path, durable_sqlite: str) -> str:
    """First process: load and enrich recorded, publish failed."""
    out = run(tmp_path, durable_sqlite, FAIL="1")
    assert out["error"] == "RuntimeError: publish failed"
    (tmp_path / "effects").write_text("")
    return durable_sqlite


def test_unchanged_code_replays_silently(tmp_path: Path, failed_once: str) -> None:
    out = run(tmp_path, failed_once)
    assert out["result"] == 11
    assert effects(tmp_path) == ["publish"]
    assert "CodeChangedWarning" not in out["stderr"]


def test_reuse_replays_changed_steps_with_a_warning(tmp_path: Path, failed_once: str) -> None:
    out = run(tmp_path, failed_once, enrich_delta=5)
    assert out["result"] == 11  # the recorded enrich, not the new one
    assert effects(tmp_path) == ["publish"]
    assert "CodeChangedWarning: the code of step 'enrich' (position 2" in out["stderr"]
    assert "on_code_change='rerun'" in out["stderr"]


def test_rerun_runs_the_changed_step_and_everything_after(tmp_path: Path, failed_once: str) -> None:
    out = run(tmp_path, failed_once, enrich_delta=5, POLICY="rerun")
    assert out["result"] == 16
    assert effects(tmp_path) == ["enrich", "publish"]  # load's code did not change
    with durable.Runtime(failed_once) as runtime:
        superseded = [(e.name, e.status) for e in runtime.store.history("p") if e.superseded]
    # enrich: rewound by the code change; publish: the first attempt's error.
    assert sorted(superseded) == [("enrich", "success"), ("publish", "error")]


def test_a_changed_helper_counts_as_a_change(tmp_path: Path, failed_once: str) -> None:
    out = run(tmp_path, failed_once, helper_delta=2, POLICY="rerun")
    assert out["result"] == 12
    assert effects(tmp_path) == ["enrich", "publish"]


def test_error_refuses_and_names_the_step(tmp_path: Path, failed_once: str) -> None:
    out = run(tmp_path, failed_once, enrich_delta=5, POLICY="error")
    assert out["error"].startswith(
        "CodeChangedError: the code of step 'enrich' (position 2 of workflow 'p') changed"
    )
    assert effects(tmp_path) == []


def test_moving_code_or_adding_comments_is_not_a_change(tmp_path: Path, failed_once: str) -> None:
    module_text = textwrap.dedent(PIPELINE.format(enrich_delta=0, helper_delta=1))
    shifted = "# a comment\n\n\n" + module_text.replace("def load(x):", "def load(x):  # same")
    module = tmp_path / "pipeline.py"
    module.write_text(shifted)
    result = subprocess.run(
        [sys.executable, "-W", "error::durable.CodeChangedWarning", str(module)],
        env={"PATH": "", "DURABLE_URL": failed_once, "EFFECTS": str(tmp_path / "effects")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout) == {"result": 11}


def test_bad_policy_is_a_configuration_error() -> None:
    with pytest.raises(durable.ConfigurationError, match="on_code_change must be"):
        durable.step(on_code_change="ignore")(lambda: None)  # type: ignore[arg-type]
