"""Repository-wide test set-up (tests/ and examples/)."""

from __future__ import annotations

import os

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def _local_postgres_default() -> None:
    """Run the PostgreSQL tests against a local server when none is configured.

    The plugin runs them when $DURABLE_TEST_POSTGRES_URL (or --durable-url) names
    a server; this suite also picks up the usual local one if it answers.
    """
    if os.environ.get("DURABLE_TEST_POSTGRES_URL"):
        return
    try:
        import psycopg

        psycopg.connect(LOCAL_POSTGRES, connect_timeout=2).close()
    except Exception:
        return
    os.environ["DURABLE_TEST_POSTGRES_URL"] = LOCAL_POSTGRES


_local_postgres_default()
