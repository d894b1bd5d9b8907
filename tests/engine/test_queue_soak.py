"""A soak of queues, flow control and schedules under SIGKILL (issue 16, part 4b).

Four worker processes serve a plain queue, a rate-limited one, a partitioned
one and a schedule that ticks every second (tests/programs/soak_app.py);
this test enqueues 1,000 workflows while they run, and SIGKILLs two of the
workers at random moments, restarting each at once, again and again; the
other two keep running. At the end, from the store's records: every
workflow and every tick completed once, every step was recorded once (and
ran again only where a killed process had run it), and no window of the
rate limit's period holds more starts than it allows, nor did a partition
run more at once than its limit.

``SOAK_SEED=<n>`` repeats a run's random choices (what is enqueued in which
batch, which worker is killed, after how long a run); the timings differ from
run to run. The seed is printed, and named by the failures.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import durable
from tests.conftest import program_env, read_lines
from tests.programs import soak_app

ROOT = Path(__file__).parents[2]
WORKERS = 4
KILLED = 2
"""Workers 0 and 1 are SIGKILLed and restarted at random; 2 and 3 are never killed."""
KILL_EVERY = (0.5, 2.0)
"""How long a started worker runs before it is killed: uniform in this range (seconds)."""
MIN_KILLS = 10
"""Kills go on until the enqueued workflows are done, and at least this many happened
(workers take seconds to start on a loaded machine: the kills wait for that)."""
BATCHES = 60
"""Batches of enqueues, one a second: the enqueues go on while workers run and die."""
PLAIN, RATED, PARTITIONED = 750, 100, 150
HOT = "hot"
"""A tenant whose bursts fill its partition; the others trickle in."""
ACTIVE = ("enqueued", "running", "waiting")


@dataclasses.dataclass(frozen=True)
class Item:
    """One workflow to enqueue."""

    kind: str
    i: int
    partition: str | None = None

    @property
    def workflow_id(self) -> str:
        return f"{self.kind}-{self.i:04d}"


def _plan(rng: random.Random) -> list[list[Item]]:
    """What to enqueue in each batch: plain ones anywhere, rated and hot ones in bursts."""
    batches: list[list[Item]] = [[] for _ in range(BATCHES)]
    for i in range(PLAIN):
        batches[rng.randrange(BATCHES)].append(Item("job", i))
    for i in range(RATED):  # four bursts of 25, each of 10 s at 2.5 starts/s
        batches[(i // 25) * 15].append(Item("rated", i))
    for i in range(PARTITIONED):
        if i < 60:  # two bursts of 30 for one tenant
            batches[5 + (i // 30) * 30].append(Item("tenant", i, HOT))
        else:  # the others, and some without a partition key (one partition too)
            key = None if i % 10 == 0 else f"t{i % 4}"
            batches[rng.randrange(BATCHES)].append(Item("tenant", i, key))
    for batch in batches:
        rng.shuffle(batch)
    return batches


def _enqueue(item: Item) -> None:
    if item.kind == "job":
        soak_app.job.enqueue_sync(item.i, workflow_id=item.workflow_id, queue=soak_app.PLAIN)
    elif item.kind == "rated":
        soak_app.rated.enqueue_sync(item.i, workflow_id=item.workflow_id, queue=soak_app.RATED)
    else:
        soak_app.tenant.enqueue_sync(
            str(item.partition),
            item.i,
            workflow_id=item.workflow_id,
            queue=soak_app.PARTITIONED,
            partition=item.partition,
        )


def _expected_result(item: Item) -> object:
    if item.kind == "job":
        return item.i + 111
    if item.kind == "rated":
        return item.i + 101
    return f"{item.partition}:{item.i}"


@dataclasses.dataclass
class WorkerProcess:
    """One ``durable worker`` process, named for the step log (``w<slot>-<n>``)."""

    name: str
    proc: subprocess.Popen[str]
    err: Path

    def has_started(self) -> bool:
        """Whether it runs: its signal handlers are installed, it claims."""
        return "started (owner pid" in self.err.read_text()


class Workers:
    """Four ``durable worker`` processes; a killer thread SIGKILLs and restarts two of them."""

    def __init__(self, url: str, tmp_path: Path, log: Path) -> None:
        self.url, self.tmp_path, self.log = url, tmp_path, log
        self.lock = threading.Lock()
        self.started = 0
        self.current: list[WorkerProcess] = []  # the process of each slot now
        self.killed: set[str] = set()  # names of the processes killed
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.current = [self._spawn(slot) for slot in range(WORKERS)]

    def _spawn(self, slot: int) -> WorkerProcess:
        self.started += 1
        name = f"w{slot}-{self.started:03d}"
        err = self.tmp_path / f"{name}.err"
        queues = [arg for queue in soak_app.QUEUES for arg in ("--queue", queue)]
        command = [sys.executable, "-m", "durable", "--url", self.url, "worker"]
        # Kills are many: no workflow should be quarantined for having been in them.
        options = ["--concurrency", "16", "--max-recoveries", "1000", "--grace", "30"]
        with open(err, "w") as stderr:
            proc = subprocess.Popen(
                [*command, "--import", "tests.programs.soak_app", *queues, *options],
                cwd=ROOT,
                env=program_env(SOAK_APP_LOG=self.log, SOAK_APP_WORKER=name),
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        return WorkerProcess(name, proc, err)

    def start_killing(self, rng: random.Random) -> None:
        self._thread = threading.Thread(target=self._kill_at_random, args=(rng,), daemon=True)
        self._thread.start()

    def _kill_at_random(self, rng: random.Random) -> None:
        try:
            while not self._stop.is_set():
                slot = rng.randrange(KILLED)
                with self.lock:
                    worker = self.current[slot]
                # Into a worker at work, not one still importing its code: once it has
                # started, after a random while.
                deadline = time.monotonic() + 120
                while not worker.has_started():
                    assert time.monotonic() < deadline, f"worker {worker.name} never started"
                    if self._stop.wait(0.05):
                        return
                if self._stop.wait(rng.uniform(*KILL_EVERY)):
                    return
                with self.lock:
                    if self._stop.is_set():  # kill_all() may have run meanwhile
                        return
                    worker.proc.send_signal(signal.SIGKILL)
                    worker.proc.communicate(timeout=30)
                    self.killed.add(worker.name)
                    self.current[slot] = self._spawn(slot)
        except BaseException as exc:  # reported by check()
            self.failure = exc

    def stop_killing(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            assert not self._thread.is_alive(), "the killer thread did not stop"

    def check(self) -> None:
        """Fail at once if a worker died by itself, or the killer failed."""
        if self.failure is not None:
            raise AssertionError(f"the killer thread failed: {self.failure!r}")
        with self.lock:
            for worker in self.current:
                code = worker.proc.poll()
                if code is not None and worker.name not in self.killed:
                    raise AssertionError(
                        f"worker {worker.name} exited by itself ({code}):\n"
                        + worker.err.read_text()[-3000:]
                    )

    def stop(self) -> None:
        """SIGTERM every worker once each has started; each must exit cleanly."""
        for worker in self.current:
            # A SIGTERM before its handlers are installed would kill it.
            _wait(worker.has_started, f"worker {worker.name} to start", 120)
        for worker in self.current:
            worker.proc.send_signal(signal.SIGTERM)
        for worker in self.current:
            out, _ = worker.proc.communicate(timeout=90)
            assert worker.proc.returncode == 0, worker.err.read_text()[-3000:]
            assert "0 failed" in out, (worker.name, out)

    def kill_all(self) -> None:
        """Whatever failed, leave no worker behind."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        with self.lock:
            for worker in self.current:
                if worker.proc.poll() is None:
                    worker.proc.kill()
                    worker.proc.communicate(timeout=30)

    def stderr(self) -> str:
        return "\n".join(
            f"{p.name}:\n{p.read_text()[-2000:]}" for p in sorted(self.tmp_path.glob("w*.err"))
        )


