"""The pytest plugin, tested the way pytest tests plugins: with pytester."""

from __future__ import annotations

import importlib.util
import os

import pytest

INI = (
    "[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    "filterwarnings = error\n"
)

WORKFLOWS = """
import durable

COUNTER = []

@durable.step
async def fetch(x: int) -> int:
    return x + 1

@durable.step
async def count(x: int) -> int:
    COUNTER.append(x)
    return len(COUNTER)

@durable.step(retries=5, backoff=60)
def flaky(attempts: list) -> str:
    attempts.append(1)
    if len(attempts) < 3:
        raise TimeoutError("slow")
    return "ok"

@durable.durable_workflow(name="plugin.good")
async def good(x: int) -> int:
    return await fetch(await fetch(x))

@durable.durable_workflow(name="plugin.buggy")
async def buggy(x: int) -> int:
    return await fetch(x) + await count(x)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(workflows=WORKFLOWS)
    pytester.makeini(INI.format(mode="strict"))
    return pytester


def test_fixtures_give_isolated_runtimes_per_backend(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_flows="""
        import pytest, durable
        import workflows

        @pytest.mark.asyncio
        async def test_good(durable_runtime, durable_backend):
            assert durable.current_runtime() is durable_runtime
            assert durable_runtime.url.split(":")[0] == durable_backend.split(":")[0]
            assert await workflows.good(1) == 3
            assert await workflows.good(1) == 3

        def test_fresh_store_each_time(durable_runtime):
            assert durable_runtime.get_workflow(workflows.good.id_for(1)) is None

        def test_crash_fixture(durable_crash, durable_runtime):
            durable_crash.arm("after_commit", step="fetch")
            with pytest.raises(durable.testing.SimulatedCrash):
                workflows.good.run_sync(5)
            assert workflows.good.run_sync(5) == 7

        def test_clock_fixture(durable_clock, durable_runtime):
            @durable.durable_workflow(name="plugin.clocked")
            def clocked():
                return workflows.flaky([])
            assert clocked() == "ok"
            assert durable_clock.elapsed == 60 + 120
        """
    )
    result = project.runpytest_subprocess("-v", "-p", "no:cacheprovider")
    backends = ["sqlite-file", "sqlite-memory", "postgresql"]
    for backend in backends[:2]:  # each on its own: pytest-randomly may reorder them
        result.stdout.fnmatch_lines([f"*test_good?{backend}? PASSED*"])
    if os.environ.get("DURABLE_TEST_POSTGRES_URL"):
        result.assert_outcomes(passed=12)
        result.stdout.fnmatch_lines(
            ["durable: backends sqlite-file, sqlite-memory, postgresql; postgresql at *"]
        )
    else:
        result.assert_outcomes(passed=8, skipped=4)


def test_postgres_skips_with_a_reason_when_not_configured(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DURABLE_TEST_POSTGRES_URL", raising=False)
    project.makepyfile(test_pg="def test_pg(durable_postgres):\n    pass\n")
    result = project.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*no PostgreSQL configured: set DURABLE_TEST_POSTGRES_URL=postgresql://user@host:5432/db*"]
    )
    result.stdout.fnmatch_lines(["durable: backends *; postgresql not configured"])


def test_configured_but_unreachable_postgres_fails(project: pytest.Pytester) -> None:
    project.makepyfile(test_pg="def test_pg(durable_postgres):\n    pass\n")
    result = project.runpytest_subprocess("--durable-url=postgresql://u:secret@127.0.0.1:1/db")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*PostgreSQL at postgresql://u:***@127.0.0.1:1/db is not reachable*"]
    )
    assert "secret" not in result.stdout.str()


def test_durable_options_in_the_url_are_merged_not_sent_to_the_server(
    project: pytest.Pytester,
) -> None:
    """pool_max and schema are durable's: stripped before connecting, schema merged once."""
    url = os.environ.get("DURABLE_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL configured: set DURABLE_TEST_POSTGRES_URL")
    joiner = "&" if "?" in url else "?"
    project.makepyfile(
        test_pg="""
import durable

def test_pg(durable_postgres):
    query = durable_postgres.split("?", 1)[1]
    assert query.count("schema=") == 1
    assert "schema=durable_test_" in query
    assert "pool_max=4" in query
    with durable.Runtime(durable_postgres) as runtime:
        assert runtime.health_check().ok
"""
    )
    result = project.runpytest_subprocess(
        f"--durable-url={url}{joiner}pool_max=4&schema=mine", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)


