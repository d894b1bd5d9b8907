"""The distribution as users get it: the wheel and sdist built, inspected, and checked by twine."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def _metadata(dist: Path) -> tuple[zipfile.ZipFile, dict[str, list[str]]]:
    (wheel,) = dist.glob("*.whl")
    archive = zipfile.ZipFile(wheel)
    name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    message = Parser().parsestr(archive.read(name).decode())
    fields: dict[str, list[str]] = {}
    for key, value in message.items():
        fields.setdefault(key, []).append(value)
    return archive, fields


def test_the_wheel_carries_the_license_types_and_plugin(dist: Path) -> None:
    archive, fields = _metadata(dist)
    names = archive.namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "durable/py.typed" in names
    assert fields["License-Expression"] == ["MIT"]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "durable = durable.plugins._pytest_entry" in archive.read(entry_points).decode()
    assert not any(n.startswith("tests/") for n in names)
    # durable ui's templates and static files ship with it (it must work offline).
    for shipped in ("templates/base.html", "templates/workflow.html", "static/app.js"):
        assert f"durable/ui/{shipped}" in names, shipped
    assert "durable/ui/static/style.css" in names


def test_the_extras_a_library_user_picks_from(dist: Path) -> None:
    _, fields = _metadata(dist)
    extras = set(fields["Provides-Extra"])
    assert {"postgres", "postgres-binary", "pytest", "cli", "otel", "zstd", "ui"} <= extras
    requires = [r.replace("'", '"') for r in fields["Requires-Dist"]]

    def of(extra: str) -> list[str]:
        return [r.split(";")[0] for r in requires if f'extra == "{extra}"' in r]

    assert any(r.startswith("psycopg>=") for r in of("postgres")), of("postgres")
    assert not any("binary" in r for r in of("postgres"))  # the pure-Python psycopg
    assert any(r.startswith("psycopg[binary]") for r in of("postgres-binary"))
    assert any(r.startswith("pytest-asyncio") for r in of("pytest"))
    assert {r.split(">=")[0] for r in of("ui")} == {"starlette", "uvicorn", "jinja2"}


def test_the_sdist_has_the_license_and_twine_passes_both(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        assert any(n.endswith("/LICENSE") for n in archive.getnames())
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
