"""The ``durable`` command line, run as users run it: the console script, in a subprocess.

Every example of docs/cli.md is run here and its output compared with the
page's, after masking what changes between runs (times, durations, sizes,
hosts, versions). Start-up of the CLI dominates the cost, so independent
invocations run side by side.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import durable
from durable._cli import parse_duration, parse_when
from durable.testing import kill_at

DOC = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
SHOP = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)[0]
CONSOLE = re.findall(r"```console\n(.*?)```", DOC, flags=re.DOTALL)
WORKERS = min(8, os.cpu_count() or 2)


def durable_command() -> list[str]:
    """The installed console script (beside this interpreter first), else ``python -m``."""
    beside = Path(sys.executable).parent / "durable"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("durable")
    return [found] if found else [sys.executable, "-m", "durable"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no store, colour or width set by the test run."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DURABLE_URL", "COLUMNS", "FORCE_COLOR")
    }
    env.update(extra)
    return env


@dataclass(frozen=True)
class Ran:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"$ {shlex.join(self.args)}  (exit {self.code})\n{self.out}{self.err}"


def run(args: Sequence[str], cwd: Path, **env: str) -> Ran:
    """Run one command line; ``durable`` at its start means the console script."""
    argv = [*durable_command(), *args[1:]] if args[0] == "durable" else list(args)
    done = subprocess.run(
        argv, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=60
    )
    return Ran(tuple(args), done.returncode, done.stdout, done.stderr)


def run_all(calls: Sequence[tuple[Sequence[str], Path]], **env: str) -> list[Ran]:
    """Run independent command lines side by side; results in the order given."""
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(lambda call: run(call[0], call[1], **env), calls))


def sessions(block: str) -> list[tuple[str, list[str]]]:
    """The ``$ command`` lines of a console block, each with the output shown under it."""
    found: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            found[-1][1].append(line)
    return found


SETUP = next(b for b in CONSOLE if b.startswith("$ python shop.py"))
EXAMPLES = [sessions(b) for b in CONSOLE if b is not SETUP]


# What changes from run to run, masked on both sides of a comparison.
MASKS = [
    (r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d)?", "<time>"),
    (r"\b\d+(?:\.\d+)? (?:µs|ms|s|min)\b", "<duration>"),
    (r"\b\d+(?:\.\d+)? (?:B|KiB|MiB|GiB)\b", "<size>"),
    (r"\S+ \(pid \d+\)", "<owner>"),
    (r'"(owner_host|owner_pid|duration_seconds)": [^,]+', r'"\1": <x>'),
    (r"^(server|schema)\s.*", r"\1 <x>"),
]


def normalized(text: str | Sequence[str]) -> list[str]:
    """Lines with volatile parts masked, runs of spaces as one, rules and blanks dropped."""
    lines = text.splitlines() if isinstance(text, str) else text
    kept = []
    for line in lines:
        if not line.strip() or not line.strip().strip("─"):
            continue  # blank lines and table rules, whose width follows the data
        for pattern, replacement in MASKS:
            line = re.sub(pattern, replacement, line)
        kept.append(" ".join(line.split()))
    return kept


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of docs/cli.md's examples: shop.py and the store it made.

    order-1 succeeded, order-2 failed, order-3 and order-4 were SIGKILLed
    right after their first step. Tests work on copies (see ``copy_of``).
    """
    root = tmp_path_factory.mktemp("shop")
    (root / "shop.py").write_text(SHOP)
    (command, expected), *_ = sessions(SETUP)
    made = run(shlex.split(command.replace("python", shlex.quote(sys.executable), 1)), root)
    assert made.code == 0, made
    assert made.out.splitlines() == expected, made
    url = f"sqlite:///{root / '.durable' / 'durable.db'}"
    sys.path.insert(0, str(root))  # kill_at's process imports shop by name
    try:
        shop = importlib.import_module("shop")
        for workflow_id in ("order-3", "order-4"):
            kill_at(
                "after_commit:reserve", shop.checkout, "lamp", 30, workflow_id=workflow_id, url=url
            )
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("shop", None)
    return root


def copy_of(shop: Path, where: Path) -> Path:
    """A private copy of the example folder, its store included (WAL files too)."""
    return Path(shutil.copytree(shop, where))


# The page -------------------------------------------------------------------------------


def test_the_page_has_its_examples() -> None:
    assert len(EXAMPLES) == 16
    commands = [command for block in EXAMPLES for command, _ in block]
    assert all(command.startswith("durable ") for command in commands), commands
    shown = {command.split()[1] for command in commands}
    assert shown >= {"list", "show", "history", "restore", "resume", "fork", "cancel"}
    assert shown >= {"recover", "cleanup", "prune", "metrics", "health", "worker", "send-event"}


