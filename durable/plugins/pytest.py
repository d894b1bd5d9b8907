"""The pytest plugin: isolated stores, crash injection and crash sweeps as fixtures.

Loaded automatically (entry point ``pytest11``) once durable-sdk is
installed; it does nothing a test does not ask for: no autouse fixture, no
event loop of its own (it works with pytest-asyncio, anyio or plain sync
tests), and importing it loads neither SQLAlchemy nor a database driver.

Fixtures:

- ``durable_backend``: the URL of a fresh, isolated store; the test runs once
  per backend (``sqlite-file``, ``sqlite-memory``, ``postgresql``).
- ``durable_sqlite`` / ``durable_postgres``: the URL of a fresh SQLite file /
  PostgreSQL schema (dropped after the test).
- ``durable_runtime``: a :class:`durable.Runtime` on ``durable_backend``,
  active for the test, closed after it.
- ``durable_crash``: a :class:`durable.testing.CrashInjector` on it.
- ``durable_clock``: a :class:`durable.testing.VirtualClock` driving it.
- ``durable_sweep``: ``durable_sweep(workflow, *args)`` runs
  :func:`durable.testing.crash_sweep` and fails the test (once) with a
  readable report of every crash point if any failed.

Options (group ``durable``, each also an ini setting): ``--durable-url``
(the PostgreSQL server for the ``postgresql`` backend; default
``$DURABLE_TEST_POSTGRES_URL``), ``--durable-backends`` and
``--durable-crash-seed``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import durable
    import durable.testing

BACKENDS = ("sqlite-file", "sqlite-memory", "postgresql")
ENV_URL = "DURABLE_TEST_POSTGRES_URL"
_ENABLE = (
    f"set {ENV_URL}=postgresql://user@host:5432/db (or pass --durable-url) to run the "
    "PostgreSQL tests"
)


@dataclass(frozen=True)
class _Settings:
    backends: tuple[str, ...]
    postgres_url: str | None
    crash_seed: int | None


_SETTINGS = pytest.StashKey[_Settings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``durable`` option group and its ini settings."""
    group = parser.getgroup("durable", "durable workflows")
    group.addoption(
        "--durable-url",
        dest="durable_url",
        default=None,
        help=f"PostgreSQL server for the postgresql backend (each test gets a schema "
        f"of its own). Default: ${ENV_URL}.",
    )
    group.addoption(
        "--durable-backends",
        dest="durable_backends",
        default=None,
        help=f"comma-separated backends durable_backend runs on ({', '.join(BACKENDS)}; "
        "default: all).",
    )
    group.addoption(
        "--durable-crash-seed",
        dest="durable_crash_seed",
        default=None,
        help="seed of the random sample of crash points, for sweeps that sample.",
    )
    parser.addini("durable_url", "PostgreSQL server for the postgresql backend.")
    parser.addini("durable_backends", "Comma-separated backends durable_backend runs on.")
    parser.addini("durable_crash_seed", "Seed of sampled crash sweeps.")


