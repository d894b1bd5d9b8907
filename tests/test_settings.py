"""Every runtime setting from an argument, the environment or pyproject.toml, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

import durable
from tests.conftest import durable_command


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with a pyproject.toml, as the working directory (its subfolder)."""
    for name in ("DURABLE_URL", "DURABLE_LEASE_SECONDS", "DURABLE_DURABILITY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'app'\n\n[tool.durable]\n"
        f"url = 'sqlite:///{tmp_path / 'from-pyproject.db'}'\n"
        "lease_seconds = 45\ndurability = 'full'\nmax_payload_bytes = 1000000\n"
    )
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path / "src")  # found from below, as a project's files are
    return tmp_path


def test_pyproject_gives_what_nothing_else_does(project: Path) -> None:
    with durable.Runtime() as runtime:
        assert runtime.url.endswith("from-pyproject.db")
        options = runtime.options
        assert (options.lease_seconds, options.durability) == (45.0, "full")
        assert options.max_payload_bytes == 1_000_000
        assert options.poll_interval == 0.5  # the default: set nowhere


def test_the_environment_wins_over_pyproject_and_an_argument_over_both(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLE_LEASE_SECONDS", "2m")
    monkeypatch.setenv("DURABLE_MAX_PAYLOAD_BYTES", "none")
    monkeypatch.setenv("DURABLE_URL", "sqlite:///:memory:")
    with durable.Runtime() as runtime:
        assert "memory" in runtime.url
        assert runtime.options.lease_seconds == 120.0
        assert runtime.options.max_payload_bytes is None
        assert runtime.options.durability == "full"  # from pyproject still
    with durable.Runtime("sqlite:///:memory:", lease_seconds=5, durability="normal") as runtime:
        assert (runtime.options.lease_seconds, runtime.options.durability) == (5.0, "normal")


def test_bad_values_name_where_they_came_from(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLE_MAX_RECOVERIES", "many")
    with pytest.raises(durable.ConfigurationError, match=r"\$DURABLE_MAX_RECOVERIES='many'"):
        durable.Runtime("sqlite:///:memory:")
    monkeypatch.delenv("DURABLE_MAX_RECOVERIES")
    (project / "pyproject.toml").write_text("[tool.durable]\nsecret_key = 'x' \n")
    with pytest.raises(durable.ConfigurationError, match=r"\$DURABLE_SECRET_KEY"):
        durable.Runtime("sqlite:///:memory:")
    (project / "pyproject.toml").write_text("[tool.durable]\nlease_secs = 3\n")
    with pytest.raises(durable.ConfigurationError, match=r"unknown setting.*lease_secs"):
        durable.Runtime("sqlite:///:memory:")
    (project / "pyproject.toml").write_text("[tool.durable]\npoll_interval = -1\n")
    with pytest.raises(durable.ConfigurationError, match=r"\[tool.durable\] poll_interval = -1"):
        durable.Runtime("sqlite:///:memory:")


def test_cli_flags_win_over_the_rest(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    command = durable_command()
    url = f"sqlite:///{project / 'cli.db'}"
    with durable.Runtime(url):
        pass
    assert command(["--url", url, "--lease-seconds", "nonsense", "health"]) != 0
    assert "--lease-seconds='nonsense'" in capsys.readouterr().out
    assert command(["--url", url, "--durability", "batched", "health"]) == 0
