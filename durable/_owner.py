"""Who runs a workflow, and whether that process is still alive.

An owner is (host, pid, process start time). On the same host a dead owner is
seen at once: its pid is gone, or reused by a process that started at another
time. The host part includes the kernel's boot id, so every owner recorded
before a reboot counts as dead after it, and the pid namespace, so that
containers sharing a kernel do not judge each other's pids. Owners on other hosts are judged by
their lease instead (the caller's job).

How a process's start time is read depends on the platform (:func:`liveness_for`):
on Linux from ``/proc/PID/stat``; on macOS, Windows and the BSDs through
psutil (``Process.create_time``), which never signals the process it looks at
(``os.kill(pid, 0)`` would terminate it on Windows, and cannot tell a reused
pid from the owner anywhere). On any other platform durable refuses to run
workflows, with a :class:`durable.ConfigurationError` that says why.
"""

from __future__ import annotations

import importlib
import os
import sys
from functools import lru_cache
from typing import Any, Protocol

from durable._errors import ConfigurationError
from durable._records import Owner

# Platforms (prefixes of sys.platform) where psutil reads a process's start time.
PSUTIL_PLATFORMS = ("darwin", "win32", "freebsd", "openbsd", "netbsd", "sunos", "aix")


class Liveness(Protocol):
    """How one platform tells when a process started (and so whether it is the same one)."""

    def start_time(self, pid: int) -> str | None:
        """A token that differs between two processes that had the same pid.

        ``None`` when no such process runs (or it is a zombie, killed and not
        yet reaped). An empty string when it runs but its start cannot be
        read (another user's process where that is private): then only the
        pid is compared.
        """
        ...


class ProcLiveness:
    """Linux: the start time in clock ticks since boot, from ``/proc/PID/stat``."""

    def start_time(self, pid: int) -> str | None:
        """See :meth:`Liveness.start_time`."""
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            return None
        # Field 22 (start time in clock ticks since boot) comes after the
        # command name, which is in parentheses and may itself contain spaces.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):
            return None  # killed and not yet reaped by its parent: dead all the same
        return fields[19]


class PsutilLiveness:
    """macOS, Windows, the BSDs: psutil's process creation time (no signal is sent)."""

    def __init__(self) -> None:
        # Imported by name: psutil ships no type information, and is only a
        # dependency where this class is used.
        self._psutil: Any = importlib.import_module("psutil")

    def start_time(self, pid: int) -> str | None:
        """See :meth:`Liveness.start_time`."""
        psutil = self._psutil
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return f"{process.create_time():.3f}"
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        except psutil.AccessDenied:
            return ""  # it runs, but its start is private: compare the pid only


def liveness_for(platform: str) -> Liveness:
    """The way to tell whether a process is alive on ``platform`` (a ``sys.platform`` value).

    Raises:
        ConfigurationError: durable cannot check processes there (a platform
            psutil does not support), or psutil is not installed.
    """
    if platform.startswith("linux"):
        return ProcLiveness()
    if platform.startswith(PSUTIL_PLATFORMS):
        try:
            return PsutilLiveness()
        except ImportError:
            raise ConfigurationError(
                f"durable needs psutil on {platform!r} to tell whether a workflow's owner "
                "process is still alive: pip install 'psutil>=5.9' (durable-sdk installs it "
                "everywhere but on Linux)",
                platform=platform,
            ) from None
    raise ConfigurationError(
        f"durable cannot tell whether a process is alive on {platform!r}, so it cannot "
        "run workflows there without risking two owners at once; it runs on Linux, "
        "macOS, Windows and the BSDs",
        platform=platform,
    )


@lru_cache(maxsize=1)
def _liveness() -> Liveness:
    return liveness_for(sys.platform)


@lru_cache(maxsize=1)
def _host_id() -> str:
    boot_id = ""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot_id = f.read().strip()
    except OSError:
        pass
    try:
        # Processes in another pid namespace (another container) cannot be
        # checked by pid: they count as another host, judged by their lease.
        pid_namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_namespace = ""
    return "/".join(part for part in (_hostname(), boot_id, pid_namespace) if part)


def _hostname() -> str:
    # gethostname(2) answers uname's nodename (glibc, macOS): read it without
    # the socket module (0.5 MiB with what it imports), which only Windows needs.
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def process_start_time(pid: int, liveness: Liveness | None = None) -> str | None:
    """A token that differs between two processes that had the same pid.

    ``None`` when the process does not exist. ``liveness`` defaults to this
    platform's (:func:`liveness_for`).
    """
    return (liveness or _liveness()).start_time(pid)


_current: Owner | None = None


def current_owner() -> Owner:
    """The owner identity of this process (recomputed after a fork)."""
    global _current
    pid = os.getpid()
    if _current is None or _current.pid != pid:
        _current = Owner(host=_host_id(), pid=pid, started=process_start_time(pid) or "")
    return _current


def is_local(owner: Owner) -> bool:
    """True when ``owner`` ran on this host since its last boot."""
    return owner.host == _host_id()


def is_alive_locally(owner: Owner, liveness: Liveness | None = None) -> bool:
    """For an owner on this host: is that very process still running?"""
    started = process_start_time(owner.pid, liveness)
    if started is None:
        return False
    return started == owner.started or "" in (started, owner.started)
