"""Store URLs: the forms durable understands, their options, and opening a backend from one."""

from __future__ import annotations

import os
import urllib.parse

from durable._errors import ConfigurationError
from durable.backends._store_url import StoreUrl, make_url

# The drivers are imported when a store is opened, not with durable itself:
# importing durable (and its pytest plugin) stays cheap. SQLAlchemy is not
# needed to read a URL at all.

SCHEMES = (
    "sqlite:///relative/path.db",
    "sqlite:////absolute/path.db",
    "sqlite:///:memory:",
    "postgresql://user:password@host:5432/database (or postgres://)",
)
"""The forms of store URL durable understands, as error messages list them."""

SQLITE_OPTIONS = {
    "mode": "'ro' opens the store read-only (list, show, history); 'rw' (default) writes",
    "shared": "'true' lets durable add its tables to a database that holds other tables",
}
"""The query options of a SQLite URL, and what each does."""

POSTGRES_OPTIONS = {
    "schema": "the schema holding durable's tables (default 'durable')",
    "pool_min": "connections the pool keeps open (default 1)",
    "pool_max": "connections the pool opens at most (default 10)",
    "shared": "'true' lets durable add its tables to a schema that holds other tables",
}
"""durable's own query options of a PostgreSQL URL (libpq's are passed to libpq)."""

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def parse_url(url: str) -> StoreUrl:
    """Parse and check a store URL: the one parser every way of giving a URL goes through.

    Returns the URL normalised (``postgres://`` becomes ``postgresql://``).
    Raises ConfigurationError, with any password masked, for what durable
    would not open as the user meant it: another scheme or driver, a SQLite
    URL with a host (``sqlite://jobs.db`` is not a file), an unknown query
    option (a typo would otherwise be ignored) or a bad option value.
    """
    if not isinstance(url, str):
        raise ConfigurationError(
            f"a store URL must be a str, not {type(url).__name__}", url=repr(url)
        )
    if "://" not in url:
        raise ConfigurationError(
            f"{mask_password(url)!r} is not a store URL; use {_forms()}",
            url=mask_password(url),
        )
    # The parser drops options without a value: a typo such as ?jurnal_mode
    # (or a '?' in a file name) would pass unseen.
    query = urllib.parse.urlsplit(url).query if "?" in url else ""
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if not value:
            raise ConfigurationError(
                f"option {key!r} has no value in {mask_password(url)!r}; write it as "
                f"{key}=<value> (a '?' that belongs to a file name is written %3F)",
                url=mask_password(url),
            )
    try:
        parsed = make_url(url)
    except ValueError as exc:
        raise ConfigurationError(
            f"malformed store URL {mask_password(url)!r}: {exc}; use {_forms()}",
            url=mask_password(url),
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        _check_sqlite(parsed)
    elif backend in ("postgresql", "postgres"):
        # Hosting services hand out postgres://, an old spelling of postgresql://.
        _, plus, driver = parsed.drivername.partition("+")
        parsed = parsed.set(drivername=f"postgresql{plus}{driver}")
        _check_postgres(parsed)
    else:
        raise ConfigurationError(
            f"unsupported store URL scheme {parsed.drivername!r} in {_shown(parsed)!r}; "
            f"durable stores workflows in SQLite or PostgreSQL: use {_forms()}",
            url=_shown(parsed),
        )
    return parsed


def _forms() -> str:
    return ", ".join(SCHEMES)


def _check_sqlite(parsed: StoreUrl) -> None:
    shown = _shown(parsed)
    if parsed.get_driver_name() not in ("pysqlite", ""):
        raise ConfigurationError(
            f"unsupported SQLite driver in {shown!r}; use plain 'sqlite:///...'", url=shown
        )
    if parsed.host or parsed.port or parsed.username or parsed.password:
        # sqlite://jobs.db reads as host "jobs.db" and no file: an in-memory
        # store that loses everything at exit, were it accepted.
        host = parsed.host or ""
        path = "/".join(part for part in (host, parsed.database or "") if part)
        raise ConfigurationError(
            f"{shown!r} names a host ({host!r}), and a SQLite store has none: the path "
            f"comes after three slashes, 'sqlite:///{path}' (relative to the working "
            f"folder) or four for an absolute one, 'sqlite:////{path}'; "
            "an in-memory store is 'sqlite:///:memory:'",
            url=shown,
        )
    if parsed.database == "":
        raise ConfigurationError(
            f"{shown!r} names no file; use 'sqlite:///path/to/file.db', or "
            "'sqlite:///:memory:' for a store in memory",
            url=shown,
        )
    _check_options(parsed, SQLITE_OPTIONS, "SQLite")
    if option(parsed, "mode", "rw") not in ("ro", "rw"):
        raise ConfigurationError(
            f"mode={option(parsed, 'mode', '')!r} in {shown!r} must be 'ro' (read-only) "
            "or 'rw' (read-write, the default)",
            url=shown,
        )
    if is_memory(parsed) and read_only(parsed):
        raise ConfigurationError(
            f"mode=ro in {shown!r}: a store in memory starts empty, there is nothing to read",
            url=shown,
        )
    flag(parsed, "shared")


def _check_postgres(parsed: StoreUrl) -> None:
    shown = _shown(parsed)
    if parsed.get_driver_name() not in ("psycopg", "psycopg2", ""):
        raise ConfigurationError(
            f"unsupported PostgreSQL driver in {shown!r}; durable talks to "
            "PostgreSQL through psycopg 3: use 'postgresql://...' or "
            "'postgresql+psycopg://...'",
            url=shown,
        )
    _check_options(parsed, POSTGRES_OPTIONS, "PostgreSQL", _libpq_options())
    flag(parsed, "shared")


def _libpq_options() -> frozenset[str]:
    """The connection parameters of the installed libpq (none without psycopg)."""
    try:
        import psycopg
    except ImportError:  # opening the store says what to install
        return frozenset()
    return frozenset(d.keyword.decode() for d in psycopg.pq.Conninfo.get_defaults())


def _check_options(
    parsed: StoreUrl, own: dict[str, str], what: str, passed_on: frozenset[str] = frozenset()
) -> None:
    shown = _shown(parsed)
    for key, value in parsed.query.items():
        if not isinstance(value, str):
            raise ConfigurationError(
                f"option {key!r} is given {len(value)} times in {shown!r}; give it once",
                url=shown,
            )
        if key in own or key in passed_on:
            continue
        import difflib

        close = difflib.get_close_matches(key, [*own, *passed_on], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = "; ".join(f"{name} ({meaning})" for name, meaning in own.items())
        also = (
            "; and libpq's connection parameters (sslmode, connect_timeout, application_name...)"
            if passed_on
            else ""
        )
        raise ConfigurationError(
            f"unknown option {key!r} in the {what} URL {shown!r}{hint}; a {what} URL takes: "
            f"{known}{also}",
            url=shown,
        )


def option(parsed: StoreUrl, key: str, default: str) -> str:
    """A query option of a checked URL, or ``default``."""
    value = parsed.query.get(key, default)
    return value if isinstance(value, str) else default


def flag(parsed: StoreUrl, key: str) -> bool:
    """A true/false query option (absent: false); ConfigurationError if it is neither."""
    value = option(parsed, key, "false").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(
        f"{key}={value!r} in {_shown(parsed)!r} must be true or false", url=_shown(parsed)
    )


def is_memory(parsed: StoreUrl) -> bool:
    """Whether a SQLite URL names a store in memory."""
    return parsed.database in (None, "", ":memory:")


def read_only(parsed: StoreUrl) -> bool:
    """Whether a SQLite URL asks for the store read-only (``?mode=ro``)."""
    return option(parsed, "mode", "rw") == "ro"


def path_hint(database: str) -> str:
    """How a relative SQLite path was read, for messages about a missing file."""
    if os.path.isabs(database):
        return ""
    return (
        f" (sqlite:///{database} is relative to the working folder, so it means "
        f"{os.path.abspath(database)}; an absolute path takes four slashes: "
        f"sqlite:////{database})"
    )


DURABILITY = ("normal", "full", "batched")


def check_durability(durability: object) -> None:
    """Refuse a durability mode that is not one of :data:`DURABILITY`."""
    if durability not in DURABILITY:
        raise ConfigurationError(
            f"durability must be one of {', '.join(DURABILITY)}, not {durability!r}"
        )


def _shown(url: StoreUrl) -> str:
    return shown_url(url)


def shown_url(url: StoreUrl) -> str:
    """A URL as durable shows it: the password masked, in the user part and in the query."""
    if "password" in url.query:
        url = url.update_query_dict({"password": "***"})
    return url.render_as_string(hide_password=True)


def mask_password(url: str) -> str:
    """Hide the password in a URL that could not be parsed."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"
