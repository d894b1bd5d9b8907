"""Crash injection: stop a workflow exactly where a real crash could."""

from __future__ import annotations

import os
import re
import signal
import threading
from dataclasses import dataclass
from typing import Literal

from durable._engine._context import Site
from durable._engine._runtime import Runtime, current_runtime
from durable._errors import ConfigurationError

Kind = Literal["workflow_start", "before_step", "after_step", "after_commit"]
KINDS: tuple[Kind, ...] = ("workflow_start", "before_step", "after_step", "after_commit")


class SimulatedCrash(BaseException):
    """The in-process stand-in for a process dying.

    A ``BaseException``, so that ``except Exception`` in user code cannot
    swallow it, like ``KeyboardInterrupt``. When it propagates out of a
    workflow, the store holds exactly what a real crash at that point would
    leave, and calling the workflow again resumes it.
    """

    def __init__(self, site: Site) -> None:
        super().__init__(f"simulated crash {describe(site)}")
        self.site = site


@dataclass(frozen=True)
class CrashPoint:
    """Where to crash: a kind of site, and which step (by name and call, or position).

    Kinds, in the order they happen around each step:

    - ``workflow_start``: the workflow's row is committed, its body not begun.
    - ``before_step``: the step is about to run (nothing of it recorded).
    - ``after_step``: its body returned or raised; its record is not committed
      (the step runs again on resume: at-least-once).
    - ``after_commit``: its record is committed (it never runs again).

    Example::

        CrashPoint("after_step", step="charge")          # the first call of `charge`
        CrashPoint("after_commit", step="charge", nth=2)  # its second call
        CrashPoint("before_step", position=3)
        CrashPoint.parse("after_step:charge#2")
    """

    kind: Kind
    step: str | None = None
    """The step's name (its ``__qualname__`` unless given ``name=``); any step if None."""
    nth: int = 1
    """Which call of that step name in the workflow (1-based)."""
    position: int | None = None
    """The step's position instead of its name."""
    workflow: str | None = None
    """Only in the workflow of this registered name (for child workflows)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigurationError(
                f"unknown crash point kind {self.kind!r}; the kinds are {', '.join(KINDS)}"
            )
        if self.nth < 1:
            raise ConfigurationError(f"nth counts calls from 1, not {self.nth}")

    def matches(self, site: Site) -> bool:
        """Whether a site of a running workflow is this point."""
        if site.kind != self.kind:
            return False
        if self.workflow is not None and site.workflow_name != self.workflow:
            return False
        if self.kind == "workflow_start":
            return True
        if self.position is not None:
            return site.position == self.position
        if self.step is not None and site.step != self.step:
            return False
        return self.step is None or site.nth == self.nth

    @classmethod
    def parse(cls, text: str) -> CrashPoint:
        """Read a point written as ``kind[:step[#nth]][@position][ in workflow]``."""
        match = _POINT.fullmatch(text.strip())
        if match is None:
            raise ConfigurationError(
                f"cannot read crash point {text!r}; write it as kind, kind:step, "
                "kind:step#2 or kind@position (optionally followed by ' in <workflow>'), "
                f"with kind one of {', '.join(KINDS)}"
            )
        return cls(
            kind=match["kind"],  # type: ignore[arg-type]
            step=match["step"],
            nth=int(match["nth"] or 1),
            position=int(match["position"]) if match["position"] else None,
            workflow=match["workflow"],
        )

    @classmethod
    def of(cls, site: Site, *, top: str | None = None) -> CrashPoint:
        """The point that matches ``site`` (naming its workflow unless it is ``top``)."""
        workflow = None if site.workflow_name == top else site.workflow_name
        if site.kind == "workflow_start":
            return cls("workflow_start", workflow=workflow)
        return cls(site.kind, step=site.step, nth=site.nth or 1, workflow=workflow)

    def __str__(self) -> str:
        text: str = self.kind
        if self.step is not None:
            text += f":{self.step}" + (f"#{self.nth}" if self.nth != 1 else "")
        if self.position is not None:
            text += f"@{self.position}"
        if self.workflow is not None:
            text += f" in {self.workflow}"
        return text


_POINT = re.compile(
    r"(?P<kind>[a-z_]+)(?::(?P<step>[^#@ ]+)(?:#(?P<nth>\d+))?)?(?:@(?P<position>\d+))?"
    r"(?: in (?P<workflow>\S+))?"
)


def describe(site: Site) -> str:
    """A readable account of where a site is."""
    where = f"in workflow {site.workflow_id!r}"
    if site.kind == "workflow_start":
        return f"at the start of workflow {site.workflow_id!r}"
    what = {
        "before_step": "before step",
        "after_step": "after the body of step",
        "after_commit": "after the committed record of step",
    }[site.kind]
    return f"{what} {site.step!r} (call #{site.nth}, position {site.position}) {where}"


class CrashInjector:
    """Crashes a workflow at a chosen point, once, as a real crash would.

    Bound to a runtime (the current one by default). ``arm`` a point, run the
    workflow: it raises :class:`SimulatedCrash` there (or, with
    ``mode="kill"``, the process is SIGKILLed). The injector then disarms, so
    calling the workflow again resumes it.

    Example::

        crash = durable.testing.CrashInjector()
        crash.arm("after_step", step="charge")
        with pytest.raises(durable.testing.SimulatedCrash):
            await checkout(order)
        assert await checkout(order) == receipt    # resumed; charge ran twice,
                                                   # its record was written once
    """

    def __init__(self, runtime: Runtime | None = None) -> None:
        self.runtime = runtime if runtime is not None else current_runtime()
        self._armed: list[tuple[CrashPoint, Literal["raise", "kill"]]] = []
        self._lock = threading.Lock()
        self.fired: list[Site] = []
        """The sites where this injector crashed a workflow, in order."""
        self.runtime.engine.hooks.append(self._on_site)

    def arm(
        self,
        point: CrashPoint | Kind | str,
        *,
        step: str | None = None,
        nth: int = 1,
        position: int | None = None,
        workflow: str | None = None,
        mode: Literal["raise", "kill"] = "raise",
    ) -> CrashPoint:
        """Crash the next time execution reaches ``point``; returns the point armed."""
        if isinstance(point, str):
            point = (
                CrashPoint(point, step=step, nth=nth, position=position, workflow=workflow)
                if point in KINDS
                else CrashPoint.parse(point)
            )
        if mode not in ("raise", "kill"):
            raise ConfigurationError(f"mode must be 'raise' or 'kill', not {mode!r}")
        with self._lock:
            self._armed.append((point, mode))
        return point

    def disarm(self) -> None:
        """Forget every armed point that has not fired."""
        with self._lock:
            self._armed.clear()

    def close(self) -> None:
        """Detach from the runtime."""
        self.disarm()
        if self._on_site in self.runtime.engine.hooks:
            self.runtime.engine.hooks.remove(self._on_site)

    @property
    def armed(self) -> list[CrashPoint]:
        """Points armed and not fired yet."""
        with self._lock:
            return [point for point, _ in self._armed]

    def _on_site(self, site: Site) -> None:
        with self._lock:
            for index, (point, how) in enumerate(self._armed):
                if point.matches(site):
                    mode = how
                    del self._armed[index]
                    break
            else:
                return
            self.fired.append(site)
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise SimulatedCrash(site)
