"""Payload encoding: cloudpickle behind a two-byte header.

The header (format version, codec) lets later versions add compression and
signing without ever guessing what an old row holds.
"""

from __future__ import annotations

import pickle
import traceback
from dataclasses import dataclass
from typing import Any

import cloudpickle

from durable._errors import PayloadIntegrityError, RecordedError, SerializationError

_FORMAT_VERSION = 1
_CODEC_CLOUDPICKLE = 0
_HEADER = bytes((_FORMAT_VERSION, _CODEC_CLOUDPICKLE))


def dumps(value: Any, *, what: str) -> bytes:
    """Pickle ``value``; ``what`` names it in the error ("result of step 'fetch'")."""
    try:
        data: bytes = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return _HEADER + data
    except Exception as exc:
        raise SerializationError(
            f"cannot pickle the {what}: a value of type {_type_name(value)} "
            f"is not picklable by cloudpickle ({type(exc).__name__}: {exc}). "
            "Return plain data (or make the type picklable) from durable code.",
            what=what,
            type_name=_type_name(value),
        ) from exc


def loads(payload: bytes, *, what: str) -> Any:
    """Unpickle a payload written by :func:`dumps`, refusing unknown formats."""
    if len(payload) < 2 or payload[0] != _FORMAT_VERSION or payload[1] != _CODEC_CLOUDPICKLE:
        raise PayloadIntegrityError(
            f"the stored {what} has an unknown payload header {payload[:2]!r}; "
            "it was written by another (newer?) durable-sdk or is damaged, so it "
            "is not unpickled",
            what=what,
        )
    return pickle.loads(memoryview(payload)[2:])


@dataclass(frozen=True)
class _ErrorInfo:
    """What is kept of an exception that does not survive a pickle round trip."""

    type_name: str
    message: str
    traceback_text: str

    def to_exception(self) -> RecordedError:
        return RecordedError(
            f"{self.type_name}: {self.message} (the original exception could not be "
            "pickled, so durable re-raises this stand-in; the recorded traceback "
            f"follows)\n{self.traceback_text}",
            type_name=self.type_name,
            error_message=self.message,
            traceback_text=self.traceback_text,
        )


def dumps_error(exc: BaseException) -> bytes:
    """Pickle an exception, or a readable stand-in when it cannot round-trip.

    The round trip is checked here because many exception classes pickle fine
    but fail to unpickle (a custom ``__init__`` with other arguments), and that
    must be found when it is recorded, not on some later replay.
    """
    try:
        payload: bytes = _HEADER + cloudpickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(memoryview(payload)[2:])
        return payload
    except Exception:
        info = _ErrorInfo(
            type_name=_type_name(exc),
            message=str(exc),
            traceback_text="".join(traceback.format_exception(exc)),
        )
        data: bytes = cloudpickle.dumps(info, protocol=pickle.HIGHEST_PROTOCOL)
        return _HEADER + data


def loads_error(payload: bytes, *, what: str) -> BaseException:
    """The exception recorded by :func:`dumps_error`, ready to raise."""
    try:
        value = loads(payload, what=what)
    except PayloadIntegrityError:
        raise
    except Exception as exc:
        return RecordedError(
            f"the recorded {what} can no longer be unpickled "
            f"({type(exc).__name__}: {exc}); was its class renamed or removed?",
            type_name="<unknown>",
            error_message=str(exc),
            traceback_text="",
        )
    if isinstance(value, _ErrorInfo):
        return value.to_exception()
    if not isinstance(value, BaseException):
        raise PayloadIntegrityError(f"the recorded {what} is not an exception", what=what)
    return value


def _type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"
