"""durable reads a store URL exactly as SQLAlchemy's make_url does, without importing it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from durable.backends._store_url import make_url

URLS = [
    "sqlite://",
    "sqlite:///:memory:",
    "sqlite:///jobs.db",
    "sqlite:////tmp/a b/jobs.db",
    "sqlite:///data/r%C3%A9sum%C3%A9.db?mode=ro&shared=true",
    "sqlite:///a%3Fb.db",
    "sqlite:///x.db?mode=ro&mode=rw",
    "sqlite:///x.db?mode",
    "sqlite+pysqlite:///x.db",
    "sqlite://host/x.db",
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://bob:p%40ss%3Aw0rd@db.internal/app?sslmode=require&schema=jobs",
    "postgres://bob:secret@host/db?password=inquery",
    "postgresql+psycopg://[::1]:6432/db?application_name=a+b",
    "postgresql:///db?host=/run/postgresql",
    "postgresql://user@/db",
    "mysql://u:p@h/db",
]


# SQLAlchemy 2.1 unquotes a URL's database part and quotes it back when it
# renders one; 2.0 did neither. durable reads URLs as 2.1 does, whichever is installed.
SQLALCHEMY_UNQUOTES = sa.make_url("sqlite:///a%3Fb.db").database == "a?b.db"


@pytest.mark.parametrize("text", URLS)
def test_parts_and_rendering_match_sqlalchemy(text: str) -> None:
    ours, theirs = make_url(text), sa.make_url(text)
    quoted = "%" in text.split("?")[0] or ":memory:" in text
    if quoted and not SQLALCHEMY_UNQUOTES:
        pytest.skip(f"SQLAlchemy {sa.__version__} keeps a database part quoted")
    assert ours.drivername == theirs.drivername
    for part in ("username", "password", "host", "port", "database"):
        assert getattr(ours, part) == getattr(theirs, part), part
    assert dict(ours.query) == dict(theirs.query)
    assert ours.get_backend_name() == theirs.get_backend_name()
    for hide in (True, False):
        assert ours.render_as_string(hide) == theirs.render_as_string(hide)
    changed = {"password": "***", "extra": "1"}
    assert (
        ours.update_query_dict(changed).render_as_string()
        == theirs.update_query_dict(changed).render_as_string()
    )


@pytest.mark.parametrize(
    "text",
    ["x", "://", "not a url", "postgresql://u:p@h:abc/db", "sqlite://:", "postgresql://h:/db"],
)
def test_what_sqlalchemy_refuses_is_refused(text: str) -> None:
    with pytest.raises((sa.exc.ArgumentError, ValueError)):
        sa.make_url(text)
    with pytest.raises(ValueError, match=r"does not read as|invalid literal"):
        make_url(text)
