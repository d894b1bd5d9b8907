"""The embedded SQLite store: where it is, how it is opened, versioned and refused."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import durable
from durable.backends import SCHEMA_VERSION


@pytest.fixture
def restore_default_runtime() -> Iterator[None]:
    """Tests that configure the process-wide default leave a harmless one behind."""
    yield
    durable.configure(url="sqlite:///:memory:")


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DURABLE_URL", raising=False)


@durable.durable_workflow(name="storage.answer")
def answer() -> int:
    return 42


@pytest.mark.usefixtures("restore_default_runtime", "no_env")
def test_default_store_is_a_wal_sqlite_file_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runtime = durable.configure()
    assert runtime.url == "sqlite:///.durable/durable.db"
    assert answer() == 42
    db = tmp_path / ".durable" / "durable.db"
    assert db.is_file()
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT value FROM durable_meta").fetchone() == (str(SCHEMA_VERSION),)


@pytest.mark.usefixtures("restore_default_runtime")
def test_durable_url_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURABLE_URL", f"sqlite:///{tmp_path}/from-env.db")
    runtime = durable.configure()
    assert runtime.url.endswith("from-env.db")
    assert durable.current_runtime() is runtime
    assert answer() == 42
    assert (tmp_path / "from-env.db").is_file()


@pytest.mark.usefixtures("restore_default_runtime")
def test_configure_url_wins_over_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLE_URL", f"sqlite:///{tmp_path}/env.db")
    runtime = durable.configure(url=f"sqlite:///{tmp_path}/nested/dirs/explicit.db")
    assert answer() == 42
    assert (tmp_path / "nested" / "dirs" / "explicit.db").is_file()
    assert not (tmp_path / "env.db").exists()
    assert runtime.get_workflow(answer.id_for()) is not None


def test_runtime_context_manager_scopes_the_active_runtime(tmp_path: Path) -> None:
    with durable.Runtime(f"sqlite:///{tmp_path}/a.db") as a:
        assert durable.current_runtime() is a
        with durable.Runtime("sqlite:///:memory:") as b:
            assert durable.current_runtime() is b
            answer()
            assert a.get_workflow(answer.id_for()) is None
        assert durable.current_runtime() is a


def test_memory_stores_are_private_to_their_runtime() -> None:
    with durable.Runtime("sqlite:///:memory:") as first:
        answer()
        assert first.get_workflow(answer.id_for()) is not None
    with durable.Runtime("sqlite://") as second:
        assert second.get_workflow(answer.id_for()) is None


def test_schema_is_created_once_and_reopened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    with durable.Runtime(url):
        answer()
    with durable.Runtime(url) as again:
        info = again.get_workflow(answer.id_for())
        assert info is not None
        assert info.status is durable.WorkflowStatus.SUCCESS


def test_database_from_a_newer_version_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    with durable.Runtime(f"sqlite:///{path}"):
        answer()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("PRAGMA journal_mode = DELETE")  # fold the WAL in: one file to compare
        conn.execute("UPDATE durable_meta SET value = '99' WHERE key = 'schema_version'")
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    with pytest.raises(durable.SchemaVersionError) as info:
        durable.Runtime(f"sqlite:///{path}")

    message = str(info.value)
    assert (
        "has durable schema version 99, newer than this durable-sdk understands "
        f"({SCHEMA_VERSION})" in message
    )
    assert "left untouched. Upgrade durable-sdk" in message
    assert isinstance(info.value, durable.ConfigurationError)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my precious notes\n" * 100)
    with pytest.raises(durable.BackendUnavailableError, match="cannot open the SQLite database"):
        durable.Runtime(f"sqlite:///{path}")
    assert path.read_text() == "my precious notes\n" * 100


def test_an_uncreatable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(durable.BackendUnavailableError, match="cannot create the folder"):
        durable.Runtime(f"sqlite:///{blocker}/sub/d.db")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("just/a/path.db", "is not a store URL; use sqlite:///relative/path.db"),
        ("mysql://bob:hunter2@db.local/app", "unsupported store URL scheme 'mysql'"),
        ("sqlite+aiosqlite:///x.db", "unsupported SQLite driver"),
        ("bad url://bob:hunter2@host", "malformed store URL"),
    ],
)
def test_bad_urls_are_configuration_errors_with_the_password_masked(url: str, message: str) -> None:
    with pytest.raises(durable.ConfigurationError, match=message) as info:
        durable.Runtime(url)
    assert "hunter2" not in str(info.value)


def test_runtime_options_are_validated() -> None:
    with pytest.raises(durable.ConfigurationError, match="lease_seconds=0 must be more than 0"):
        durable.Runtime("sqlite://", lease_seconds=0)


@pytest.mark.parametrize("mode", ["normal", "full", "batched"])
def test_durability_modes(durable_backend: str, mode: str) -> None:
    with durable.Runtime(durable_backend, durability=mode):
        assert answer() == 42
        assert answer() == 42


def test_durability_modes_set_the_store_up(durable_sqlite: str) -> None:
    expected = {"normal": 1, "full": 2, "batched": 0}  # SQLite's synchronous levels
    for mode, level in expected.items():
        with durable.Runtime(durable_sqlite, durability=mode) as runtime:
            connection = runtime.backend._connection()  # type: ignore[attr-defined]
            assert connection.execute("PRAGMA synchronous").fetchone()[0] == level
    with pytest.raises(durable.ConfigurationError, match="durability must be one of"):
        durable.Runtime(durable_sqlite, durability="fast")