def _wait(
    predicate: Callable[[], bool],
    what: str,
    timeout: float,
    every: float = 0.2,
    explain: Callable[[], object] = lambda: "",
) -> None:
    """Poll until ``predicate()`` is true, at most ``timeout`` seconds (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} {explain()}")
        time.sleep(every)


def _unfinished(store: durable.Store) -> list[tuple[str, str, int | None]]:
    """What has work left: id, status and owner pid of each."""
    active = store.list_workflows(status=ACTIVE, limit=None)
    return [(w.workflow_id, w.status.value, w.owner_pid) for w in active]


def _pooled(url: str) -> str:
    """Four workers and this test share PostgreSQL's connections (100 by default)."""
    if not url.startswith("postgresql"):
        return url
    return f"{url}{'&' if '?' in url else '?'}pool_max=4"


@pytest.mark.slow
def test_soak_four_workers_two_killed_at_random_over_queues_and_a_schedule(
    db_url: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("SOAK_SEED", random.randrange(2**32)))
    print(f"soak seed {seed} (SOAK_SEED={seed} repeats its random choices)")
    plan = _plan(random.Random(seed))
    items = {item.workflow_id: item for batch in plan for item in batch}
    assert len(items) == PLAIN + RATED + PARTITIONED == 1000
    url, log = _pooled(db_url), tmp_path / "effects.log"
    workers = Workers(url, tmp_path, log)
    try:
        with durable.Runtime(url) as runtime:
            store = runtime.store
            for item in plan[0]:  # before the workers: this creates the store
                _enqueue(item)
            workers.start()
            workers.start_killing(random.Random(seed + 1))
            for batch in plan[1:]:
                time.sleep(1.0)  # pacing the enqueues, not waiting for anything
                workers.check()
                for item in batch:
                    _enqueue(item)

            def jobs_done() -> bool:
                workers.check()
                active = store.list_workflows(status=ACTIVE, limit=None)
                busy = [w for w in active if w.name != "soak.tick"]
                return not busy and len(workers.killed) >= MIN_KILLS

            _wait(
                jobs_done,
                f"the enqueued workflows to finish and {MIN_KILLS} kills (seed {seed})",
                timeout=300,
                every=0.5,
                explain=lambda: (len(workers.killed), _unfinished(store)[:50]),
            )
            workers.stop_killing()
            workers.check()
            # No more ticks: the ticks fired so far finish, then the workers stop.
            store.pause_schedule(soak_app.SCHEDULE)
            _wait(
                lambda: not store.list_workflows(status=ACTIVE, limit=None),
                f"the fired ticks to finish (seed {seed})",
                timeout=120,
                every=0.5,
                explain=lambda: _unfinished(store),
            )
            workers.stop()
            # A worker's pass that read the schedule before it was paused may
            # still have enqueued a tick since: run those (nothing else) here.
            left = store.list_workflows(status=ACTIVE, limit=None)
            assert all(w.name == "soak.tick" and w.status == "enqueued" for w in left), left
            if left:
                report = durable.Worker(runtime=runtime, queues=list(soak_app.QUEUES)).run_sync(
                    until_idle=True, handle_signals=False
                )
                assert sorted(report.completed) == sorted(w.workflow_id for w in left)
    except BaseException:
        print(workers.stderr())
        raise
    finally:
        workers.kill_all()
    summary = _check(url, log, items, workers.killed, seed)
    summary["kills"] = len(workers.killed)
    summary["worker processes"] = workers.started
    print("soak:", ", ".join(f"{k} {v}" for k, v in summary.items()))


