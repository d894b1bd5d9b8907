"""The public surface is exactly what durable/__init__.py exports, all documented."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import durable

EXPORTED = {
    "Options",
    "sleep",
    "wait_for_event",
    "wait_for_event_sync",
    "send_event",
    "publish",
    "publish_sync",
    "get_published",
    "get_published_sync",
    "NotPublishedError",
    "StreamRestarted",
    "StreamSummary",
    "SessionState",
    "SessionSummary",
    "session",
    "write_stream",
    "write_stream_sync",
    "close_stream",
    "close_stream_sync",
    "read_stream",
    "read_stream_sync",
    "wait_first",
    "as_completed",
    "WorkflowTimeoutError",
    "StepTimeoutError",
    "send_event_sync",
    "WorkflowHandle",
    "Worker",
    "WorkerReport",
    "WorkflowSuspendedError",
    "WorkflowQuarantinedError",
    "EventTimeoutError",
    "sleep_until",
    "History",
    "CodeChangedError",
    "CodeChangedWarning",
    "CleanupReport",
    "HistoryEntry",
    "Metrics",
    "SnapshotInfo",
    "Store",
    "Transaction",
    "WorkflowCancelledError",
    "WorkflowNotFoundError",
    "fork",
    "restore",
    "snapshot",
    "transaction",
    "MAX_WORKFLOW_ID_LENGTH",
    "AsyncWorkflow",
    "BackendUnavailableError",
    "ConfigurationError",
    "DurableError",
    "HealthReport",
    "InvalidWorkflowIdError",
    "NonDeterminismError",
    "NotInWorkflowError",
    "OwnershipLostError",
    "PayloadIntegrityError",
    "PayloadTooLargeError",
    "Client",
    "Queue",
    "QueueInfo",
    "QueueTimeoutError",
    "RecordedError",
    "RecoveryReport",
    "RetryPolicy",
    "Runtime",
    "RuntimeClosedError",
    "Schedule",
    "ScheduleInfo",
    "ScheduleNotFoundError",
    "SchemaVersionError",
    "SerializationError",
    "StepInfo",
    "StepStatus",
    "SyncWorkflow",
    "WorkflowAlreadyRunningError",
    "WorkflowConflictError",
    "WorkflowDeduplicatedError",
    "WorkflowInfo",
    "WorkflowStatus",
    "__version__",
    "configure",
    "current_runtime",
    "current_workflow_id",
    "durable_workflow",
    "health_check",
    "load_ipython_extension",
    "progress",
    "Progress",
    "recover",
    "recover_sync",
    "schedule",
    "scheduled",
    "step",
}


def test_exported_names_are_pinned() -> None:
    assert set(durable.__all__) == EXPORTED
    for name in durable.__all__:
        assert hasattr(durable, name), name


def test_every_public_name_has_a_docstring() -> None:
    for name in durable.__all__:
        obj = getattr(durable, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"durable.{name} has no docstring"
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    assert inspect.getdoc(member), f"durable.{name}.{attr} has no docstring"


def test_one_error_hierarchy() -> None:
    errors = [getattr(durable, n) for n in durable.__all__ if n.endswith("Error")]
    assert all(issubclass(e, durable.DurableError) for e in errors)
    assert issubclass(durable.ConfigurationError, ValueError)
    assert issubclass(durable.SerializationError, TypeError)


def test_implementation_modules_are_private() -> None:
    import pkgutil

    for module in pkgutil.walk_packages(durable.__path__, "durable."):
        leaf = module.name.rsplit(".", 1)[-1]
        assert leaf.startswith("_") or module.name in {
            "durable.backends",
            "durable.plugins",
            "durable.plugins.pytest",
            "durable.testing",
            "durable.testing.contract",
            "durable.ui",
        }, module.name


def test_testing_module_surface_is_pinned_and_documented() -> None:
    import durable.testing

    assert set(durable.testing.__all__) == {
        "CrashInjector",
        "CrashPoint",
        "KilledRun",
        "PointOutcome",
        "SimulatedCrash",
        "Site",
        "SweepFailed",
        "SweepReport",
        "VirtualClock",
        "crash_sweep",
        "crash_sweep_async",
        "kill_at",
        "registered",
        "unregistered",
    }
    for name in durable.testing.__all__:
        assert inspect.getdoc(getattr(durable.testing, name)), name
    assert issubclass(durable.testing.SimulatedCrash, BaseException)
    assert not issubclass(durable.testing.SimulatedCrash, Exception)


def test_ui_module_surface_is_pinned_and_documented() -> None:
    pytest.importorskip("starlette", reason='durable.ui needs its extra: "durable-sdk[ui]"')
    import durable.ui

    assert set(durable.ui.__all__) == {"app", "serve"}
    for name in durable.ui.__all__:
        assert inspect.getdoc(getattr(durable.ui, name)), name


def test_importing_durable_loads_no_web_dashboard_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, durable, durable.plugins.pytest, durable.testing\n"
        "names = ('durable.ui', 'starlette', 'uvicorn', 'jinja2')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_importing_durable_loads_no_notebook_progress_or_tracing_library() -> None:
    # opentelemetry's import reads every installed package's entry points: it
    # is looked up only once the application has imported it (to set up an SDK).
    import subprocess
    import sys

    code = (
        "import sys, durable, durable.plugins.pytest, durable.testing\n"
        "heavy = [m for m in ('IPython', 'ipykernel', 'tqdm', 'durable._cells', 'opentelemetry') "
        "if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_importing_durable_and_its_plugin_loads_no_database_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, durable, durable.plugins.pytest, durable.testing\n"
        "heavy = [m for m in ('sqlalchemy', 'psycopg', 'psycopg_pool') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _run_sync_script(tmp_path: Path) -> list[str]:
    """Run a sync script of workflows on SQLite twice (a new store, then a replay on it).

    Each run's last two lines: durable's modules that imported asyncio (an
    import hook: wrapt 2.5 imports asyncio itself), and which of cloudpickle,
    hashlib, hmac, OpenSSL's ``_hashlib`` and uuid the process loaded.
    """
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    code = (
        "import builtins, sys\n"
        "importers = set()\n"
        "real = builtins.__import__\n"
        "def watch(name, globals=None, *rest, **more):\n"
        "    if name.partition('.')[0] == 'asyncio':\n"
        "        importers.add((globals or {}).get('__name__', '?'))\n"
        "    return real(name, globals, *rest, **more)\n"
        "builtins.__import__ = watch\n"
        "import durable\n"
        "@durable.step\n"
        "def add(a, b):\n"
        "    return a + b\n"
        "@durable.step\n"
        "def pair(t):\n"
        "    return {'total': t, 'parts': [t, str(t), (t, None, 0.5, b'x')]}\n"
        "@durable.durable_workflow(name='api.total')\n"
        "def total(n, labels=('a', 'b')):\n"
        "    t = 0\n"
        "    for i in range(n):\n"
        "        t = add(t, i)\n"
        "    return pair(t)['total']\n"
        f"with durable.Runtime({url!r}) as runtime:\n"
        "    print(total.run_sync(4, workflow_id='t'), total.run_sync(4, workflow_id='t'))\n"
        "    print(total.run_sync(2, labels=['c']), total.run_sync(2, labels=['c']))\n"
        "    print(len(runtime.store.history('t')), runtime.store.get_workflow('t').status.value)\n"
        "print(sorted(m for m in importers if m.partition('.')[0] == 'durable'))\n"
        "heavy = ('cloudpickle', 'hashlib', 'hmac', '_hashlib', 'uuid')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    lines = []
    for _ in range(2):  # a new store, then one that holds the runs
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.split("\n")[:3] == ["6 6", "1 1", "5 success"]
        lines += out.split("\n")[3:5]
    return lines


def test_a_sync_script_loads_no_asyncio(tmp_path: Path) -> None:
    """asyncio (its SSL support with it) is some 2.6 MiB of a short sync script's memory.

    durable's async path needs it, and has it from the caller; a sync script
    of workflows on SQLite runs, replays and reads its store without durable
    importing it. (wrapt 2.5 imports it itself, for its own locks: then the
    script has it anyway, and this checks durable's part.)
    """
    lines = _run_sync_script(tmp_path)
    assert lines[0::2] == ["[]", "[]"]


def test_a_sync_script_of_plain_values_loads_no_cloudpickle_or_openssl(tmp_path: Path) -> None:
    """cloudpickle (1.9 MiB), OpenSSL's libcrypto (3.6 MiB) and uuid load when first needed.

    Arguments and results made of plain types (numbers, str, bytes, None and
    containers of them) are pickled by pickle's own pickler, which writes the
    same bytes; fingerprints and ids take CPython's own SHA-256. A value of
    another type, a signing key or a large argument loads them.
    """
    lines = _run_sync_script(tmp_path)
    assert lines[1::2] == ["[]", "[]"]


def test_every_public_name_is_listed_by_dir_for_completion() -> None:
    """Names imported when first used (``Worker``, ``progress``) are completed too."""
    assert set(durable.__all__) <= set(dir(durable))
    assert {"Worker", "WorkerReport", "progress", "Progress"} <= set(dir(durable))
