"""How close can any Python engine with durable's five commits come to raw sqlite3?

Issue 21 asks for 500 short workflows (3 tiny steps each) on SQLite within 3x
raw sqlite3's 3 commits per workflow. durable commits 5 times per workflow
(the start, each step's record, the finish: benchmarks/RESULTS.md says what
each promises). This times, in turn, on fresh stores made by durable:

- ``durable``: ``short_workflows.py``'s workflow, as a user runs it;
- ``bare engine``: a few lines of Python that run the same workflow shape and
  execute durable's own five statements (the texts in
  ``durable.backends._sqlite_sql``, same schema, same pragmas) with nothing
  else: no fingerprint of code or arguments beyond one hash, no lease, no
  determinism check, no write lock, no resume path;
- ``statements alone``: those statements' parameters built before the timer,
  then executed back to back (what sqlite3 itself costs);
- ``in 3 commits``: the same statements, the start committed with the first
  step's record and the last step's record with the finish (what dropping
  those two promises would save sqlite3 itself);
- ``raw sqlite3``: vs_joblib's yardstick, 3 single-row commits per workflow.

The bare engine is a measuring device, not a design: it shows the floor the
five statements set for an engine written in Python. Nothing here asserts on
timings. ``python benchmarks/bare_engine.py --markdown``
"""

from __future__ import annotations

import argparse
import contextvars
import hashlib
import os
import pickle
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from short_workflows import three
from vs_joblib import short_sqlite3

import durable
from durable.backends._sqlite_sql import TEXTS

START, START_NAMES = TEXTS["insert_workflow"][0], TEXTS["insert_workflow"][2]
STEP, STEP_NAMES = TEXTS["record_step"][0], TEXTS["record_step"][2]
FINISH, FINISH_NAMES = TEXTS["finish"][0], TEXTS["finish"][2]
# The parameters below are built in these orders: a changed statement must fail here, loudly.
EXPECTED = {
    START: "p_workflow_id p_name status p_args_fingerprint p_args attempts epoch p_owner_host "
    "p_owner_pid p_owner_started p_lease p_parent_id p_timeout p_deadline",
    STEP: "p_workflow_id p_position p_name p_status p_output p_attempt p_started_at "
    "p_finished_at p_kind p_tx_id p_error_type p_error_message p_code_hash p_workflow_id p_epoch",
    FINISH: "p_status p_result p_error lease_expires_at p_workflow_id p_epoch",
}
for _sql, _names in ((START, START_NAMES), (STEP, STEP_NAMES), (FINISH, FINISH_NAMES)):
    if " ".join(_names) != EXPECTED[_sql]:
        raise SystemExit(f"durable's statement changed, update this script: {_sql[:40]} {_names}")

SEALED = b"\x02\x00"  # durable's header on a plain pickle (format 2, no compression)
HOST = os.uname().nodename
_current: contextvars.ContextVar[list[Any]] = contextvars.ContextVar("bare_workflow")


