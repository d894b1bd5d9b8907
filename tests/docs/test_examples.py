"""Every example runs, and says what it claims to show."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import durable
import durable.testing

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


@pytest.fixture
def llm_server(tmp_path: Path) -> Iterator[str]:
    """The small OpenAI-compatible server of tests/programs, on 127.0.0.1: its base URL."""
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).parents[1] / "programs" / "fake_llm.py")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TOKEN_DELAY": "0.05"},
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.kill()
        server.wait(30)
        if server.stdout is not None:
            server.stdout.close()


def requests_made(base_url: str) -> int:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/requests") as reply:
        return int(json.load(reply)["requests"])


def test_stream_chat_never_asks_twice_for_a_finished_answer(
    tmp_path: Path, llm_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server)
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    stream_chat = importlib.import_module("stream_chat")
    question = "why is the sky blue"
    answer = "You asked: why is the sky blue "
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    with durable.Runtime(url) as runtime, runtime.activated():
        # Killed (SIGKILL) once the answer streamed and was recorded, before it was saved.
        durable.testing.kill_at("before_step:save", stream_chat.chat, question, workflow_id="c1")
        assert requests_made(llm_server) == 1
        assert "".join(durable.read_stream_sync("c1", "answer")) == answer
        assert stream_chat.chat.run_sync(question, workflow_id="c1") == answer
        assert requests_made(llm_server) == 1  # replayed from the store: not asked again

        # Killed mid-stream: the next run asks again, and readers see the restart.
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "stream_chat.py"), question],
            env={**os.environ, "DURABLE_URL": url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        workflow_id = f"chat:{question}"
        seen: list[Any] = []
        _started(runtime, workflow_id)
        for token in durable.read_stream_sync(workflow_id, "answer"):
            seen.append(token)
            if len(seen) == 2:
                proc.kill()
                break
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err
        assert seen == ["You ", "asked: "]
        assert stream_chat.chat.run_sync(question, workflow_id=workflow_id) == answer
        assert requests_made(llm_server) == 3
        read = list(durable.read_stream_sync(workflow_id, "answer"))
        restart = read.index(durable.StreamRestarted())
        assert "".join(read[restart + 1 :]) == answer


def _started(runtime: durable.Runtime, workflow_id: str) -> None:
    deadline = time.monotonic() + 60
    while runtime.get_workflow(workflow_id) is None:
        assert time.monotonic() < deadline, f"{workflow_id} never started"
        time.sleep(0.01)
