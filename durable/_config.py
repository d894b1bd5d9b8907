"""Where the store is: URL resolution and opening a backend from a URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from durable._errors import ConfigurationError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from durable.backends._base import Backend

# SQLAlchemy and the drivers are imported when a store is opened, not with
# durable itself: importing durable (and its pytest plugin) stays cheap.

DEFAULT_PATH = Path(".durable") / "durable.db"
"""The default store, relative to the working directory."""

ENV_VAR = "DURABLE_URL"


def resolve_url(url: str | None) -> str:
    """The URL to use: the argument, else ``$DURABLE_URL``, else the default file."""
    if url:
        return url
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env
    return f"sqlite:///{DEFAULT_PATH.as_posix()}"


def parse_url(url: str) -> sa.URL:
    """Parse a store URL, or raise ConfigurationError saying what is expected."""
    if not isinstance(url, str):
        raise ConfigurationError(
            f"a store URL must be a str, not {type(url).__name__}", url=repr(url)
        )
    if "://" not in url:
        raise ConfigurationError(
            f"{url!r} is not a store URL; use 'sqlite:///path/to/file.db', "
            "'sqlite:///:memory:' or 'postgresql://user@host:5432/db'",
            url=url,
        )
    import sqlalchemy as sa

    try:
        return sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise ConfigurationError(
            f"malformed store URL {mask_password(url)!r}: {exc}", url=mask_password(url)
        ) from exc


DURABILITY = ("normal", "full", "batched")


def open_backend(url: str, durability: str = "normal") -> Backend:
    """Open (creating or migrating its schema) the store at ``url``."""
    parsed = parse_url(url)
    if durability not in DURABILITY:
        raise ConfigurationError(
            f"durability must be one of {', '.join(DURABILITY)}, not {durability!r}"
        )
    scheme = parsed.get_backend_name()
    if scheme == "sqlite":
        if parsed.get_driver_name() not in ("pysqlite", ""):
            raise ConfigurationError(
                f"unsupported SQLite driver in {_shown(parsed)!r}; use plain 'sqlite:///...'",
                url=_shown(parsed),
            )
        from durable.backends._sqlite import SqliteBackend

        return SqliteBackend(parsed, durability)  # type: ignore[arg-type]
    if scheme in ("postgresql", "postgres"):
        if parsed.get_driver_name() not in ("psycopg", "psycopg2", ""):
            raise ConfigurationError(
                f"unsupported PostgreSQL driver in {_shown(parsed)!r}; durable talks to "
                "PostgreSQL through psycopg 3: use 'postgresql://...' or "
                "'postgresql+psycopg://...'",
                url=_shown(parsed),
            )
        from durable.backends._postgres import PostgresBackend

        return PostgresBackend(parsed, durability)
    raise ConfigurationError(
        f"unsupported store URL scheme {parsed.drivername!r} in {_shown(parsed)!r}; "
        "durable stores workflows in SQLite ('sqlite:///path/to/file.db', "
        "'sqlite:///:memory:') or PostgreSQL ('postgresql://user@host:5432/db')",
        url=_shown(parsed),
    )


def _shown(url: sa.URL) -> str:
    return url.render_as_string(hide_password=True)


def mask_password(url: str) -> str:
    """Hide the password in a URL that SQLAlchemy could not parse."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
