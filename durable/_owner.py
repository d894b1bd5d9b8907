"""Who runs a workflow, and whether that process is still alive.

An owner is (host, pid, process start time). On the same host a dead owner is
seen at once: its pid is gone, or reused by a process that started at another
time. The host part includes the kernel's boot id, so every owner recorded
before a reboot counts as dead after it, and the pid namespace, so that
containers sharing a kernel do not judge each other's pids. Owners on other hosts are judged by
their lease instead (the caller's job).
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Owner:
    """The identity of a process that may own workflows."""

    host: str
    pid: int
    started: str


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
    return "/".join(part for part in (socket.gethostname(), boot_id, pid_namespace) if part)


def process_start_time(pid: int) -> str | None:
    """A token that differs between two processes that had the same pid.

    ``None`` when the process does not exist. Where the platform cannot say
    when it started, an empty string: then only the pid is compared.
    """
    if sys.platform.startswith("linux"):
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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return ""
    return ""


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


def is_alive_locally(owner: Owner) -> bool:
    """For an owner on this host: is that very process still running?"""
    started = process_start_time(owner.pid)
    if started is None:
        return False
    return started == owner.started or "" in (started, owner.started)
