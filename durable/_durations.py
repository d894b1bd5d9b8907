"""Durations, deadlines and points in time: one check for every API that takes one.

Every duration (a sleep, an event timeout, a retry backoff, a poll interval, a
lease, a grace period, the CLI's ``--older-than``) goes through
:func:`duration`; every deadline or point in time (``sleep_until``, the
``since``/``until`` of a listing) through :func:`moment`; every text that
names a point in time (the CLI's ``--since``, a Store argument given as text)
through :func:`parse_timestamp`. The rules:

- a duration is an ``int``, a ``float`` or a :class:`datetime.timedelta`
  (``bool`` is refused: ``True`` is not one second), finite, not negative,
  and at most :data:`MAX_SECONDS` (100 years);
- a deadline is an aware :class:`datetime.datetime` or a Unix timestamp,
  finite, and no later than :data:`LATEST` (the end of year 9999, the last
  moment a ``datetime`` can show); a deadline in the past is allowed (the wait
  is over at once). A timer is also refused when its deadline lies more than
  100 years ahead, which keeps it within what the host's timers accept.

A deadline is stored as a float of Unix time (SQLite ``REAL``, PostgreSQL
``double precision``): every value these rules let through is exact there.
Bad values raise :class:`durable.ConfigurationError` (also a ``ValueError``)
naming the parameter and the value, before anything is recorded. This module
imports nothing of the engine.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Final

from durable._errors import ConfigurationError

MAX_SECONDS: Final = 100 * 365.25 * 86400.0
"""The longest duration durable takes: 100 years, in seconds."""

LATEST: Final = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc).timestamp()
"""The latest deadline durable takes or shows, in Unix time (end of year 9999)."""


_RULE = "seconds (an int or a float) or a datetime.timedelta, from 0 to 100 years"


def as_seconds(value: object, name: str) -> float:
    """A number of seconds or a timedelta as a float, its range not checked yet.

    Raises:
        ConfigurationError: ``value`` is neither a number (``bool`` is not
            one) nor a timedelta.
    """
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an int past the float range
            return math.inf
    raise _error(f"{name} takes {_RULE}, not {value!r}", name, value)


def duration(value: object, name: str, *, positive: bool = False) -> float:
    """Seconds of a duration given as a number of seconds or a timedelta.

    Args:
        value: The duration as given by the user.
        name: The parameter's name, for the error message.
        positive: Refuse zero too (an interval that must advance).

    Raises:
        ConfigurationError: ``value`` is not a number or a timedelta, is
            ``bool``, not finite, negative (or zero when ``positive``), or
            longer than 100 years.
    """
    seconds = as_seconds(value, name)
    if math.isnan(seconds):
        problem = "is not a number"
    elif math.isinf(seconds):
        problem = "is not finite"
    elif seconds > MAX_SECONDS:
        problem = "is longer than 100 years, the longest duration durable takes"
    elif seconds < 0:
        problem = "is negative"
    elif positive and seconds == 0:
        problem = "must be more than 0 seconds"
    else:
        return seconds
    rule = _RULE.replace("from 0", "more than 0") if positive else _RULE
    raise _error(f"{name}={value!r} {problem}; give {rule}", name, value)


def optional_duration(value: object, name: str) -> float | None:
    """:func:`duration`, or None for None (no limit)."""
    return None if value is None else duration(value, name)


def moment(value: object, name: str) -> float:
    """Unix time of a point in time: an aware datetime, a Unix timestamp, or ISO 8601 text.

    Text is read by :func:`parse_timestamp` (without an offset, local time).
    The result is finite and no later than :data:`LATEST`; it may be in the
    past.

    Raises:
        ConfigurationError: a naive datetime, ``bool``, a number that is not
            finite or is past year 9999, text that is not a timestamp, or
            another type.
    """
    if isinstance(value, str):
        return parse_timestamp(value, name).timestamp()
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _error(
                f"{name}={value!r} has no time zone; pass an aware datetime "
                "(datetime(..., tzinfo=datetime.timezone.utc), or .astimezone() for local "
                "time) or a Unix timestamp",
                name,
                value,
            )
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if math.isfinite(seconds) and seconds <= LATEST:
            return seconds
        raise _error(
            f"{name}={value!r} is not a Unix timestamp durable can store; give a finite "
            "one no later than the year 9999, or an aware datetime",
            name,
            value,
        )
    raise _error(f"{name} takes an aware datetime or a Unix timestamp, not {value!r}", name, value)


def deadline_after(now: float, seconds: float, name: str, *, given: object = None) -> float:
    """The deadline ``seconds`` (a checked duration) after ``now``, within :data:`LATEST`.

    ``given``: the duration as the user gave it, for the error message.
    """
    return timer_deadline(now + seconds, now, name, given=seconds if given is None else given)


def timer_deadline(deadline: float, now: float, name: str, *, given: object = None) -> float:
    """Check a timer's deadline: at most 100 years after ``now`` and no later than :data:`LATEST`.

    Raises:
        ConfigurationError: the deadline is further ahead than that.
    """
    if deadline - now <= MAX_SECONDS and deadline <= LATEST:
        return deadline
    value = deadline if given is None else given
    raise _error(
        f"{name}={value!r} sets a deadline more than 100 years ahead (or past the year "
        "9999), longer than durable waits; choose an earlier one",
        name,
        value,
    )


def replayed_deadline(recorded: float) -> float:
    """A deadline read back from the store, made one the runtime can wait for and show.

    Versions before this check recorded any deadline they were given: ``nan``
    (a wait that such a version ended at once, so its replay does too) and
    ``inf`` or numbers past the year 9999 (brought back to :data:`LATEST`).
    """
    if math.isnan(recorded):
        return -math.inf
    return min(recorded, LATEST)


def is_beyond_reach(recorded: float) -> bool:
    """Whether a recorded deadline is past :data:`LATEST`, too far ahead to wait for."""
    return recorded > LATEST


def format_utc(ts: float) -> str:
    """``YYYY-MM-DD HH:MM:SS UTC`` of a Unix time, even one a datetime cannot hold."""
    moment_ = to_datetime(ts, dt.timezone.utc)
    return f"{moment_:%Y-%m-%d %H:%M:%S} UTC" if moment_ is not None else f"{ts!r} (Unix time)"


def to_datetime(ts: float, tz: dt.tzinfo | None = None) -> dt.datetime | None:
    """The datetime of a Unix time (local time when ``tz`` is None), or None if it has none."""
    try:
        return dt.datetime.fromtimestamp(ts, tz)
    except (OverflowError, OSError, ValueError):
        return None


# ISO 8601 as people write it: a date, optionally a time (minutes, seconds,
# fractions) and an offset (Z, +02, +0200, +02:00). Read by hand so that every
# supported Python accepts the same texts (3.10's fromisoformat has no "Z").
# Compiled by re (and kept in its cache) when first used, not at import.
_TIMESTAMP = r"""
    (?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})
    (?:
        [T\x20]
        (?P<hour>\d{2}):(?P<minute>\d{2})
        (?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?
        \s*(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?
    )?
    """
_TIMESTAMP_FLAGS = re.VERBOSE | re.IGNORECASE


def parse_timestamp(text: str, name: str = "timestamp") -> dt.datetime:
    """Read an ISO 8601 point in time; an aware datetime (local time without an offset).

    Accepts ``2025-06-01``, ``2025-06-01T09:30``, ``2025-06-01 09:30:00.5``,
    and an offset ``Z``, ``+02``, ``+0200`` or ``+02:00``, on every supported
    Python version.

    Raises:
        ConfigurationError: (also a ``ValueError``) ``text`` is not such a
            timestamp, or names a day or time that does not exist.
    """
    found = None
    if isinstance(text, str):
        found = re.fullmatch(_TIMESTAMP, text.strip(), _TIMESTAMP_FLAGS)
    if found is None:
        raise _error(
            f"{name}={text!r} is not a timestamp; write ISO 8601 such as 2025-06-01, "
            "2025-06-01T09:30, 2025-06-01T09:30:00Z or 2025-06-01T09:30+02:00",
            name,
            text,
        )
    part = found.groupdict()
    tz: dt.tzinfo | None = None
    offset = (part["offset"] or "").upper()
    if offset == "Z":
        tz = dt.timezone.utc
    elif offset:
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours >= 24 or minutes >= 60:
            raise _error(f"{name}={text!r} has an offset that does not exist", name, text)
        sign = -1 if offset[0] == "-" else 1
        tz = dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    try:
        moment_ = dt.datetime(
            int(part["year"]),
            int(part["month"]),
            int(part["day"]),
            int(part["hour"] or 0),
            int(part["minute"] or 0),
            int(part["second"] or 0),
            int((part["fraction"] or "0").ljust(6, "0")[:6]),
            tzinfo=tz,
        )
    except ValueError:
        raise _error(
            f"{name}={text!r} names a date, time or offset that does not exist", name, text
        ) from None
    return moment_ if moment_.tzinfo is not None else moment_.astimezone()


def _error(message: str, name: str, value: object) -> ConfigurationError:
    # Errors are pickled with the workflow's outcome: keep only plain values.
    plain = value if isinstance(value, (int, float, str, dt.timedelta, dt.date)) else repr(value)
    return ConfigurationError(message, parameter=name, value=plain)


_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
    "w": 7 * 86400,
    "week": 7 * 86400,
}
_DURATION_PART = r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*"  # compiled when first used


def parse_duration(text: str) -> dt.timedelta:
    """Read a duration: ``30d``, ``12h``, ``15m``, ``90s``, ``2w``, ``1d12h``, ``30 days``.

    Units: s, m (minutes), h, d, w, also spelled out (``sec``, ``min``,
    ``hours``, ``days``, ``weeks``).

    Raises:
        ValueError: saying what is expected, when ``text`` is not one (a
            ConfigurationError when it is longer than 100 years).
    """
    compact = text.lower()
    seconds, end = 0.0, 0
    for match in re.finditer(_DURATION_PART, compact):
        unit = match[2]
        # Plurals of the spelled-out units only: "days", not "ds".
        plural = len(unit) > 2 and unit.endswith("s")
        factor = _UNITS.get(unit) or (_UNITS.get(unit[:-1]) if plural else None)
        if match.start() != end or factor is None:
            break
        seconds += float(match[1]) * factor
        end = match.end()
    if end and end == len(compact):
        try:
            return dt.timedelta(seconds=duration(seconds, "duration"))
        except ConfigurationError:
            raise ConfigurationError(
                f"{text!r} is longer than 100 years, the longest duration durable takes",
                parameter="duration",
                value=text,
            ) from None
    raise ValueError(
        f"{text!r} is not a duration; write a number and a unit (s, m, h, d or w), "
        "like 30d, 12h, 15m, 90s, 2w, or combined like 1d12h"
    )