def test_postgres_scheme_is_a_postgresql_url(project: pytest.Pytester) -> None:
    # Hosting services hand out postgres://; it used to be a usage error here.
    project.makepyfile(test_pg="def test_pg(durable_postgres):\n    pass\n")
    result = project.runpytest_subprocess("--durable-url=postgres://u:secret@127.0.0.1:1/db")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*PostgreSQL at postgres://u:***@127.0.0.1:1/db is not reachable*"]
    )


def test_backends_option_and_marker_select_backends(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_sel="""
        import pytest

        def test_any(durable_backend):
            pass

        @pytest.mark.durable_backends("sqlite-memory")
        def test_memory_only(durable_backend):
            assert durable_backend == "sqlite:///:memory:"
        """
    )
    result = project.runpytest_subprocess("-v", "--durable-backends=sqlite-file,sqlite-memory")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_memory_only?sqlite-memory? PASSED*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--durable-backends=sqlite-file,oracle"],
            "*unknown backend oracle; valid values: sqlite-file, sqlite-memory, postgresql*",
        ),
        (["--durable-crash-seed=abc"], "*--durable-crash-seed: 'abc' is not a whole number*"),
        (
            ["--durable-url=mysql://x/y"],
            "*is not a PostgreSQL URL; valid values look like postgresql://*",
        ),
        (
            ["--durable-url=mysql://u:hunter2@x/y"],
            "*'mysql://u:***@x/y' is not a PostgreSQL URL*",
        ),
    ],
)
def test_bad_options_are_usage_errors(
    project: pytest.Pytester, args: list[str], message: str
) -> None:
    project.makepyfile(test_x="def test_x():\n    pass\n")
    result = project.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_ini_settings_work_like_options(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "durable_backends = sqlite-memory\ndurable_crash_seed = 3\n"
    )
    pytester.makepyfile(
        test_x="def test_x(durable_backend):\n    assert 'memory' in durable_backend\n"
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_sweep_fixture_passes_and_reports_each_point(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_sweep="""
        import workflows

        def test_good_survives_any_crash(durable_sweep):
            report = durable_sweep(workflows.good, 1)
            assert len(report.outcomes) == 7
        """
    )
    result = project.runpytest_subprocess("-v")
    result.assert_outcomes(passed=1)


def test_sweep_fixture_catches_a_planted_bug_readably(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_sweep="""
        import workflows

        def test_buggy_survives_any_crash(durable_sweep):
            durable_sweep(workflows.buggy, 1, setup=workflows.COUNTER.clear)
        """
    )
    result = project.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    result.assert_outcomes(failed=1)  # one failing point fails its test once, not twice
    assert "SUBFAILED" not in out
    assert "FAIL  after_step:count" in out
    assert "the resumed run returned 4 where the crash-free run returned 3" in out
    assert (
        "reproduce: durable.testing.crash_sweep(workflows.buggy, 1, "
        "setup=workflows.COUNTER.clear, only='after_step:count')" in out
    )
    assert "crash sweep of plugin.buggy: 7 crash points, 6 passed, 1 failed" in out


def test_erroring_test_is_reported_as_an_error(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_err="""
        import pytest

        @pytest.fixture
        def broken(durable_runtime):
            raise RuntimeError("fixture broke")

        def test_x(broken):
            pass
        """
    )
    result = project.runpytest_subprocess("--durable-backends=sqlite-memory")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: fixture broke*"])


def test_coexists_with_pytest_asyncio_auto_mode_and_anyio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(workflows=WORKFLOWS)
    pytester.makeini(INI.format(mode="auto"))
    pytester.makepyfile(
        test_mix="""
        import pytest, durable
        import workflows

        async def test_auto(durable_runtime):
            assert await workflows.good(2) == 4

        @pytest.mark.anyio
        async def test_anyio(durable_runtime, anyio_backend):
            assert await workflows.good(3) == 5

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        def test_sync(durable_runtime):
            assert workflows.good.run_sync(4) == 6
        """
    )
    result = pytester.runpytest_subprocess("--durable-backends=sqlite-file")
    result.assert_outcomes(passed=3)


def test_plugin_defines_no_event_loop_and_no_autouse_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:asyncio", "-p", "no:anyio")
    out = result.stdout.str()
    assert "durable_runtime" in out
    assert not [line for line in out.splitlines() if line.startswith("event_loop")]
    import durable.plugins.pytest as plugin

    fixtures = [getattr(plugin, name) for name in dir(plugin) if name.startswith("durable_")]
    for fixture in fixtures:
        assert "autouse=True" not in repr(fixture)


MARKED = """
import pytest

@pytest.mark.durable_backends("sqlite-memory")
def test_marked(request):
    if "durable_backend" in request.fixturenames:
        assert request.getfixturevalue("durable_backend") == "sqlite:///:memory:"
"""


def test_loading_the_plugin_by_hand_or_not_at_all(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What docs/testing.md says about loading the plugin holds."""
    project.makepyfile(test_marked=MARKED.replace("(request)", "(durable_backend, request)"))
    project.makeini("[pytest]\n")  # no other plugin's settings: autoloading is off
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    project.runpytest_subprocess("-p", "durable", "-p", "no:cacheprovider").assert_outcomes(
        passed=1
    )
    project.makeconftest('pytest_plugins = ["durable.plugins.pytest"]')
    project.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_listed_in_pytest_plugins_while_it_autoloads_it_loads_once(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_marked=MARKED.replace("(request)", "(durable_backend, request)"))
    project.makeconftest('pytest_plugins = ["durable.plugins.pytest"]')
    result = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "--durable-backends=sqlite-memory"
    )
    result.assert_outcomes(passed=1)
    # -p no:durable still turns it off, the listed module included.
    project.makeconftest("")
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:durable")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*Unknown pytest.mark.durable_backends*"])


def test_turned_off_its_marker_is_registered_by_hand(project: pytest.Pytester) -> None:
    project.makepyfile(test_marked=MARKED)
    project.makeini("[pytest]\nmarkers =\n    durable_backends: the backends a test runs on\n")
    result = project.runpytest_subprocess(
        "-p", "no:durable", "--strict-markers", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)


ECOSYSTEM = """
import os, pathlib, pytest, durable
import workflows

async def test_async(durable_runtime):
    assert await workflows.good(2) == 4
    assert durable_runtime.get_workflow(workflows.good.id_for(2)).status.value == "success"

def test_sync(durable_runtime):
    assert workflows.good.run_sync(4) == 6

def test_crash(durable_crash, durable_runtime):
    durable_crash.arm("after_commit", step="fetch")
    with pytest.raises(durable.testing.SimulatedCrash):
        workflows.good.run_sync(5)
    assert workflows.good.run_sync(5) == 7

def test_sweep(durable_sweep):
    report = durable_sweep(workflows.good, 1)
    assert report.ok and len(report.outcomes) >= 4

def test_flaky_once(durable_runtime, request):
    # A rerun gets a fresh store: nothing the failed attempt recorded is there.
    assert durable_runtime.get_workflow(workflows.good.id_for(9)) is None
    assert workflows.good.run_sync(9) == 11
    marker = pathlib.Path(os.environ["FLAKY_MARKER"]) / request.node.name
    if not marker.exists():
        marker.touch()
        raise AssertionError("first attempt fails")
"""


@pytest.mark.parametrize(
    ("plugin", "options"),
    [
        ("xdist", ["-n", "2"]),
        ("randomly", ["-p", "randomly", "--randomly-seed=1"]),
        ("randomly", ["-p", "randomly", "--randomly-seed=2"]),
        ("timeout", ["--timeout=120", "--timeout-method=thread"]),
        ("timeout", ["--timeout=120", "--timeout-method=signal"]),
        ("cov", ["--cov=workflows", "--cov-report=term"]),
    ],
    ids=["xdist", "randomly-1", "randomly-2", "timeout-thread", "timeout-signal", "cov"],
)
def test_coexists_with_the_test_tools_users_run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    plugin: str,
    options: list[str],
) -> None:
    """Issue 17: xdist, randomly, timeout and cov beside the plugin, every backend.

    Each run has pytest-rerunfailures on too, with one test that fails once:
    its rerun must start from a fresh store.
    """
    # Looked up, not imported: pytester drops what a test imports, and
    # pytest-randomly imports numpy, which cannot be imported twice.
    for module in ("xdist" if plugin == "xdist" else f"pytest_{plugin}", "pytest_rerunfailures"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[dev]')")
    pytester.makepyfile(workflows=WORKFLOWS, test_ecosystem=ECOSYSTEM)
    pytester.makeini(INI.format(mode="auto"))
    monkeypatch.setenv("FLAKY_MARKER", str(pytester.mkdir("markers")))
    result = pytester.runpytest_subprocess(
        # pytest-benchmark, where installed, warns under xdist: not ours to judge.
        *("-p", "no:cacheprovider", "-p", "no:benchmark", "--reruns=1", *options)
    )
    per_backend = 3 if os.environ.get("DURABLE_TEST_POSTGRES_URL") else 2
    sweeps = 1  # the sweep runs on its own SQLite files, once
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] == 4 * per_backend + sweeps
    assert outcomes["rerun"] == per_backend
    if plugin == "xdist":
        result.stdout.fnmatch_lines(["*2 workers*"])
    if plugin == "cov":
        result.stdout.fnmatch_lines(["workflows.py * 6?%"])  # good() and fetch() only
