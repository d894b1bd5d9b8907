"""A store with a few workflows of each kind, and a way to keep one running, for the dashboard."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator

import pytest

import durable

EXTRA = 'durable ui needs its extra: pip install "durable-sdk[ui]"'
SECRET = "a long random secret for the tests"


@durable.step
def reserve(item: str) -> str:
    return f"reserved {item}"


@durable.step(retries=1, backoff=0.001)
def charge(amount: int) -> str:
    if amount > 100:
        raise ValueError(f"card declined for {amount}")
    return f"charged {amount}"


@durable.durable_workflow(name="shop.checkout")
def checkout(item: str, amount: int) -> str:
    seat = reserve(item)
    durable.snapshot("reserved")
    durable.publish_sync("stage", f"charging {amount}")
    return f"{seat}, {charge(amount)}"


@durable.durable_workflow(name="shop.batch")
def batch(n: int) -> list[str]:
    return [checkout(f"item-{i}", i) for i in range(n)]


GATE = threading.Event()
STARTED = threading.Event()


@durable.step
def wait_at_gate() -> str:
    STARTED.set()
    GATE.wait(60)
    return "through"


@durable.durable_workflow(name="shop.slow")
def slow() -> str:
    return wait_at_gate()


def seed(url: str, **options: object) -> None:
    """order-1 (success), order-2 (error), batch-1 (three children), as the dashboard shows them."""
    with durable.Runtime(url, **options):  # type: ignore[arg-type]
        checkout.run_sync("book", 12, workflow_id="order-1")
        with contextlib.suppress(ValueError):
            checkout.run_sync("piano", 900, workflow_id="order-2")
        batch.run_sync(3, workflow_id="batch-1")


@contextlib.contextmanager
def running(url: str, workflow_id: str) -> Iterator[threading.Thread]:
    """``shop.slow`` running in a thread (a live owner) until the block ends."""
    GATE.clear()
    STARTED.clear()

    def run() -> None:
        with durable.Runtime(url), contextlib.suppress(durable.WorkflowCancelledError):
            slow.run_sync(workflow_id=workflow_id)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert STARTED.wait(30), "the slow workflow did not start"
    try:
        yield thread
    finally:
        GATE.set()
        thread.join(30)


@pytest.fixture
def seeded(db_url: str) -> str:
    """A store (SQLite file, then PostgreSQL) holding the seeded workflows."""
    seed(db_url)
    return db_url


@pytest.fixture(scope="module", params=["sqlite-file", "postgresql"])
def module_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A seeded store shared by a module's tests (one browser session per module)."""
    if request.param == "sqlite-file":
        url = f"sqlite:///{tmp_path_factory.mktemp('ui') / 'durable.db'}"
        seed(url)
        yield url
        return
    server = os.environ.get("DURABLE_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("no PostgreSQL configured: set DURABLE_TEST_POSTGRES_URL")
    psycopg = pytest.importorskip("psycopg")
    schema = f"durable_ui_{uuid.uuid4().hex[:12]}"
    url = f"{server}{'&' if '?' in server else '?'}schema={schema}&pool_min=0"
    seed(url)
    yield url
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
