"""A store URL, read as SQLAlchemy reads one, without importing SQLAlchemy.

Opening a SQLite store at the current schema version needs nothing from
SQLAlchemy (its statements are compiled ahead, ``_precompiled``), so its URL
is parsed here: the same pattern, unquoting and rendering as
``sqlalchemy.engine.make_url`` (``tests/backends/test_store_url.py`` holds
the two side by side).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, quote_plus, unquote

_PATTERN = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    """,
    re.X,
)

Query = Mapping[str, "str | tuple[str, ...]"]


class StoreUrl:
    """The parts of a store URL; a repeated query option holds a tuple of its values."""

    __slots__ = ("database", "drivername", "host", "password", "port", "query", "username")

    def __init__(
        self,
        drivername: str,
        *,
        username: str | None = None,
        password: str | None = None,
        host: str | None = None,
        port: int | None = None,
        database: str | None = None,
        query: Query | None = None,
    ) -> None:
        self.drivername = drivername
        self.username, self.password = username, password
        self.host, self.port, self.database = host, port, database
        self.query: Query = dict(query or {})

    def get_backend_name(self) -> str:
        """The database's name: what comes before ``+`` in the scheme."""
        return self.drivername.partition("+")[0]

    def get_driver_name(self) -> str:
        """The driver the scheme names after ``+`` ("" when it names none)."""
        return self.drivername.partition("+")[2]

    def set(self, *, drivername: str) -> StoreUrl:
        """This URL under another scheme."""
        return self._with(drivername=drivername)

    def update_query_dict(self, values: Query) -> StoreUrl:
        """This URL with these query options replaced or added."""
        return self._with(query={**self.query, **values})

    def _with(self, **changes: object) -> StoreUrl:
        parts: dict[str, object] = {name: getattr(self, name) for name in self.__slots__}
        parts.update(changes)
        drivername = parts.pop("drivername")
        return StoreUrl(drivername, **parts)  # type: ignore[arg-type]

    def render_as_string(self, hide_password: bool = True) -> str:
        """The URL as text, its password shown as ``***`` unless ``hide_password`` is false."""
        text = self.drivername + "://"
        if self.username is not None:
            text += quote(self.username, safe=" +")
            if self.password is not None:
                text += ":" + ("***" if hide_password else quote(self.password, safe=" +"))
            text += "@"
        if self.host is not None:
            text += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            text += f":{self.port}"
        if self.database is not None:
            text += "/" + quote(self.database, safe=" +/")
        if self.query:
            text += "?" + "&".join(
                f"{quote_plus(key)}={quote_plus(value)}"
                for key in sorted(self.query)
                for value in _values(self.query[key])
            )
        return text

    def __repr__(self) -> str:
        return f"StoreUrl({self.render_as_string()!r})"


def make_url(text: str) -> StoreUrl:
    """Parse ``text``; ValueError if it is not a URL (or its port is not a number)."""
    found = _PATTERN.match(text)
    if found is None:
        raise ValueError(
            "it does not read as scheme://[user[:password]@][host[:port]]/[database][?options]"
        )
    parts = found.groupdict()
    query: dict[str, str | tuple[str, ...]] = {}
    if parts["query"] is not None:
        for key, value in parse_qsl(parts["query"]):
            query[key] = (*_values(query[key]), value) if key in query else value
    port = parts["port"]
    return StoreUrl(
        parts["name"],
        username=_unquoted(parts["username"]),
        password=_unquoted(parts["password"]),
        host=parts["ipv4host"] or parts["ipv6host"],
        port=int(port) if port is not None else None,  # an empty port is refused
        database=_unquoted(parts["database"]),
        query=query,
    )


def _unquoted(part: str | None) -> str | None:
    return unquote(part) if part is not None else None


def _values(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value
