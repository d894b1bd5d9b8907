"""The exhaustive crash sweep: crash at every point, resume, compare."""

from __future__ import annotations

import contextlib
import inspect
import random
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import cloudpickle

from durable._engine import _context
from durable._engine._runtime import Runtime
from durable._engine._sync import run_coroutine_sync
from durable._errors import ConfigurationError
from durable.testing._clock import VirtualClock
from durable.testing._crash import CrashInjector, CrashPoint, SimulatedCrash, describe

StoreFactory = Callable[[], str]
Store = Literal["sqlite-file", "sqlite-memory"] | StoreFactory

SWEEP_WORKFLOW_ID = "crash-sweep"


@dataclass(frozen=True)
class PointOutcome:
    """What happened when the sweep crashed at one point and resumed."""

    point: CrashPoint
    ok: bool
    problem: str | None = None
    """Why the point failed: what differed, in words."""
    reran: tuple[str, ...] = ()
    """Steps whose record had committed before the crash and that ran again."""


@dataclass
class SweepReport:
    """The outcome of :func:`crash_sweep`: one entry per crash point.

    ``str(report)`` is a readable table; :meth:`assert_ok` raises
    :class:`SweepFailed` with it when any point failed.
    """

    workflow: str
    baseline: str
    """The crash-free run's outcome, as text."""
    outcomes: list[PointOutcome] = field(default_factory=list)
    reproduce: str = ""
    """A call that runs the sweep again, with ``{point}`` for one point."""

    @property
    def ok(self) -> bool:
        """True when every crash point resumed to the crash-free outcome."""
        return all(o.ok for o in self.outcomes)

    @property
    def failures(self) -> list[PointOutcome]:
        """The points that failed."""
        return [o for o in self.outcomes if not o.ok]

    def assert_ok(self) -> None:
        """Raise :class:`SweepFailed` (an AssertionError) unless every point passed."""
        if not self.ok:
            raise SweepFailed(self)

    def __str__(self) -> str:
        failed = len(self.failures)
        lines = [
            f"crash sweep of {self.workflow}: {len(self.outcomes)} crash points, "
            f"{len(self.outcomes) - failed} passed, {failed} failed "
            f"(crash-free run: {self.baseline})"
        ]
        for outcome in self.outcomes:
            if outcome.ok:
                lines.append(f"  ok    {outcome.point}")
                continue
            lines.append(f"  FAIL  {outcome.point}: {outcome.problem}")
            lines.append(f"        reproduce: {self.reproduce.format(point=str(outcome.point))}")
        return "\n".join(lines)


class SweepFailed(AssertionError):
    """A crash sweep found points after which the workflow did not resume correctly."""

    def __init__(self, report: SweepReport) -> None:
        super().__init__(str(report))
        self.report = report