def _check(
    url: str, log: Path, items: dict[str, Item], killed: set[str], seed: int
) -> dict[str, object]:
    """Everything the store recorded, and the step executions the log saw."""
    where = f"seed {seed}"
    with durable.Store.open(url) as store:
        infos = {w.workflow_id: w for w in store.list_workflows(limit=None)}
        ticks = {wid: w for wid, w in infos.items() if w.name == "soak.tick"}
        enqueued = {wid: w for wid, w in infos.items() if w.name != "soak.tick"}
        # Every workflow completed, once (one row each: its id names it).
        assert sorted(enqueued) == sorted(items), where
        bad = {wid: w.status.value for wid, w in infos.items() if w.status != "success"}
        assert not bad, f"{where}: not successful: {bad}"
        for wid, item in items.items():
            assert store.result(wid) == _expected_result(item), (where, wid)
        for wid in ticks:  # each was given its tick's time
            assert store.result(wid) == wid.split("@")[1].replace("Z", "+00:00"), (where, wid)
        schedule = store.get_schedule(soak_app.SCHEDULE)
        assert schedule is not None
        histories = {wid: store.history(wid) for wid in infos}
    # Every tick from the schedule's creation to its last fired tick, once each.
    times = sorted(
        dt.datetime.strptime(wid, f"{soak_app.SCHEDULE}@%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=dt.timezone.utc
        )
        for wid in ticks
    )
    assert len(times) >= 20, f"{where}: only {len(times)} ticks"  # enqueueing took a minute
    period = dt.timedelta(seconds=soak_app.TICK_SECONDS)
    assert times == [times[0] + k * period for k in range(len(times))], f"{where}: {times}"
    assert times[0] - period < schedule.created_at < times[0], (where, schedule, times[0])
    assert times[-1] == schedule.last_tick, (where, schedule, times[-1])

    # Each step recorded once, in order; none retried, none superseded.
    committed: dict[tuple[str, str], float] = {}
    for wid, history in histories.items():
        expected = soak_app.STEPS[infos[wid].name]
        assert [e.name for e in history] == expected, (where, wid, list(history))
        assert [e.position for e in history] == list(range(1, len(expected) + 1)), (where, wid)
        assert all(e.status == "success" and e.attempt == 1 for e in history), (where, wid)
        assert not [e for e in history if e.superseded], (where, wid)
        for entry in history:
            if entry.kind == "step":
                committed[(wid, entry.name.split(".")[1])] = entry.finished_at

    # A step ran again only where a killed worker had run it and died before its record.
    runs: dict[tuple[str, str], list[tuple[float, str]]] = collections.defaultdict(list)
    by_workflow: dict[str, list[tuple[float, str]]] = collections.defaultdict(list)
    for line in read_lines(log):
        wid, step, worker, started = line.split()
        runs[(wid, step)].append((float(started), worker))
        by_workflow[wid].append((float(started), worker))
    assert set(runs) == set(committed), where
    again = {key: ran for key, ran in runs.items() if len(ran) > 1}
    for key, ran in runs.items():
        survivors = [worker for _, worker in ran if worker not in killed]
        assert len(survivors) <= 1, f"{where}: {key} ran {ran} (killed: {sorted(killed)})"
        # None started after the step's record was written.
        assert all(started <= committed[key] for started, _ in ran), (where, key, ran)
    for wid, ran in by_workflow.items():
        ran_by = [worker for _, worker in sorted(ran)]
        owners = [w for k, w in enumerate(ran_by) if k == 0 or ran_by[k - 1] != w]
        # Owners follow one another (a killed one replaced), never back and forth.
        assert len(owners) == len(set(owners)), (where, wid, ran_by)
        assert all(w in killed for w in owners[:-1]), (where, wid, ran_by, sorted(killed))
    resumed = [w for w in infos.values() if w.attempts > 1]
    assert resumed, f"{where}: no kill landed in a running workflow"

    # The rate limit, from the recorded starts: no window of its period holds more.
    most, window = soak_app.RATE
    starts = sorted(
        info.started_at
        for wid, info in enqueued.items()
        if items[wid].kind == "rated" and info.started_at is not None
    )
    assert len(starts) == RATED, where
    busiest = max(sum(1 for s in starts if at <= s < at + window) for at in starts)
    assert busiest <= most, f"{where}: {busiest} starts within {window} s (limit {most})"
    assert busiest == most, f"{where}: the rate limit never bound ({busiest})"

    # Partitions: no more than the limit ran at once, judged by their recorded steps
    # (from the first step's start to the last one's end: within the slot it held).
    spans: dict[str | None, list[tuple[float, float]]] = collections.defaultdict(list)
    for wid, item in items.items():
        if item.kind == "tenant":
            assert enqueued[wid].partition == item.partition, (where, wid)
            history = histories[wid]
            spans[item.partition].append((history[0].started_at, history[-1].finished_at))
    at_once = {key: _most_at_once(found) for key, found in spans.items()}
    assert max(at_once.values()) <= soak_app.PER_PARTITION, (where, at_once)
    assert at_once[HOT] == soak_app.PER_PARTITION, (where, at_once)
    return {
        "seed": seed,
        "ticks": len(times),
        "resumed workflows": len(resumed),
        "most recoveries": max(w.recoveries for w in infos.values()),
        "steps run again": len(again),
        "rated starts in the busiest window": busiest,
        "most running per partition": at_once,
    }


def _most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most spans that overlap at one moment (one ending as another starts: not both)."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most
