"""Where the store is: the URL a runtime opens when none is given."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_PATH = Path(".durable") / "durable.db"
"""The default store, relative to the working directory."""

ENV_VAR = "DURABLE_URL"


def resolve_url(url: str | None) -> str:
    """The URL to use: the argument, else ``$DURABLE_URL``, else the default file."""
    if url:
        return url
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return env
    return f"sqlite:///{DEFAULT_PATH.as_posix()}"