def crash_sweep(
    workflow: Any,
    /,
    *args: Any,
    setup: Callable[[], Any] | None = None,
    store: Store = "sqlite-file",
    only: str | None = None,
    sample: int | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> SweepReport:
    """Prove a workflow survives a crash at every point; see :func:`crash_sweep_async`.

    Blocking form, usable in sync tests, scripts and notebooks (also inside a
    running event loop).

    Example::

        def test_checkout_survives_any_crash():
            durable.testing.crash_sweep(checkout, order_id=7).assert_ok()
    """
    return run_coroutine_sync(
        crash_sweep_async(
            workflow,
            *args,
            setup=setup,
            store=store,
            only=only,
            sample=sample,
            seed=seed,
            **kwargs,
        )
    )


async def crash_sweep_async(
    workflow: Any,
    /,
    *args: Any,
    setup: Callable[[], Any] | None = None,
    store: Store = "sqlite-file",
    only: str | None = None,
    sample: int | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> SweepReport:
    """Crash the workflow at every point, resume it, and check the outcome.

    First a crash-free run on a fresh store learns the crash points: the
    workflow's start, and before, after the body of, and after the commit of
    every step (in child workflows too). Then, for each point, on a fresh
    store: run until the crash there, call the workflow again to resume it,
    and check that (1) it returns what the crash-free run returned (or raises
    the same error), and (2) no step whose record had committed ran again.
    Retry backoffs run on a virtual clock, so they cost no time.

    Args:
        workflow: A function decorated with ``@durable.durable_workflow``.
        *args: Its arguments.
        setup: Called before every run (the crash-free one and each point's):
            reset the external state your steps touch (files, tables, lists).
        store: ``"sqlite-file"`` (a new file per point, the default),
            ``"sqlite-memory"``, or a callable returning a fresh store URL.
        only: Run just the point written so (as the report prints it).
        sample: Run only this many points, drawn at random (see ``seed``).
        seed: Seed of that draw, for a reproducible sample.
        **kwargs: Its keyword arguments.

    Returns:
        A :class:`SweepReport`; call ``assert_ok()`` on it in a test.
    """
    name = _workflow_name(workflow)
    with _stores(store) as fresh_url:
        baseline_sites: list[_context.Site] = []
        baseline = await _run(workflow, args, kwargs, fresh_url(), setup, baseline_sites, None)
        if isinstance(baseline, SimulatedCrash):
            raise baseline
        points = _points(baseline_sites, name)
        if only is not None:
            points = [p for p in points if str(p) == only.strip()]
            if not points:
                raise ConfigurationError(
                    f"no crash point {only!r} in a run of {name}; its points are: "
                    + ", ".join(str(p) for p in _points(baseline_sites, name))
                )
        elif sample is not None and sample < len(points):
            points = sorted(random.Random(seed).sample(points, sample), key=points.index)
        report = SweepReport(
            workflow=name,
            baseline=_show(baseline),
            reproduce=_reproduction(workflow, args, kwargs, setup),
        )
        for point in points:
            report.outcomes.append(
                await _sweep_point(workflow, args, kwargs, fresh_url(), setup, point, baseline)
            )
        return report


async def _sweep_point(
    workflow: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    url: str,
    setup: Callable[[], Any] | None,
    point: CrashPoint,
    baseline: Any,
) -> PointOutcome:
    runtime = Runtime(url, poll_interval=0.01, clock=VirtualClock())
    try:
        crashed_sites: list[_context.Site] = []
        crashed = await _run(workflow, args, kwargs, runtime, setup, crashed_sites, point)
        if not isinstance(crashed, SimulatedCrash):
            return PointOutcome(
                point,
                ok=False,
                problem=f"the run never reached this point (it ended with {_show(crashed)}); "
                "does the workflow's path depend on something other than its arguments "
                "and its steps' results?",
            )
        committed = {
            (s.workflow_id, s.position): s.step for s in crashed_sites if s.kind == "after_commit"
        }
        resumed_sites: list[_context.Site] = []
        resumed = await _run(workflow, args, kwargs, runtime, None, resumed_sites, None)
        reran = tuple(
            f"{s.step!r} (position {s.position} of {s.workflow_id!r})"
            for s in resumed_sites
            if s.kind == "before_step" and (s.workflow_id, s.position) in committed
        )
        problem = _difference(baseline, resumed, crashed.site)
        if reran:
            problem = (problem + "; " if problem else "") + (
                "steps whose record had committed ran again: " + ", ".join(reran)
            )
        return PointOutcome(point, ok=problem is None, problem=problem, reran=reran)
    finally:
        runtime.close()


async def _run(
    workflow: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    runtime_or_url: Runtime | str,
    setup: Callable[[], Any] | None,
    sites: list[_context.Site],
    point: CrashPoint | None,
) -> Any:
    """One run; returns its value, or the exception it ended with."""
    owned = isinstance(runtime_or_url, str)
    runtime = (
        Runtime(runtime_or_url, poll_interval=0.01, clock=VirtualClock())
        if isinstance(runtime_or_url, str)
        else runtime_or_url
    )
    injector = CrashInjector(runtime)
    runtime.engine.hooks.insert(0, sites.append)
    if point is not None:
        injector.arm(point)
    activated = runtime.activated()
    activated.__enter__()
    try:
        if setup is not None:
            prepared = setup()
            if inspect.isawaitable(prepared):
                await prepared
        outcome = workflow.run(*args, workflow_id=SWEEP_WORKFLOW_ID, **kwargs)
        if inspect.isawaitable(outcome):
            outcome = await outcome
        return outcome
    except (Exception, SimulatedCrash) as exc:
        return exc
    finally:
        activated.__exit__(None, None, None)
        runtime.engine.hooks.remove(sites.append)
        injector.close()
        if owned:
            runtime.close()


def _points(sites: list[_context.Site], top: str) -> list[CrashPoint]:
    seen: dict[str, CrashPoint] = {}
    for site in sites:
        point = CrashPoint.of(site, top=top)
        seen.setdefault(str(point), point)
    return list(seen.values())


def _difference(baseline: Any, resumed: Any, site: _context.Site) -> str | None:
    after = f"after the crash {describe(site)}"
    if isinstance(resumed, SimulatedCrash):
        return f"{after}, the resumed run crashed again: {resumed}"
    if isinstance(baseline, BaseException) or isinstance(resumed, BaseException):
        if (
            isinstance(baseline, BaseException)
            and isinstance(resumed, BaseException)
            and type(baseline) is type(resumed)
            and str(baseline) == str(resumed)
        ):
            return None
        return (
            f"{after}, the resumed run ended with {_show(resumed)} where the crash-free "
            f"run ended with {_show(baseline)}"
        )
    if _equal(baseline, resumed):
        return None
    return (
        f"{after}, the resumed run returned {_show(resumed)} where the crash-free run "
        f"returned {_show(baseline)}"
    )


def _equal(a: Any, b: Any) -> bool:
    try:
        same = a == b
        if isinstance(same, bool):
            return same
    except Exception:  # values whose == raises (arrays, ...) compare by pickle
        pass
    try:
        return bool(cloudpickle.dumps(a) == cloudpickle.dumps(b))
    except Exception:
        return False


def _show(outcome: Any) -> str:
    if isinstance(outcome, BaseException):
        return f"{type(outcome).__name__}: {outcome}"
    text = repr(outcome)
    return text if len(text) <= 120 else text[:117] + "..."


def _workflow_name(workflow: Any) -> str:
    durable_info = getattr(workflow, "_self_durable", None)
    if durable_info is None:
        raise ConfigurationError(
            f"crash_sweep takes a function decorated with @durable.durable_workflow, "
            f"not {workflow!r}"
        )
    return str(durable_info[0].name)


def _reproduction(
    workflow: Any, args: tuple[Any, ...], kwargs: dict[str, Any], setup: Callable[[], Any] | None
) -> str:
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    if setup is not None:
        shown.append(f"setup={_importable(setup, workflow.__module__)}")
    call = ", ".join([f"{workflow.__module__}.{workflow.__qualname__}", *shown])
    call = call.replace("{", "{{").replace("}", "}}")
    return f"durable.testing.crash_sweep({call}, only={{point!r}})"


def _importable(setup: Callable[[], Any], module: str) -> str:
    """How to name ``setup`` in a line that runs: dotted from its module where it can be.

    A function is named by its module and qualified name; a bound method of a
    module-level object (``RAN.clear``) by that object's name in the
    workflow's module. Anything else (a lambda, a local function) keeps its
    own name, marked as one to pass again by hand.
    """
    qualname = getattr(setup, "__qualname__", repr(setup))
    owner = getattr(setup, "__self__", None)
    if owner is not None and not isinstance(owner, type(sys)):
        namespace = vars(sys.modules.get(module, sys))
        for name, value in namespace.items():
            if value is owner and name.isidentifier():
                return f"{module}.{name}.{getattr(setup, '__name__', qualname)}"
    defined_in = getattr(setup, "__module__", None)
    if defined_in and "<" not in qualname and owner is None:
        return f"{defined_in}.{qualname}"
    return f"<the same setup: {qualname}>"


@contextlib.contextmanager
def _stores(store: Store) -> Iterator[StoreFactory]:
    if callable(store):
        yield store
        return
    if store == "sqlite-memory":
        yield lambda: "sqlite:///:memory:"
        return
    if store != "sqlite-file":
        raise ConfigurationError(
            f"store must be 'sqlite-file', 'sqlite-memory' or a callable returning a "
            f"store URL, not {store!r}"
        )
    folder = tempfile.mkdtemp(prefix="durable-sweep-")
    counter = iter(range(1_000_000))
    try:
        yield lambda: f"sqlite:///{folder}/point-{next(counter)}.db"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
