"""Where a runtime's settings come from: arguments, the environment, ``pyproject.toml``.

One precedence for every setting (the store's URL and each :class:`durable.Options`
field): an explicit argument, else the environment (``DURABLE_URL``,
``DURABLE_LEASE_SECONDS``...), else ``[tool.durable]`` in the project's
``pyproject.toml`` (the nearest one from the working directory up), else the
default. A value read from text is converted as its field needs, and a bad one
is refused naming where it came from.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from durable._durations import parse_duration
from durable._errors import ConfigurationError
from durable._options import Options

UNSET: Any = type("Unset", (), {"__repr__": lambda self: "<unset>"})()
"""An argument not given: the environment, ``pyproject.toml`` or the default decide."""

FIELDS = tuple(f.name for f in dataclasses.fields(Options))

SECRETS = ("secret_key", "old_secret_keys")
"""Read from the environment by the codec itself, never from a file or a command line."""

_DURATIONS = ("lease_seconds", "poll_interval", "event_poll_interval")
_COUNTS = ("max_recoveries",)
_SIZES = ("compress_threshold", "max_payload_bytes")  # None (off) as "none"/"off"


def env_name(field: str) -> str:
    """The environment variable of a setting: ``DURABLE_`` and its name in capitals."""
    return f"DURABLE_{field.upper()}"


def resolve(given: dict[str, Any]) -> Options:
    """The options: each given argument, else the environment, else pyproject, else default."""
    project, where = pyproject()
    chosen: dict[str, Any] = {}
    for field in FIELDS:
        value = given.get(field, UNSET)
        if value is not UNSET:
            chosen[field] = value
            continue
        if field in SECRETS:
            continue  # $DURABLE_SECRET_KEY and $DURABLE_OLD_SECRET_KEYS: read by the codec
        text = os.environ.get(env_name(field))
        if text is not None and text.strip() != "":
            source = f"${env_name(field)}"
            chosen[field] = checked(field, from_text(field, text, source), source)
        elif field in project:
            chosen[field] = checked(field, project[field], f"{where} [tool.durable] {field}")
    return Options(**chosen)


def project_url() -> str | None:
    """``url`` in ``[tool.durable]`` of the project's ``pyproject.toml``, if set."""
    project, where = pyproject()
    url = project.get("url")
    if url is not None and not isinstance(url, str):
        raise ConfigurationError(f"{where} [tool.durable] url must be a string, not {url!r}")
    return url


def pyproject(start: Path | None = None) -> tuple[dict[str, Any], str]:
    """``[tool.durable]`` of the nearest ``pyproject.toml`` up from ``start``, and its path."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        if path.is_file():
            return _table(path), str(path)
    return {}, "pyproject.toml"


_TABLES: dict[tuple[str, int], dict[str, Any]] = {}


def _table(path: Path) -> dict[str, Any]:
    """``[tool.durable]`` of a file, read once per version of it (each runtime asks)."""
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError:
        key = (str(path), -1)
    found = _TABLES.get(key)
    if found is None:
        found = _TABLES[key] = _read_table(path)
    return found


def _read_table(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None
    table = data.get("tool", {}).get("durable", {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"{path}: [tool.durable] must be a table")
    secrets = sorted(set(table) & set(SECRETS))
    if secrets:
        raise ConfigurationError(
            f"{path} [tool.durable]: {', '.join(secrets)} do not belong in a file that is "
            "shared or versioned; set $DURABLE_SECRET_KEY (and $DURABLE_OLD_SECRET_KEYS) in "
            "the environment instead"
        )
    unknown = sorted(set(table) - {*FIELDS, "url"})
    if unknown:
        raise ConfigurationError(
            f"{path} [tool.durable]: unknown setting(s) {', '.join(unknown)}; the settings "
            f"are url, {', '.join(FIELDS)}"
        )
    return table


def from_text(field: str, text: str, source: str) -> Any:
    """A setting given as text (the environment, a CLI flag), as its field takes it."""
    text = text.strip()
    if field in _SIZES and text.lower() in ("none", "off"):
        return None
    if field in _DURATIONS:
        try:
            return float(text)
        except ValueError:
            try:
                return parse_duration(text)
            except (ValueError, ConfigurationError) as exc:
                raise ConfigurationError(f"{source}={text!r}: {exc}") from None
    if field in (*_COUNTS, *_SIZES):
        try:
            return int(text)
        except ValueError:
            raise ConfigurationError(f"{source}={text!r} is not a whole number") from None
    if field == "old_secret_keys":
        return [key.strip() for key in text.split(",") if key.strip()]
    return text


def checked(field: str, value: Any, source: str) -> Any:
    """``value`` if ``field`` takes it; a ConfigurationError naming ``source`` if not."""
    try:
        Options(**{field: value})
    except ConfigurationError as exc:
        shown = "<hidden>" if "secret" in field else repr(value)
        raise ConfigurationError(f"{source} = {shown}: {exc}") from None
    return value
