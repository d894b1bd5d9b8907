"""Issue 21's scenarios: durable on its SQLite default beside joblib.Memory and raw sqlite3.

One run, same machine, medians of ``--repeat`` runs, a fresh folder per run:

1. Large results: N steps that each return a payload of ``os.urandom`` bytes made
   before the timer starts (50 x 1 MiB, 8 x 16 MiB): MiB/s, and the bytes on disk
   after the store is closed divided by the payload bytes. Each run writes into
   pages just freed (``prime_pages``; ``--cold-pages`` leaves that out).
   Then the same results read back in the process that wrote them: durable
   replays them in a resume (the workflow stopped before its last step);
   joblib loads them from its cache; raw sqlite3 selects and unpickles them.
2. Cold resume: a 100-step workflow (each step returns its index) is SIGKILLed in
   its step 51; then a new process runs it again. Timed from before the new
   process is spawned to its first step that runs (the 51st), and to its result.
3. Peak memory (``VmHWM``) of a process that ran one 10-step workflow, beside a
   plain Python process that imported sqlite3 (and one that used joblib).
4. 500 workflows of 3 tiny steps, one after another: workflows/s, beside raw
   sqlite3 with 3 commits per workflow.
5. Import time: the median of 5 ``python -c "import X"`` minus ``python -c pass``.

joblib runs only if it can be imported (``pip install joblib``). Nothing here
asserts on timings: ``tests/docs/test_benchmarks.py`` only checks it runs.
Run: ``python benchmarks/vs_joblib.py --markdown`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import pickle
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20

try:
    import joblib
except ImportError:  # optional, like DBOS in bench.py
    joblib = None


def _env(**more: str) -> dict[str, str]:
    """The child processes' environment: this checkout first, and bytecode cached.

    An installed package has its bytecode compiled (joblib's is); a checkout run
    with PYTHONDONTWRITEBYTECODE would compile durable from source in each process.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(ROOT), **more}


def _warm_up() -> None:
    """Compile and cache every module the child processes import, once."""
    code = "import durable, durable.backends._sqlite" + (", joblib" if joblib else "")
    subprocess.run([sys.executable, "-c", code], check=True, env=_env())


def _disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# 1. Large results ------------------------------------------------------------------


def _large_durable(folder: Path, payloads: list[bytes]) -> float:
    import durable

    @durable.step(name=f"bench.big{id(payloads)}")
    def big(i: int) -> bytes:
        return payloads[i]

    @durable.durable_workflow(name=f"bench.bigs{id(payloads)}")
    def bigs() -> int:
        return sum(len(big(i)) for i in range(len(payloads)))

    with durable.Runtime(f"sqlite:///{folder}/d.db") as runtime, runtime.activated():
        started = time.perf_counter()
        bigs()
        return time.perf_counter() - started


def _large_joblib(folder: Path, payloads: list[bytes]) -> float:
    assert joblib is not None
    memory = joblib.Memory(location=str(folder), verbose=0)

    def big(i: int) -> bytes:
        return payloads[i]

    cached = memory.cache(big)
    started = time.perf_counter()
    sum(len(cached(i)) for i in range(len(payloads)))
    return time.perf_counter() - started


def _large_sqlite3(folder: Path, payloads: list[bytes]) -> float:
    db = sqlite3.connect(folder / "raw.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE steps (position INTEGER PRIMARY KEY, output BLOB)")
    started = time.perf_counter()
    for i, payload in enumerate(payloads):
        db.execute("BEGIN")
        db.execute("INSERT INTO steps VALUES (?, ?)", (i, pickle.dumps(payload, protocol=5)))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def _reread_durable(folder: Path, payloads: list[bytes]) -> float:
    """A resume's replay of the large results: the workflow stopped before its last step."""
    import durable
    import durable.testing

    tag = id(payloads)

    @durable.step(name=f"bench.big{tag}")
    def big(i: int) -> bytes:
        return payloads[i]

    @durable.step(name=f"bench.end{tag}")
    def end(total: int) -> int:
        return total

    @durable.durable_workflow(name=f"bench.rebigs{tag}")
    def bigs() -> int:
        return end(sum(len(big(i)) for i in range(len(payloads))))

    with durable.Runtime(f"sqlite:///{folder}/d.db") as runtime, runtime.activated():
        crash = durable.testing.CrashInjector(runtime)
        crash.arm("before_step", step=f"bench.end{tag}")
        try:
            bigs.run_sync(workflow_id="reread")
        except durable.testing.SimulatedCrash:
            pass
        else:
            raise AssertionError("the workflow was to stop before its last step")
        crash.close()  # no crash hook left on the path timed
        started = time.perf_counter()
        total = bigs.run_sync(workflow_id="reread")
        elapsed = time.perf_counter() - started
        assert total == sum(map(len, payloads)), total
        return elapsed


