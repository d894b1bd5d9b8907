"""Store URLs: one parser behind every way of giving one, and what it refuses.

Each bad URL is tried through the four doors a user has (``Runtime(url)``,
``durable.configure``, ``$DURABLE_URL`` and the command line's ``--url``): each
gives the same ConfigurationError, says what to write instead, and never shows
the password.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import durable
from tests.conftest import durable_command

cli_main = durable_command()

PASSWORD = "hunter2"


@pytest.fixture
def restore_default_runtime() -> Iterator[None]:
    """Tests that configure the process-wide default leave a harmless one behind."""
    yield
    durable.configure(url="sqlite:///:memory:")


def _via_runtime(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    durable.Runtime(url).close()
    return ""


def _via_configure(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    durable.configure(url=url)
    return ""


def _via_environment(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> str:
    monkeypatch.setenv("DURABLE_URL", url)
    durable.Runtime().close()
    return ""


def _via_cli(url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    code = cli_main(["--url", url, "list"])
    err = capsys.readouterr().err
    if code != 0:
        raise durable.ConfigurationError(err)
    return err


DOORS: dict[str, Callable[[str, pytest.MonkeyPatch, pytest.CaptureFixture[str]], str]] = {
    "Runtime": _via_runtime,
    "configure": _via_configure,
    "DURABLE_URL": _via_environment,
    "cli --url": _via_cli,
}

BAD = [
    # SQLite with a host: two slashes were an in-memory store that lost everything.
    ("sqlite://jobs.db", r"names a host \('jobs.db'\).*'sqlite:///jobs.db'.*'sqlite:////jobs.db'"),
    ("sqlite://server/data/jobs.db", r"names a host \('server'\).*'sqlite:///server/data/jobs.db'"),
    (f"sqlite://bob:{PASSWORD}@host/x.db", r"names a host \('host'\)"),
    ("sqlite://localhost:5/x.db", r"names a host \('localhost'\)"),
    ("sqlite:///", r"names no file; use 'sqlite:///path/to/file.db'"),
    # Unknown options (a typo was silently ignored), per backend.
    ("sqlite:///x.db?jurnal_mode=off", r"unknown option 'jurnal_mode' in the SQLite URL.*mode \("),
    ("sqlite:///x.db?journal_mode=off", r"unknown option 'journal_mode'.*shared \("),
    ("sqlite:///x.db?uri=true", r"unknown option 'uri' in the SQLite URL"),
    ("sqlite:///x.db?timeout=5", r"unknown option 'timeout'"),
    ("sqlite:///x.db?mode=wr", r"mode='wr' .* must be 'ro' \(read-only\) or 'rw'"),
    ("sqlite:///x.db?mode=ro&mode=rw", r"option 'mode' is given 2 times"),
    ("sqlite:///x.db?shared=maybe", r"shared='maybe' .* must be true or false"),
    ("sqlite:///:memory:?mode=ro", r"a store in memory starts empty"),
    # Options without a value (SQLAlchemy dropped them, so a typo passed unseen).
    ("sqlite:///x.db?jurnal_mode", r"option 'jurnal_mode' has no value"),
    ("sqlite:///x.db?mode=", r"option 'mode' has no value"),
    ("sqlite:///a?b.db", r"option 'b.db' has no value.*%3F"),
    (f"postgresql://bob:{PASSWORD}@127.0.0.1:1/db?sslmod", r"option 'sslmod' has no value"),
    # A password given as a libpq option is masked like one in the user part.
    (f"postgresql://bob@127.0.0.1:1/db?password={PASSWORD}&bogus=1", r"unknown option 'bogus'"),
    (
        f"postgresql://bob:{PASSWORD}@127.0.0.1:1/db?sslmod=require",
        r"unknown option 'sslmod' in the PostgreSQL URL .*did you mean 'sslmode'\?.*schema \(",
    ),
    (f"postgres://bob:{PASSWORD}@127.0.0.1:1/db?bogus=1", r"unknown option 'bogus'.*pool_max \("),
    (f"postgresql://bob:{PASSWORD}@127.0.0.1:1/db?shared=perhaps", r"must be true or false"),
    (
        f"postgresql://bob:{PASSWORD}@127.0.0.1:1/db?schema=a-b",
        r"not a plain PostgreSQL identifier",
    ),
    # Schemes and drivers.
    (f"mysql://bob:{PASSWORD}@db.local/app", r"unsupported store URL scheme 'mysql'.*postgres://"),
    ("sqlite3:///x.db", r"unsupported store URL scheme 'sqlite3'.*'?sqlite:////absolute"),
    ("file:///x.db", r"unsupported store URL scheme 'file'"),
    ("sqlite+aiosqlite:///x.db", r"unsupported SQLite driver"),
    (f"postgres+asyncpg://bob:{PASSWORD}@h/db", r"through psycopg 3"),
    ("jobs.db", r"is not a store URL; use sqlite:///relative/path.db"),
    (f"bad url://bob:{PASSWORD}@host", r"malformed store URL"),
]


@pytest.mark.usefixtures("restore_default_runtime")
@pytest.mark.parametrize("door", list(DOORS))
@pytest.mark.parametrize(("url", "message"), BAD, ids=[url for url, _ in BAD])
def test_a_bad_url_is_the_same_configuration_error_through_every_door(
    url: str,
    message: str,
    door: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DURABLE_URL", raising=False)
    with pytest.raises(durable.ConfigurationError, match=message) as info:
        DOORS[door](url, monkeypatch, capsys)
    assert PASSWORD not in str(info.value)
    assert os.listdir(tmp_path) == []  # refused before anything was created


GOOD_SQLITE = [
    "sqlite:///rel/jobs.db",
    "sqlite:///{tmp}/abs.db",
    "sqlite:///{tmp}/abs.db?mode=rw",
    "sqlite:///{tmp}/abs.db?shared=false",
    "sqlite:///:memory:",
    "sqlite://",
]


@pytest.mark.usefixtures("restore_default_runtime")
@pytest.mark.parametrize("door", ["Runtime", "configure", "DURABLE_URL"])
@pytest.mark.parametrize("url", GOOD_SQLITE)
def test_good_sqlite_urls_open_through_every_door(
    url: str,
    door: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DURABLE_URL", raising=False)
    DOORS[door](url.format(tmp=tmp_path), monkeypatch, capsys)
    if url.startswith("sqlite:///rel"):
        assert (tmp_path / "rel" / "jobs.db").is_file()
    if "abs.db" in url:
        assert (tmp_path / "abs.db").is_file()


@pytest.mark.parametrize("door", list(DOORS))
def test_postgres_scheme_opens_postgresql(
    durable_postgres: str,
    door: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_default_runtime: None,
) -> None:
    # What hosting services hand out: postgres://, and libpq options beside durable's.
    url = durable_postgres.replace("postgresql+psycopg://", "postgresql://").replace(
        "postgresql://", "postgres://"
    )
    url += "&application_name=durable-test&connect_timeout=5"
    if door == "cli --url":
        with durable.Runtime(url):  # the command line reads existing stores only
            pass
    DOORS[door](url, monkeypatch, capsys)
    with durable.Runtime(url) as runtime:
        assert runtime.url.startswith("postgresql://")
        assert runtime.health_check().backend == "postgresql"


def test_libpq_connection_parts_may_come_in_the_query(durable_postgres: str) -> None:
    # libpq's own form (postgresql:///db?host=...&user=...) used to raise a raw
    # TypeError: the URL's parts and the query both named host and user.
    parsed = sa.make_url(durable_postgres)
    url = (
        f"postgresql:///{parsed.database}?host={parsed.host}&port={parsed.port or 5432}"
        f"&user={parsed.username}&schema={parsed.query['schema']}"
    )
    with durable.Runtime(url) as runtime:
        assert runtime.health_check().ok
    # Given twice, the query's value wins (as libpq reads a conninfo string).
    both = durable_postgres + "&host=" + str(parsed.host)
    with durable.Runtime(both) as runtime:
        assert runtime.health_check().ok


def test_the_cli_says_a_three_slash_path_is_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code = cli_main(["--url", "sqlite:///tmp/x.db", "list"])
    err = capsys.readouterr().err
    assert code == 1
    assert "no durable store at tmp/x.db" in err
    assert f"is relative to the working folder, so it means {tmp_path}/tmp/x.db" in err
    assert "an absolute path takes four slashes: sqlite:////tmp/x.db" in err
    assert os.listdir(tmp_path) == []
