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


# Nothing of this environment but the checkout under test: the durable that the
# interpreter would find otherwise (an editable install) may be another checkout's.
_ISOLATED = {"PATH": "", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def run(
    tmp_path: Path, db_url: str, *, enrich_delta: int = 0, helper_delta: int = 1, **env: str
) -> dict[str, str]:
    module = tmp_path / "pipeline.py"
    module.write_text(
        textwrap.dedent(PIPELINE.format(enrich_delta=enrich_delta, helper_delta=helper_delta))
    )
    result = subprocess.run(
        [sys.executable, "-W", "always::durable.CodeChangedWarning", str(module)],
        env={**_ISOLATED, **env, "DURABLE_URL": db_url, "EFFECTS": str(tmp_path / "effects")},
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
        env={**_ISOLATED, "DURABLE_URL": failed_once, "EFFECTS": str(tmp_path / "effects")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout) == {"result": 11}


def test_bad_policy_is_a_configuration_error() -> None:
    with pytest.raises(durable.ConfigurationError, match="on_code_change must be"):
        durable.step(on_code_change="ignore")(lambda: None)  # type: ignore[arg-type]


# Issue 14 item 4: how the script is started must not change its fingerprints
# (python -m cProfile left the profiler in sys.modules["__main__"], so the
# script's helpers dropped out of every fingerprint) nor its workflows' names
# (runpy.run_path ran it as "<run_path>": another id, every step run again).
_SCRIPT = str(Path(__file__).parents[1] / "programs" / "runner_script.py")
_RUNNERS = {
    "python": [sys.executable, _SCRIPT],
    "cProfile": [sys.executable, "-m", "cProfile", "-o", "profile.out", _SCRIPT],
    "runpy": [sys.executable, "-c", f"import runpy; runpy.run_path({_SCRIPT!r})['main']()"],
    "pdb": [sys.executable, "-m", "pdb", _SCRIPT],  # driven with "c" on stdin
}


def _run_under(runner: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    from tests.conftest import program_env

    return subprocess.run(
        _RUNNERS[runner],
        input="c\n",
        cwd=tmp_path,
        env=program_env(
            DURABLE_URL=f"sqlite:///{tmp_path / 'runs.db'}", EFFECTS=tmp_path / "effects", **env
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _outcome(run: subprocess.CompletedProcess[str]) -> dict[str, object]:
    # Under pdb the line follows its "(Pdb) " prompt.
    line = next(x for x in run.stdout.splitlines() if '{"result"' in x)
    return json.loads(line[line.index('{"result"') :])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("recorded_under", "resumed_under"),
    [
        ("python", "cProfile"),
        ("cProfile", "python"),
        ("python", "runpy"),
        ("runpy", "python"),
        ("python", "pdb"),
        ("pdb", "python"),
    ],
)
def test_fingerprints_do_not_depend_on_how_the_script_was_started(
    tmp_path: Path, recorded_under: str, resumed_under: str
) -> None:
    killed = _run_under(recorded_under, tmp_path, CRASH_IN="two")
    assert killed.returncode == -9, killed.stderr
    resumed = _run_under(resumed_under, tmp_path)
    outcome = _outcome(resumed)
    assert outcome["code_changed"] == []
    assert outcome["result"] == 13
    assert outcome["id"] == "__main__.job:65c534b492d63a30a8ca"
    # Step one replayed, not run again; two ran again (killed inside it).
    assert (tmp_path / "effects").read_text().split() == ["one", "two", "two"]


def test_a_real_change_is_still_seen_under_a_runner(tmp_path: Path) -> None:
    assert _run_under("python", tmp_path, CRASH_IN="two").returncode == -9
    outcome = _outcome(_run_under("cProfile", tmp_path, CHANGED="1"))
    assert len(outcome["code_changed"]) == 1  # type: ignore[arg-type]
    assert "step 'one'" in outcome["code_changed"][0]  # type: ignore[index]


def _scaled(x: int) -> int:
    return x * 2


def _scaled_otherwise(x: int) -> int:
    return x * 3


def test_a_helper_rebound_in_the_same_process_counts_as_a_change(
    runtime: durable.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fingerprints are remembered between workflows of one process (a
    # notebook's): rebinding a helper the step calls must still be seen.
    fail = {"publish": True}

    @durable.step(name="code.inprocess.enrich")
    def enrich(x: int) -> int:
        return _scaled(x)

    @durable.step(name="code.inprocess.publish")
    def publish(x: int) -> int:
        if fail["publish"]:
            raise RuntimeError("publish failed")
        return x

    @durable.durable_workflow(name="code.inprocess", on_code_change="error")
    def pipeline(x: int) -> int:
        return publish(enrich(x))

    with pytest.raises(RuntimeError, match="publish failed"):
        pipeline.run(1, workflow_id="again")
    fail["publish"] = False
    monkeypatch.setitem(globals(), "_scaled", _scaled_otherwise)
    with pytest.raises(durable.CodeChangedError, match=r"code\.inprocess\.enrich"):
        pipeline.run(1, workflow_id="again")