def test_every_example_of_the_page_prints_what_it_shows(shop: Path, tmp_path: Path) -> None:
    def play(index: int) -> list[str]:
        folder = copy_of(shop, tmp_path / f"block-{index}")
        problems = []
        for command, expected in EXAMPLES[index]:
            ran = run(shlex.split(command), folder)
            fails = any(line.startswith("error:") for line in expected)
            if fails != (ran.code != 0) or "Traceback" in ran.err:
                problems.append(f"unexpected exit or traceback:\n{ran}")
            elif not fails and ran.err:
                problems.append(f"unexpected stderr:\n{ran}")
            elif normalized(ran.out + ran.err) != normalized(expected):
                shown = "\n".join(expected)
                problems.append(f"the page shows:\n{shown}\nbut it printed:\n{ran}")
        return problems

    with ThreadPoolExecutor(WORKERS) as pool:
        problems = [p for found in pool.map(play, range(len(EXAMPLES))) for p in found]
    assert not problems, "\n\n".join(problems)


# JSON -------------------------------------------------------------------------------------


def test_json_of_every_read_command(shop: Path, tmp_path: Path) -> None:
    folder = copy_of(shop, tmp_path / "shop")
    calls = [
        "durable list --json",
        "durable list --status running --name shop.checkout --since 1h --until 2999-01-01 "
        "--limit 1 --json",
        "durable show order-1 --json",
        "durable history order-2 --json",
        f"{shlex.quote(sys.executable)} -m durable metrics --json",
        "durable health --json",
        "durable cleanup --older-than 0s --dry-run --json",
        "durable recover --json",  # nothing imported: both crashed ones are unknown
    ]
    ran = run_all([(shlex.split(call), folder) for call in calls])
    assert all(r.code == 0 and not r.err for r in ran), "\n".join(map(str, ran))
    listed, running, shown, history, metrics, health, cleanup, recover = (
        json.loads(r.out) for r in ran
    )

    assert [w["workflow_id"] for w in listed] == ["order-4", "order-3", "order-2", "order-1"]
    assert {w["status"] for w in listed} == {"running", "error", "success"}
    created = dt.datetime.fromisoformat(listed[0]["created_at"])
    assert created.utcoffset() == dt.timedelta(0)
    assert abs(created - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=10)
    assert [w["workflow_id"] for w in running] == ["order-4"]

    assert shown["status"] == "success"
    assert shown["result"] == "'reserved book, charged 12'"
    assert shown["error"] is None
    assert shown["owner_dead"] is None
    assert [(s["name"], s["kind"]) for s in shown["steps"]] == [
        ("reserve", "step"),
        ("reserved", "snapshot"),
        ("charge", "step"),
    ]
    assert shown["duration_seconds"] > 0

    assert [(e["name"], e["status"], e["attempt"]) for e in history] == [
        ("reserve", "success", 1),
        ("reserved", "snapshot", 1),
        ("charge", "retried", 1),
        ("charge", "error", 2),
    ]
    assert history[3]["error"] == "ValueError: card declined for 900"

    assert metrics["by_status"] == {"success": 1, "error": 1, "running": 2}
    assert metrics["workflows"] == 4
    assert metrics["storage_bytes"] > 0
    assert metrics["checkpoint_ms_mean"] is None  # measured by committing processes only
    assert health["ok"] is True
    assert health["backend"] == "sqlite"
    assert health["error"] is None
    assert cleanup == {"workflows": 2, "steps": 6, "attempts": 1, "dry_run": True}
    assert recover == {
        "resumed": [],
        "unknown": {"order-3": "shop.checkout", "order-4": "shop.checkout"},
        "failed": {},
        "suspended": [],
    }


# Errors -----------------------------------------------------------------------------------


def test_errors_are_one_line_with_a_traceback_only_under_debug(shop: Path, tmp_path: Path) -> None:
    folder = copy_of(shop, tmp_path / "shop")
    missing = f"sqlite:///{tmp_path / 'nowhere' / 'durable.db'}"
    debug, no_store, unhealthy, bad_import, unregistered, bad_status, bare = run_all(
        [
            (["durable", "--debug", "show", "order-9"], folder),
            (["durable", "--url", missing, "list"], folder),
            (["durable", "--url", missing, "health", "--json"], folder),
            (["durable", "resume", "order-1", "--import", "no_such_module"], folder),
            (["durable", "resume", "order-1", "--import", "json"], folder),  # registers nothing
            (["durable", "list", "--status", "lost"], folder),
            (["durable"], folder),
        ]
    )
    assert debug.code == 1
    assert "Traceback (most recent call last)" in debug.err
    assert "WorkflowNotFoundError" in debug.err
    assert debug.err.splitlines()[-1] == (
        "error: no workflow 'order-9' in the store sqlite:///.durable/durable.db"
    )

    assert no_store.code == 1
    assert no_store.out == ""
    assert no_store.err.startswith("error: no durable store at ")
    assert "(from --url)" in no_store.err
    assert len(no_store.err.splitlines()) == 1
    assert not (tmp_path / "nowhere").exists()  # refused, not created empty

    assert unhealthy.code == 1
    report = json.loads(unhealthy.out)
    assert report["ok"] is False
    assert "no durable store" in report["error"]

    assert bad_import.code == 1
    assert "Traceback" not in bad_import.err
    assert bad_import.err.startswith("error: cannot import 'no_such_module'")

    assert unregistered.code == 1
    assert "Traceback" not in unregistered.err
    assert unregistered.err.startswith("error: workflow 'order-1' is a 'shop.checkout'")
    assert unregistered.err.rstrip().endswith("with --import MODULE")

    assert bad_status.code == 2
    assert bad_status.out == ""
    assert bad_status.err.startswith("error: Invalid value for '--status': 'lost' is not one of")
    assert "Traceback" not in bad_status.err

    assert bare.code == 0
    assert "Commands:" in bare.out
    for command in ("list", "show", "history", "restore", "fork", "cancel", "cleanup"):
        assert f"  {command} " in bare.out


