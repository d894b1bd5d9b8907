"""Whether a workflow's owner process is alive: one check per platform, tested on real processes.

Linux reads /proc; macOS, Windows and the BSDs use psutil (never a signal:
``os.kill(pid, 0)`` terminates the process on Windows and cannot tell a
reused pid from the owner). Both are run here against the same real
processes: a live child, a killed one before and after it is reaped, and a
pid "reused" (the same pid with another recorded start time).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

import durable
from durable._owner import (
    Liveness,
    Owner,
    ProcLiveness,
    PsutilLiveness,
    current_owner,
    is_alive_locally,
    liveness_for,
)
from tests.conftest import wait_for


@pytest.fixture(params=["linux-proc", "psutil"])
def liveness(request: pytest.FixtureRequest) -> Liveness:
    """Each way of checking, on this (Linux) machine."""
    return ProcLiveness() if request.param == "linux-proc" else PsutilLiveness()


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A real child process that runs until the test kills it."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def owner_of(pid: int, liveness: Liveness) -> Owner:
    started = liveness.start_time(pid)
    assert started, f"no start time for the live pid {pid}"
    return Owner(host=current_owner().host, pid=pid, started=started)


def test_a_live_process_is_alive(liveness: Liveness, child: subprocess.Popen[bytes]) -> None:
    owner = owner_of(child.pid, liveness)
    assert is_alive_locally(owner, liveness)
    assert liveness.start_time(child.pid) == owner.started  # stable from call to call
    assert is_alive_locally(owner_of(os.getpid(), liveness), liveness)


def test_a_killed_process_is_dead_before_and_after_it_is_reaped(
    liveness: Liveness, child: subprocess.Popen[bytes]
) -> None:
    owner = owner_of(child.pid, liveness)
    os.kill(child.pid, signal.SIGKILL)
    # Not reaped yet: a zombie, dead all the same.
    wait_for(lambda: not is_alive_locally(owner, liveness), "the killed child to count as dead")
    child.wait()
    assert liveness.start_time(child.pid) is None
    assert not is_alive_locally(owner, liveness)


def test_a_reused_pid_is_not_the_owner(liveness: Liveness, child: subprocess.Popen[bytes]) -> None:
    # The same pid, recorded with another start time: a new process got the
    # owner's pid after the owner died.
    real = owner_of(child.pid, liveness)
    reused = Owner(host=real.host, pid=real.pid, started=real.started + "7")
    assert not is_alive_locally(reused, liveness)
    assert is_alive_locally(real, liveness)


def test_the_platform_picks_its_check() -> None:
    assert isinstance(liveness_for("linux"), ProcLiveness)
    for platform in ("darwin", "win32", "freebsd14", "openbsd7"):
        assert isinstance(liveness_for(platform), PsutilLiveness)
    # This machine's own check is the one workflows use.
    assert isinstance(liveness_for(sys.platform), ProcLiveness)


@pytest.mark.parametrize("platform", ["plan9", "emscripten", "wasi", "os2"])
def test_an_unsupported_platform_is_refused_with_a_clear_error(platform: str) -> None:
    with pytest.raises(durable.ConfigurationError, match="cannot tell whether a process is alive"):
        liveness_for(platform)
    with pytest.raises(durable.ConfigurationError, match="runs on Linux, macOS, Windows"):
        liveness_for(platform)


def test_without_psutil_off_linux_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # as if it were not installed
    with pytest.raises(durable.ConfigurationError, match=r"needs psutil on 'darwin'.*pip install"):
        liveness_for("darwin")
    assert isinstance(liveness_for("linux"), ProcLiveness)  # Linux needs no psutil