class Bare:
    """Steps and workflows over one sqlite3 connection, durable's statements and no more."""

    def __init__(self, database: str) -> None:
        self.conn = sqlite3.connect(database, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.create_function("durable_now", 0, time.time)

    def step(self, fn: Callable[[int], int]) -> Callable[[int], int]:
        name, code_hash = fn.__name__, hashlib.md5(fn.__code__.co_code).hexdigest()
        execute = self.conn.execute

        def wrapper(x: int) -> int:
            workflow = _current.get()
            workflow[1] += 1
            started = time.time()
            out = fn(x)
            params = (workflow[0], workflow[1], name, "success", SEALED + pickle.dumps(out, 5),
                      1, started, time.time(), "step", None, None, None, code_hash,
                      workflow[0], 1)  # fmt: skip
            execute(STEP, params)
            return out

        return wrapper

    def workflow(self, fn: Callable[[int], int]) -> Callable[[int], int]:
        name, pid = fn.__name__, os.getpid()
        execute = self.conn.execute

        def wrapper(x: int) -> int:
            args = pickle.dumps((None, (x,), {}), 5)
            fingerprint = hashlib.sha256(args).hexdigest()
            workflow_id = f"{name}:{fingerprint[:20]}"
            params = (workflow_id, name, "running", fingerprint, SEALED + args, 1, 1, HOST,
                      pid, "0", 30.0, None, None, None)  # fmt: skip
            if not execute(START, params).fetchall():
                raise RuntimeError("the bare engine does not resume: run it on a fresh store")
            token = _current.set([workflow_id, 0])
            try:
                out = fn(x)
            finally:
                _current.reset(token)
            execute(FINISH, ("success", SEALED + pickle.dumps(out, 5), None, None, workflow_id, 1))
            return out

        return wrapper

    def close(self) -> None:
        self.conn.close()


def _fresh(folder: str) -> str:
    database = f"{folder}/b.db"
    with durable.Runtime(f"sqlite:///{database}"):
        pass  # durable makes the schema; its log is checkpointed away at close
    return database


def time_durable(count: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        database = _fresh(folder)
        with durable.Runtime(f"sqlite:///{database}") as runtime, runtime.activated():
            started = time.perf_counter()
            for i in range(count):
                three(i)
            return time.perf_counter() - started


def time_bare(count: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        bare = Bare(_fresh(folder))

        @bare.step
        def add_one(x: int) -> int:
            return x + 1

        @bare.step
        def double(x: int) -> int:
            return x * 2

        @bare.step
        def less_three(x: int) -> int:
            return x - 3

        @bare.workflow
        def bare_three(i: int) -> int:
            return less_three(double(add_one(i)))

        started = time.perf_counter()
        for i in range(count):
            bare_three(i)
        elapsed = time.perf_counter() - started
        (steps,) = bare.conn.execute("SELECT count(*) FROM durable_steps").fetchone()
        assert steps == 3 * count, steps  # every record really written
        bare.close()
        return elapsed


def time_statements(count: int, fused: bool = False) -> float:
    """The five statements back to back; ``fused``: in 3 commits, not 5.

    Fused, the start commits with the first step's record and the last step's
    record with the finish: what dropping two promises (the start's claim
    before the first step runs; a step's record before the workflow goes on)
    would save sqlite3, with the same rows written.
    """
    with tempfile.TemporaryDirectory() as folder:
        bare = Bare(_fresh(folder))
        work: list[tuple[str, tuple[Any, ...]]] = []
        for i in range(count):
            workflow_id = f"bare:{i}"
            if fused:
                work.append(("BEGIN", ()))
            work.append((START, (workflow_id, "bare", "running", "f" * 64, SEALED + b"x" * 20, 1,
                                 1, HOST, 1, "0", 30.0, None, None, None)))  # fmt: skip
            for position in (1, 2, 3):
                work.append((STEP, (workflow_id, position, "step", "success", SEALED + b"K\x01.",
                                    1, 0.0, 0.0, "step", None, None, None, "e" * 32,
                                    workflow_id, 1)))  # fmt: skip
                if fused and position in (1, 2):
                    work.append(("COMMIT" if position == 1 else "BEGIN", ()))
            work.append((FINISH, ("success", SEALED + b"K\x01.", None, None, workflow_id, 1)))
            if fused:
                work.append(("COMMIT", ()))
        execute = bare.conn.execute
        started = time.perf_counter()
        for sql, params in work:
            cursor = execute(sql, params)
            if cursor.description:
                cursor.fetchall()
        elapsed = time.perf_counter() - started
        (steps,) = bare.conn.execute("SELECT count(*) FROM durable_steps").fetchone()
        (done,) = bare.conn.execute(
            "SELECT count(*) FROM durable_workflows WHERE status = 'success'"
        ).fetchone()
        assert (steps, done) == (3 * count, count), (steps, done)
        bare.close()
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--markdown", action="store_true", help="(the table is markdown anyway)")
    args = parser.parse_args()
    runs: dict[str, Callable[[int], float]] = {
        "durable": time_durable,
        "bare engine, durable's 5 statements": time_bare,
        "durable's 5 statements alone": time_statements,
        "the same 5 statements in 3 commits": lambda n: time_statements(n, fused=True),
        "raw sqlite3, 3 commits": lambda n: n / short_sqlite3(n),
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeat):  # in turn, so that a busy spell hits them alike
        for name, run in runs.items():
            seconds[name].append(run(args.workflows))
    raw = statistics.median(seconds["raw sqlite3, 3 commits"])
    print(
        f"\n{args.workflows} workflows x 3 steps on a fresh SQLite file, medians of {args.repeat}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}\n"
    )
    print("| engine | µs per workflow | ÷ raw sqlite3 |")
    print("|---|--:|--:|")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"| {name} | {median / args.workflows * 1e6:,.1f} | {median / raw:.2f}x |")


if __name__ == "__main__":
    main()
