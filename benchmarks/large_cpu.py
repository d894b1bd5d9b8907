"""CPU time per MiB of large step results, written and read back: durable beside joblib.Memory.

The wall clock of ``vs_joblib.py``'s large-results rows depends on the disk and
on what else the machine writes; the CPU time a process spends (``getrusage``,
user + system) does much less. Each run: N steps returning ``os.urandom``
payloads made beforehand, in a fresh folder (``--folder``: put it on tmpfs,
``/dev/shm``, to leave the disk out). The workflow fails once after its steps,
so that its next attempt reads every result back (joblib: the same cached
calls). Median of ``--repeat`` runs.

Run: ``python benchmarks/large_cpu.py --size-mib 16 --count 8 --folder /dev/shm``.
Nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MIB = 1 << 20

try:
    import joblib
except ImportError:
    joblib = None


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Clock:
    """Wall and CPU seconds of each phase."""

    def __init__(self) -> None:
        self.phases: dict[str, tuple[float, float]] = {}
        self._at = (0.0, 0.0)

    def start(self) -> None:
        self._at = (time.perf_counter(), _cpu())

    def stop(self, phase: str) -> None:
        wall, cpu = self._at
        self.phases[phase] = (time.perf_counter() - wall, _cpu() - cpu)


def _durable(folder: Path, payloads: list[bytes], clock: _Clock, key: str | None) -> None:
    import durable

    @durable.step(name=f"bench.big{id(clock)}")
    def big(i: int) -> bytes:
        return payloads[i]

    failing = [True]

    @durable.durable_workflow(name=f"bench.bigs{id(clock)}")
    def bigs() -> int:
        total = sum(len(big(i)) for i in range(len(payloads)))
        if failing:
            failing.clear()
            raise RuntimeError("fails once, so that its next attempt replays every step")
        return total

    with durable.Runtime(f"sqlite:///{folder}/d.db", secret_key=key) as rt, rt.activated():
        clock.start()
        with contextlib.suppress(RuntimeError):
            bigs.run_sync(workflow_id="w")
        clock.stop("write")
        clock.start()
        bigs.run_sync(workflow_id="w")  # a new attempt: every result is read back
        clock.stop("read")


def _joblib(folder: Path, payloads: list[bytes], clock: _Clock, key: str | None) -> None:
    assert joblib is not None
    memory = joblib.Memory(location=str(folder), verbose=0)

    def big(i: int) -> bytes:
        return payloads[i]

    cached = memory.cache(big)
    clock.start()
    sum(len(cached(i)) for i in range(len(payloads)))
    clock.stop("write")
    clock.start()
    sum(len(cached(i)) for i in range(len(payloads)))
    clock.stop("read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=float, default=16)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--folder", default=None, help="where the stores go (default: a temp dir)")
    parser.add_argument("--secret-key", default=None, help="sign durable's payloads with it")
    parser.add_argument("--engines", default="durable,joblib")
    args = parser.parse_args()
    size = int(args.size_mib * MIB)
    payloads = [os.urandom(size) for _ in range(args.count)]
    mib = args.count * size / MIB
    runs: dict[str, Callable[[Path, list[bytes], _Clock, str | None], None]] = {
        "durable": _durable,
        "joblib": _joblib,
    }
    engines = [e for e in args.engines.split(",") if e != "joblib" or joblib is not None]
    found: dict[str, list[dict[str, tuple[float, float]]]] = {e: [] for e in engines}
    for _ in range(args.repeat):
        for engine in engines:  # take turns: the machine's load falls on both alike
            with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
                os.sync()
                clock = _Clock()
                runs[engine](Path(tmp), payloads, clock, args.secret_key)
                found[engine].append(clock.phases)
    print(f"{args.count} x {args.size_mib:g} MiB, median of {args.repeat}, folder {args.folder}")
    print("| engine | write MiB/s | write CPU ms/MiB | read MiB/s | read CPU ms/MiB |")
    print("|---|--:|--:|--:|--:|")
    for engine, phases in found.items():
        cells = []
        for phase in ("write", "read"):
            walls = [p[phase][0] for p in phases]
            cpus = [p[phase][1] for p in phases]
            cells += [
                f"{mib / statistics.median(walls):,.0f}",
                f"{1000 * statistics.median(cpus) / mib:.3f}",
            ]
        print(f"| {engine} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
