"""Quickstart: a pipeline that survives being killed mid-run.

Run it with ``python examples/quickstart.py``. It starts the pipeline in a
child process, kills that process (SIGKILL, no chance to clean up) while a
step is running, then calls the same workflow again here: the steps that had
finished are not run again, the rest are. The store is the default one, an
SQLite file at ``.durable/durable.db`` under the working directory.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

import durable

RAN: list[str] = []  # what really ran in this process


def say(text: str) -> None:
    print(text, flush=True)


@durable.step
async def download(day: str) -> list[dict[str, float]]:
    RAN.append("download")
    say(f"   ran download({day!r})")
    await asyncio.sleep(0.1)  # stands for a slow API call
    return [{"city": 1.0, "temp": t} for t in (12.5, 14.0, 9.5, 11.0)]


@durable.step
async def clean(rows: list[dict[str, float]]) -> list[float]:
    RAN.append("clean")
    say(f"   ran clean({len(rows)} rows)")
    return [r["temp"] for r in rows if r["temp"] > 10]


@durable.step(retries=2, backoff=0.1)
async def summarize(temps: list[float]) -> str:
    RAN.append("summarize")
    say(f"   ran summarize({temps})")
    if os.environ.get("QUICKSTART_CHILD"):
        say("   ...summarize is thinking (an expensive LLM call, say)")
        await asyncio.sleep(60)  # the parent kills us in here
    return f"{len(temps)} warm readings, mean {sum(temps) / len(temps):.1f} C"


@durable.step
async def publish(summary: str) -> str:
    RAN.append("publish")
    say(f"   ran publish({summary!r})")
    return f"published: {summary}"


@durable.durable_workflow(name="quickstart.daily_report")
async def daily_report(day: str) -> str:
    rows = await download(day)
    temps = await clean(rows)
    summary = await summarize(temps)
    return await publish(summary)


def first_run_killed(workflow_id: str) -> None:
    """Run the workflow in a child process and SIGKILL it during `summarize`."""
    child = subprocess.Popen(
        [sys.executable, __file__, workflow_id],
        env={**os.environ, "QUICKSTART_CHILD": "1"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:
        print(line, end="", flush=True)
        if "is thinking" in line:
            break
    child.kill()
    child.communicate()
    say(f"   -> killed process {child.pid} (SIGKILL) in the middle of summarize\n")


def main() -> None:
    if len(sys.argv) > 1:  # the child: just run the workflow
        asyncio.run(daily_report.run("2026-11-22", workflow_id=sys.argv[1]))
        return

    workflow_id = f"quickstart-{uuid.uuid4().hex[:8]}"
    say("durable quickstart: a 4-step pipeline, killed mid-run, then resumed")
    say(f"store: {durable.current_runtime().url}, workflow id: {workflow_id}\n")

    say("1) first run, in a child process:")
    first_run_killed(workflow_id)

    say("2) the same call again, in this process:")
    result = daily_report.run_sync("2026-11-22", workflow_id=workflow_id)
    skipped = [s for s in ("download", "clean", "summarize", "publish") if s not in RAN]
    say(f"   result: {result}")
    say(f"   skipped, recorded before the crash: {', '.join(skipped)}\n")

    say("3) once more: the recorded result comes back and nothing runs")
    RAN.clear()
    started = time.perf_counter()
    again = daily_report.run_sync("2026-11-22", workflow_id=workflow_id)
    elapsed_ms = (time.perf_counter() - started) * 1000
    say(f"   result: {again} (steps run: {len(RAN)}, {elapsed_ms:.1f} ms)")


if __name__ == "__main__":
    main()
