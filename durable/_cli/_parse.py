"""What a user types on the command line: durations, points in time, JSON arguments."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from durable._durations import duration, parse_duration, parse_timestamp
from durable._errors import ConfigurationError

if TYPE_CHECKING:
    import click


def parse_when(text: str, now: dt.datetime | None = None, *, name: str = "time") -> dt.datetime:
    """Read a point in time: ISO 8601 (local time unless it has an offset) or a duration ago.

    ``2024-05-01``, ``2024-05-01T12:30``, ``2024-05-01T12:30:00Z``,
    ``2024-05-01T12:30+02:00`` or ``2h`` (two hours ago); the ISO forms are
    read by :func:`durable._durations.parse_timestamp`, the same on every
    supported Python version.

    Raises:
        ValueError: saying what is expected, when ``text`` is neither.
    """
    try:
        return (now or dt.datetime.now().astimezone()) - parse_duration(text)
    except ConfigurationError:
        raise  # a duration, but too long
    except ValueError:
        pass
    if re.match(r"\s*\d{4}-", text):  # a date: its own error says what is wrong with it
        return parse_timestamp(text, name)
    raise ValueError(
        f"{text!r} is neither a date and time (2024-05-01, 2024-05-01T12:30, "
        "2024-05-01T12:30:00Z, 2024-05-01T12:30+02:00) nor a duration ago (2h, 7d)"
    )


def duration_callback(ctx: click.Context, param: click.Parameter, value: str) -> dt.timedelta:
    import click

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def seconds_callback(ctx: click.Context, param: click.Parameter, value: float) -> float:
    import click

    try:
        return duration(value, f"--{param.name}")
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def when_callback(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> dt.datetime | None:
    import click

    if value is None:
        return None
    try:
        return parse_when(value, name=f"--{param.name}")
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def json_value(text: str, flag: str, kind: type) -> Any:
    """The JSON list or object an option gives (``--args '[1]'``), else a usage error."""
    import json

    import click

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON ({exc})", param_hint=flag) from None
    if not isinstance(value, kind):
        raise click.BadParameter(
            f"must be a JSON {'list' if kind is list else 'object'}", param_hint=flag
        )
    return value
