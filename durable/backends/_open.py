"""Opening a store: the backend a URL names."""

from __future__ import annotations

from durable.backends._base import Backend
from durable.backends._url import check_durability, parse_url


def open_backend(url: str, durability: str = "normal") -> Backend:
    """Open (creating or migrating its schema) the store at ``url``.

    The drivers are imported here, when a store opens, not with durable.
    """
    parsed = parse_url(url)
    check_durability(durability)
    if parsed.get_backend_name() == "sqlite":
        from durable.backends._sqlite import SqliteBackend

        return SqliteBackend(parsed, durability)  # type: ignore[arg-type]
    from durable.backends._postgres import PostgresBackend

    return PostgresBackend(parsed, durability)