def test_without_the_extra_it_says_what_to_install(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "import durable\n"
        "assert not {'click', 'rich'} & set(sys.modules), 'import durable loaded the CLI'\n"
        "sys.modules['click'] = None  # as if the extra were not installed\n"
        "from durable._cli import main\n"
        "sys.exit(main(['list']))\n"
    )
    ran = run([sys.executable, "-c", script], tmp_path)
    assert ran.code == 1, ran
    assert ran.err == 'error: the durable CLI needs its extra: pip install "durable-sdk[cli]"\n'


def test_ui_without_its_extra_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "empty.db").write_bytes(b"")
    script = (
        "import sys\n"
        "sys.modules['starlette'] = None  # as if the ui extra were not installed\n"
        "from durable._cli import main\n"
        "sys.exit(main(['--url', 'sqlite:///empty.db', 'ui']))\n"
    )
    ran = run([sys.executable, "-c", script], tmp_path)
    assert ran.code == 1, ran
    assert ran.err.startswith('error: durable ui needs its extra: pip install "durable-sdk[ui]"')


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 12 * 3600),
        ("15m", 15 * 60),
        ("90s", 90),
        ("2w", 14 * 86400),
        ("1d12h", 36 * 3600),
        ("1h 30m", 5400),
        ("1.5h", 5400),
        ("30 days", 30 * 86400),
        ("2 mins", 120),
        ("0s", 0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "30", "d", "3x", "-1d", "1h30", "30 dayz", "2 ws", "1ss"])
def test_what_is_not_a_duration_says_what_is(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration; write a number and a unit"):
        parse_duration(text)


def test_points_in_time() -> None:
    now = dt.datetime(2025, 6, 2, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_when("2h", now) == now - dt.timedelta(hours=2)
    assert parse_when("2025-06-01T10:00+02:00") == dt.datetime(
        2025, 6, 1, 8, 0, tzinfo=dt.timezone.utc
    )
    local = parse_when("2025-06-01")
    assert local.tzinfo is not None
    assert local.replace(tzinfo=None) == dt.datetime(2025, 6, 1)
    with pytest.raises(ValueError, match="neither a date and time"):
        parse_when("yesterday")
    assert parse_when("2025-06-01T09:30:00Z") == dt.datetime(
        2025, 6, 1, 9, 30, tzinfo=dt.timezone.utc
    )
    with pytest.raises(ValueError, match="names a date, time or offset that does not exist"):
        parse_when("2025-02-30")


def test_since_and_until_take_utc_timestamps_on_every_python(tmp_path: Path) -> None:
    """``Z`` is read by durable, not by datetime.fromisoformat (which refuses it on 3.10)."""
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    with durable.Runtime(url) as runtime:
        durable.durable_workflow(name="cli.z")(lambda: "done").run_sync(workflow_id="z")
        assert runtime.store.get_workflow("z") is not None
    listed, none, bad = run_all(
        [
            (
                ["durable", "--url", url, "list", "--since", "2025-06-01T09:30:00Z", "--json"],
                tmp_path,
            ),
            (
                ["durable", "--url", url, "list", "--until", "2025-06-01T09:30:00Z", "--json"],
                tmp_path,
            ),
            (["durable", "--url", url, "list", "--since", "2025-06-01T09:30:00ZZ"], tmp_path),
        ]
    )
    assert listed.code == 0, listed
    assert [w["workflow_id"] for w in json.loads(listed.out)] == ["z"]
    assert none.code == 0, none
    assert json.loads(none.out) == []
    assert bad.code == 2, bad
    assert "Invalid value for '--since'" in bad.err
    assert "is not a timestamp; write ISO 8601" in bad.err


# PostgreSQL -------------------------------------------------------------------------------


@durable.durable_workflow
def greet(who: str) -> str:
    return f"hello {who}"


def test_list_and_show_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    with durable.Runtime(postgres_url):
        greet.run_sync("pg", workflow_id="pg-1")
    listed, shown = run_all(
        [
            (["durable", "--url", postgres_url, "list", "--json"], tmp_path),
            (["durable", "show", "pg-1"], tmp_path),
        ],
        DURABLE_URL=postgres_url,
    )
    assert listed.code == 0, listed
    assert shown.code == 0, shown
    assert [(w["workflow_id"], w["status"]) for w in json.loads(listed.out)] == [
        ("pg-1", "success")
    ]
    assert "tests.cli.test_cli.greet" in shown.out
    assert "'hello pg'" in shown.out