def _setting(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(name) or config.getini(name)
    return str(value).strip() or None if value else None


def pytest_configure(config: pytest.Config) -> None:
    """Validate the options (UsageError listing valid values) and keep them in the stash."""
    config.addinivalue_line(
        "markers",
        "durable_backends(*names): run this test's durable_backend only on these backends",
    )
    raw = _setting(config, "durable_backends")
    backends = tuple(b.strip() for b in raw.split(",") if b.strip()) if raw else BACKENDS
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise pytest.UsageError(
            f"--durable-backends: unknown backend {', '.join(unknown) or '(none)'}; "
            f"valid values: {', '.join(BACKENDS)}"
        )
    seed_text = _setting(config, "durable_crash_seed")
    try:
        seed = int(seed_text) if seed_text is not None else None
    except ValueError:
        raise pytest.UsageError(
            f"--durable-crash-seed: {seed_text!r} is not a whole number"
        ) from None
    url = _setting(config, "durable_url") or os.environ.get(ENV_URL) or None
    if url is not None and not url.startswith(_POSTGRES_SCHEMES):
        raise pytest.UsageError(
            f"--durable-url: {_masked(url)!r} is not a PostgreSQL URL; valid values look like "
            "postgresql://user@host:5432/db (or postgres://...)"
        )
    config.stash[_SETTINGS] = _Settings(backends, url, seed)


def pytest_report_header(config: pytest.Config) -> str:
    """One header line: the backends tests run on."""
    settings = config.stash[_SETTINGS]
    postgres = (
        f"postgresql at {_masked(settings.postgres_url)}"
        if settings.postgres_url
        else "postgresql not configured"
    )
    return f"durable: backends {', '.join(settings.backends)}; {postgres}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses ``durable_backend`` once per selected backend."""
    if "durable_backend" not in metafunc.fixturenames:
        return
    backends = metafunc.config.stash[_SETTINGS].backends
    marker = metafunc.definition.get_closest_marker("durable_backends")
    if marker is not None:
        wanted = [b for b in marker.args if b not in BACKENDS]
        if wanted:
            raise pytest.UsageError(
                f"@pytest.mark.durable_backends: unknown backend {', '.join(wanted)}; "
                f"valid values: {', '.join(BACKENDS)}"
            )
        backends = tuple(b for b in backends if b in marker.args)
    metafunc.parametrize("durable_backend", backends, indirect=True, ids=list(backends))


@pytest.fixture
def durable_sqlite(tmp_path: Any) -> str:
    """The URL of a fresh SQLite database file in the test's temporary folder."""
    return f"sqlite:///{tmp_path / 'durable.db'}"


@pytest.fixture
def durable_postgres(request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a fresh PostgreSQL schema, dropped after the test.

    Skipped (saying how to enable it) when no server is configured; an error
    when one is configured but cannot be reached.
    """
    url = request.config.stash[_SETTINGS].postgres_url
    if url is None:
        pytest.skip(f"no PostgreSQL configured: {_ENABLE}")
    try:
        import psycopg
    except ImportError:
        pytest.fail('the postgresql backend needs: pip install "durable-sdk[postgres]"', False)
    schema = f"durable_test_{uuid.uuid4().hex[:12]}"
    server, isolated = _server_and_schema_urls(url, schema)
    try:
        psycopg.connect(server, connect_timeout=5).close()
        reason = None
    except psycopg.Error as exc:
        reason = str(exc).strip()
    if reason is not None:
        # Outside the except block, so the driver's frames (with the
        # password among their locals) are not shown.
        pytest.fail(f"PostgreSQL at {_masked(url)} is not reachable: {reason}", pytrace=False)
    yield isolated
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _server_and_schema_urls(url: str, schema: str) -> tuple[str, str]:
    """The server to connect to (durable's own options stripped) and the test's store URL.

    The URL is parsed, not pasted to: a ``schema`` or ``pool_max`` the user
    gave in ``--durable-url`` is merged with the test's own schema, never
    sent to libpq, never given twice.
    """
    import sqlalchemy as sa

    from durable.backends._url import POSTGRES_OPTIONS

    parsed = sa.make_url(url)
    libpq = {k: v for k, v in parsed.query.items() if k not in POSTGRES_OPTIONS}
    server = parsed.set(drivername="postgresql", query=libpq)
    isolated = parsed.update_query_dict({"schema": schema, "pool_min": "0"})
    return (
        server.render_as_string(hide_password=False),
        isolated.render_as_string(hide_password=False),
    )


@pytest.fixture
def durable_backend(request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, isolated store; the test runs once per backend."""
    kind = getattr(request, "param", "sqlite-file")
    if kind == "sqlite-memory":
        return "sqlite:///:memory:"
    if kind == "postgresql":
        return str(request.getfixturevalue("durable_postgres"))
    return str(request.getfixturevalue("durable_sqlite"))


@pytest.fixture
def durable_clock() -> durable.testing.VirtualClock:
    """A virtual clock (auto-advancing); ``durable_runtime`` runs on it when requested."""
    from durable.testing import VirtualClock

    return VirtualClock()


@pytest.fixture
def durable_runtime(
    request: pytest.FixtureRequest, durable_backend: str
) -> Iterator[durable.Runtime]:
    """A runtime on ``durable_backend``, active during the test and closed after it."""
    import durable

    clock = (
        request.getfixturevalue("durable_clock")
        if "durable_clock" in request.fixturenames
        else None
    )
    with durable.Runtime(durable_backend, poll_interval=0.05, clock=clock) as runtime:
        yield runtime


@pytest.fixture
def durable_crash(
    durable_runtime: durable.Runtime,
) -> Iterator[durable.testing.CrashInjector]:
    """A crash injector on ``durable_runtime``."""
    from durable.testing import CrashInjector

    injector = CrashInjector(durable_runtime)
    yield injector
    injector.close()


@pytest.fixture
def durable_sweep(
    request: pytest.FixtureRequest, tmp_path: Any
) -> Callable[..., durable.testing.SweepReport]:
    """Run a crash sweep in one line; the test fails once, listing every crash point.

    Example::

        def test_pipeline_survives_any_crash(durable_sweep):
            durable_sweep(pipeline, "input.csv")
    """
    from durable.testing import crash_sweep

    seed = request.config.stash[_SETTINGS].crash_seed
    counter = iter(range(1_000_000))

    def sweep(workflow: Any, /, *args: Any, **kwargs: Any) -> durable.testing.SweepReport:
        kwargs.setdefault("seed", seed)
        kwargs.setdefault("store", lambda: f"sqlite:///{tmp_path}/sweep-{next(counter)}.db")
        report = crash_sweep(workflow, *args, **kwargs)
        # One failure for the test, its report listing every point (each
        # failing one with its reproducer): a subtest per point made pytest
        # count a failing point twice.
        if not report.ok:
            pytest.fail(str(report), pytrace=False)
        return report

    return sweep


_POSTGRES_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")
"""What durable.parse_url reads as PostgreSQL (the plugin avoids importing SQLAlchemy)."""


def _masked(url: str | None) -> str:
    from durable.backends._url import mask_password

    return mask_password(url) if url else ""