def _reread_joblib(folder: Path, payloads: list[bytes]) -> float:
    assert joblib is not None
    memory = joblib.Memory(location=str(folder), verbose=0)

    def big(i: int) -> bytes:
        return payloads[i]

    cached = memory.cache(big)
    sum(len(cached(i)) for i in range(len(payloads)))
    started = time.perf_counter()
    sum(len(cached(i)) for i in range(len(payloads)))  # each from its file now
    return time.perf_counter() - started


def _reread_sqlite3(folder: Path, payloads: list[bytes]) -> float:
    _large_sqlite3(folder, payloads)
    db = sqlite3.connect(folder / "raw.db", isolation_level=None)
    started = time.perf_counter()
    for i in range(len(payloads)):
        (blob,) = db.execute("SELECT output FROM steps WHERE position = ?", (i,)).fetchone()
        len(pickle.loads(blob))
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def prime_pages(folder: Path, size: int) -> None:
    """Write ``size`` bytes to a scratch file in ``folder`` and delete it.

    On a virtual machine whose memory the host has not backed yet, the page
    cache's first touch of a page costs about ten times the copy into it: 128
    MiB written into fresh pages took 250-450 ms here, into pages just freed
    30 ms, whatever wrote them (joblib, durable or a bare ``os.writev`` alike;
    see RESULTS.md). Which an engine got depended on how long ago the last
    files were deleted. Freeing as many pages just before each run makes
    every engine write into recycled pages, so the run times the engine.
    """
    chunk = bytes(MIB)
    scratch = folder / "prime.scratch"
    with scratch.open("wb") as file:
        for _ in range(-(-size // MIB)):
            file.write(chunk)
    scratch.unlink()


def large(
    engines: dict[str, Callable[[Path, list[bytes]], float]],
    count: int,
    size: int,
    repeat: int,
    prime: bool = True,
) -> dict[str, tuple[float, float]]:
    """Each engine's median MiB/s and disk / payload.

    The engines take turns within each repeat, each starting with no dirty
    pages left by another (``os.sync``): writing past the kernel's dirty
    limit runs at the disk's speed, whoever wrote the backlog. Then, unless
    ``prime`` is false, twice the run's bytes are written and freed just
    before it (``prime_pages``). Raw sqlite3 runs its repeats after the
    others' turns, not among them: the run right after its read back of
    16 MiB results took 23 ms where it took 18 after any other, whichever
    engine it was (RESULTS.md).
    """
    payloads = [os.urandom(size) for _ in range(count)]
    speeds: dict[str, list[float]] = {name: [] for name in engines}
    ratios: dict[str, list[float]] = {name: [] for name in engines}
    turns = [(name, run) for name, run in engines.items() if name != "raw sqlite3"]
    after = [(name, run) for name, run in engines.items() if name == "raw sqlite3"]
    for group in (turns, after):
        for _ in range(repeat):
            for name, run in group:
                with tempfile.TemporaryDirectory() as tmp:
                    os.sync()
                    if prime:
                        prime_pages(Path(tmp), 2 * count * size)
                    seconds = run(Path(tmp), payloads)
                    speeds[name].append(count * size / MIB / seconds)
                    ratios[name].append(_disk(Path(tmp)) / (count * size))
    return {
        name: (statistics.median(speeds[name]), statistics.median(ratios[name])) for name in engines
    }


# 2. Cold resume after SIGKILL ---------------------------------------------------------

_RESUME = {
    "durable": """
        import durable
        @durable.step
        def work(i: int) -> int:
            if i == 50:
                first()
            return i
        @durable.durable_workflow(name="bench.hundred")
        def hundred() -> int:
            return sum(work(i) for i in range(100))
        durable.configure(url=f"sqlite:///{FOLDER}/d.db")
        print(hundred.run_sync(workflow_id="resume-me"))
    """,
    "joblib": """
        import joblib
        memory = joblib.Memory(location=f"{FOLDER}/cache", verbose=0)
        @memory.cache
        def work(i: int) -> int:
            if i == 50:
                first()
            return i
        print(sum(work(i) for i in range(100)))
    """,
    "raw sqlite3": """
        import sqlite3, pickle
        db = sqlite3.connect(f"{FOLDER}/raw.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS steps (position INTEGER PRIMARY KEY, output BLOB)")
        def work(i: int) -> int:
            found = db.execute("SELECT output FROM steps WHERE position = ?", (i,)).fetchone()
            if found:
                return pickle.loads(found[0])
            if i == 50:
                first()
            db.execute("INSERT INTO steps VALUES (?, ?)", (i, pickle.dumps(i)))
            return i
        print(sum(work(i) for i in range(100)))
    """,
}

_PRELUDE = """
import os, signal, sys, time
FOLDER = sys.argv[1]
def first() -> None:
    if os.environ.get("BENCH_KILL") == "1":
        os.kill(os.getpid(), signal.SIGKILL)
    print(f"first {time.time()!r}", file=sys.stderr, flush=True)
"""


def cold_resume(engine: str, repeat: int) -> tuple[float, float]:
    """Median seconds from spawning the resuming process to its first new step, and its result."""
    firsts, totals = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "run.py"
            script.write_text(_PRELUDE + textwrap.dedent(_RESUME[engine]))
            env = _env(BENCH_KILL="1")
            killed = subprocess.run(
                [sys.executable, str(script), tmp], env=env, check=False, capture_output=True
            )
            assert killed.returncode == -9, killed.stderr.decode()
            env["BENCH_KILL"] = "0"
            started = time.time()
            done = subprocess.run(
                [sys.executable, str(script), tmp],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            totals.append(time.time() - started)
            assert done.stdout.strip() == str(sum(range(100))), done.stdout
            first = float(done.stderr.split("first ", 1)[1].split()[0])
            firsts.append(first - started)
    return statistics.median(firsts), statistics.median(totals)


# 3. Peak memory -------------------------------------------------------------------

_MEMORY = {
    "python + sqlite3": "import sqlite3",
    "durable": """
        import durable
        @durable.step
        def work(i: int) -> int:
            return i
        @durable.durable_workflow(name="bench.ten")
        def ten() -> int:
            return sum(work(i) for i in range(10))
        durable.configure(url=f"sqlite:///{FOLDER}/d.db")
        ten.run_sync()
    """,
    "joblib": """
        import joblib
        memory = joblib.Memory(location=f"{FOLDER}/cache", verbose=0)
        @memory.cache
        def work(i: int) -> int:
            return i
        sum(work(i) for i in range(10))
    """,
}

_PEAK = """
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) / 1024)
"""


def peak_memory(engine: str, repeat: int) -> float:
    """Median peak resident MiB of a process that ran the engine's scenario."""
    peaks = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            code = "import sys\nFOLDER = sys.argv[1]\n" + textwrap.dedent(_MEMORY[engine]) + _PEAK
            done = subprocess.run(
                [sys.executable, "-c", code, tmp],
                check=True,
                text=True,
                capture_output=True,
                env=_env(),
            )
            peaks.append(float(done.stdout.split()[-1]))
    return statistics.median(peaks)


# 4. Short workflows ---------------------------------------------------------------


def short_durable(count: int) -> float:
    from short_workflows import rate  # the workflow short_workflows.py times

    return rate(count)


def short_sqlite3(count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(f"{tmp}/raw.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE steps (wf TEXT, position INTEGER, output BLOB, "
            "PRIMARY KEY (wf, position))"
        )
        started = time.perf_counter()
        for i in range(count):
            x = i
            for position, step in enumerate((lambda v: v + 1, lambda v: v * 2, lambda v: v - 3)):
                x = step(x)
                db.execute("BEGIN")
                db.execute(
                    "INSERT INTO steps VALUES (?, ?, ?)", (f"w{i}", position, pickle.dumps(x))
                )
                db.execute("COMMIT")
        elapsed = time.perf_counter() - started
        db.close()
        return count / elapsed


# 5. Import time ---------------------------------------------------------------------


def import_ms(module: str) -> float:
    def run(code: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=_env())
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    return (run(f"import {module}") - run("pass")) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--large-repeat",
        type=int,
        default=11,
        help="repeats of the large results (each run takes tens of ms, and varies by 10%%)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--markdown", action="store_true", help="(tables are markdown anyway)")
    parser.add_argument(
        "--cold-pages",
        action="store_true",
        help="large results: do not free pages before each run (prime_pages), for comparison",
    )
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    _warm_up()
    engines: dict[str, Callable[[Path, list[bytes]], float]] = {"durable": _large_durable}
    if joblib is not None:
        engines["joblib"] = _large_joblib
    engines["raw sqlite3"] = _large_sqlite3
    names = list(engines)
    sizes = [(5, MIB), (2, 4 * MIB)] if args.quick else [(50, MIB), (8, 16 * MIB)]

    print(
        f"\nRun: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, medians of {repeat}, "
        f"Python {sys.version.split()[0]}, joblib {getattr(joblib, '__version__', 'absent')}\n"
    )
    rows: list[tuple[str, list[str]]] = []
    for count, size in sizes:
        large_repeat = 1 if args.quick else args.large_repeat
        found = large(engines, count, size, large_repeat, prime=not args.cold_pages)
        label = f"{count} x {size // MIB} MiB"
        rows.append((f"{label}, MiB/s", [f"{found[n][0]:,.0f}" for n in names]))
        rows.append((f"{label}, disk / payload", [f"{found[n][1]:.3f}" for n in names]))
    pages = "fresh pages (--cold-pages)" if args.cold_pages else "recycled pages"
    medians = f"medians of {1 if args.quick else args.large_repeat}"
    _table(f"large results (SQLite file, {pages}, {medians})", names, rows)

    readers: dict[str, Callable[[Path, list[bytes]], float]] = {"durable": _reread_durable}
    if joblib is not None:
        readers["joblib"] = _reread_joblib
    readers["raw sqlite3"] = _reread_sqlite3
    rows = []
    for count, size in sizes:
        found = large(readers, count, size, 1 if args.quick else args.large_repeat)
        label = f"{count} x {size // MIB} MiB"
        rows.append((f"{label}, MiB/s", [f"{found[n][0]:,.0f}" for n in readers]))
    _table(f"large results read back in the same process ({medians})", list(readers), rows)

    resumers = [n for n in ("durable", "joblib", "raw sqlite3") if n != "joblib" or joblib]
    resumed = {n: cold_resume(n, repeat) for n in resumers}
    _table(
        "cold resume after SIGKILL at step 51 of 100",
        resumers,
        [
            ("spawn to the first step run, s", [f"{resumed[n][0]:.3f}" for n in resumers]),
            ("spawn to the result, s", [f"{resumed[n][1]:.3f}" for n in resumers]),
        ],
    )

    holders = [n for n in _MEMORY if n != "joblib" or joblib]
    peaks = [f"{peak_memory(n, repeat):.1f}" for n in holders]
    _table("peak memory (VmHWM), MiB", holders, [("a process that ran it", peaks)])

    count = 50 if args.quick else 500
    ours = statistics.median(short_durable(count) for _ in range(repeat))
    raw = statistics.median(short_sqlite3(count) for _ in range(repeat))
    figures = [f"{ours:,.0f}", f"{raw:,.0f}", f"{raw / ours:.1f}x"]
    heads = ["durable", "raw sqlite3 (3 commits each)", "ratio"]
    _table(f"{count} workflows x 3 steps", heads, [("workflows/s", figures)])

    modules = ["durable", *(["joblib"] if joblib else [])]
    times = [f"{import_ms(m):.0f}" for m in modules]
    _table("import time, ms", modules, [("`python -c 'import X'` minus `python -c pass`", times)])


def _table(title: str, heads: list[str], rows: list[tuple[str, list[str]]]) -> None:
    print(f"\n| {title} | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    for label, cells in rows:
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
