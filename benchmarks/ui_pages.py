"""How fast durable ui's pages answer on a store of 100,000 workflows.

Builds the store once through the public API (real workflows: most succeed
with two steps, every tenth fails, a few hundred are enqueued on a queue), in
``benchmarks/.work/`` (kept between runs), then asks each page of the
dashboard over HTTP (Starlette's test client, in process) several times and
prints the median and the slowest answer of each, slowest page first.

    python benchmarks/ui_pages.py                   # SQLite file, 100,000 workflows
    python benchmarks/ui_pages.py --url postgresql://postgres@127.0.0.1:5432/test?schema=ui_bench
    python benchmarks/ui_pages.py --workflows 10000 --repeat 5
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import durable

WORK = Path(__file__).parent / ".work"


@durable.step
def load(n: int) -> int:
    return n * 2


@durable.step
def check(n: int) -> int:
    if n % 10 == 7:
        raise ValueError(f"item {n} is broken")
    return n


@durable.durable_workflow(name="bench.ui.job")
def job(n: int) -> int:
    return check(load(n))


def build(url: str, workflows: int) -> None:
    """Fill the store with ``workflows`` workflows, unless it holds them already."""
    with durable.Runtime(url) as runtime:
        have = sum(runtime.store.metrics().by_status.values())
        if have >= workflows:
            return
        queued = min(500, workflows // 100)
        started = time.perf_counter()
        for n in range(have, workflows - queued):
            with contextlib.suppress(ValueError):
                job.run_sync(n, workflow_id=f"job-{n:06d}")
            if n % 10_000 == 0:
                print(f"  {n} workflows ({time.perf_counter() - started:.0f} s)", flush=True)
        client = durable.Client(runtime=runtime)
        for n in range(workflows - queued, workflows):
            client.enqueue("bench.ui.job", n, queue="reports", workflow_id=f"job-{n:06d}")


def pages(workflows: int) -> dict[str, str]:
    """The pages measured: each kind of page, and the list with each filter."""
    middle = workflows // 2 // 10 * 10
    succeeded, failed = f"job-{middle:06d}", f"job-{middle + 7:06d}"
    return {
        "list (newest 50)": "/",
        "list, status=error": "/?status=error",
        "list, status=enqueued, queue=reports": "/?status=enqueued&queue=reports",
        "list, name=bench.ui.job": "/?name=bench.ui.job",
        "list, id begins job-0500": "/?id_prefix=job-0500",
        "list, since=1d, until=now": "/?since=1d&until=0s",
        "list, live part (polled every 2 s)": "/?partial=1",
        "workflow (success)": f"/workflow?id={succeeded}",
        "workflow (error)": f"/workflow?id={failed}",
        "queues & workers": "/queues",
        "metrics (1 h window)": "/metrics",
        "metrics (7 d window)": "/metrics?window=7d",
    }


def measure(url: str, workflows: int, repeat: int) -> list[tuple[str, float, float, float]]:
    """(page, first ms, median ms, slowest ms) per page, slowest median first.

    Each page gets a dashboard of its own, so that its first answer reads
    everything it needs (the metrics too, which a dashboard reuses for 5 s).
    """
    from starlette.testclient import TestClient

    import durable.ui

    found = []
    with TestClient(durable.ui.app(url)) as client:
        first = client.get("/").text
    cursor = first.split('id="next-page"')[0].rsplit('href="', 1)[1].split('"')[0]
    measured = pages(workflows) | {"list, second page (cursor)": cursor.replace("&amp;", "&")}
    for name, path in measured.items():
        with TestClient(durable.ui.app(url)) as client:
            times = []
            for _ in range(repeat + 1):
                started = time.perf_counter()
                answer = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (path, answer.status_code)
            found.append((name, times[0], statistics.median(times[1:]), max(times[1:])))
    return sorted(found, key=lambda row: -row[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the store (default: a SQLite file in benchmarks/.work)")
    parser.add_argument("--workflows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    url = args.url or f"sqlite:///{WORK / f'ui-{args.workflows}.db'}"
    started = time.perf_counter()
    build(url, args.workflows)
    print(f"store: {url}, {args.workflows} workflows ({time.perf_counter() - started:.0f} s)")
    print(f"| page | first answer ms | median ms | slowest ms (of the {args.repeat} after) |")
    print("| --- | ---: | ---: | ---: |")
    for name, first, median, slowest in measure(url, args.workflows, args.repeat):
        print(f"| {name} | {first:.1f} | {median:.1f} | {slowest:.1f} |")


if __name__ == "__main__":
    main()
