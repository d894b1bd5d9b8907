"""Where the store is: the URL a runtime opens when none is given."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_PATH = Path(".durable") / "durable.db"
"""The default store, relative to the working directory."""

ENV_VAR = "DURABLE_URL"


def resolve_url(url: str | None) -> str:
    """The store's URL: the argument, else ``$DURABLE_URL``, else pyproject, else the default.

    pyproject: ``url`` in ``[tool.durable]`` of the project's ``pyproject.toml``.
    """
    if url:
        return url
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env
    from durable._settings import project_url

    return project_url() or f"sqlite:///{DEFAULT_PATH.as_posix()}"
