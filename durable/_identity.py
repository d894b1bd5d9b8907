"""Workflow ids: validation, and derivation from a name and its arguments.

A derived id must be the same in every process that makes the same call, so
the fingerprint is computed from a canonical encoding of the arguments rather
than from their pickle (which depends on set order and hash randomisation).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from durable._digests import sha256
from durable._errors import InvalidWorkflowIdError
from durable._serialization import dumps
from durable.backends._limits import WORKFLOW_ID_CHARS, check_text

MAX_WORKFLOW_ID_LENGTH = WORKFLOW_ID_CHARS
"""The longest workflow id accepted, in characters."""


def validate_workflow_id(workflow_id: object) -> str:
    """Return ``workflow_id`` if it is usable, else raise InvalidWorkflowIdError.

    Usable: a non-empty str of at most 255 characters that every backend
    stores as it is (no NUL character, no unpaired surrogate).
    """
    return check_text(
        workflow_id, "workflow id", MAX_WORKFLOW_ID_LENGTH, error=InvalidWorkflowIdError
    )


def fingerprint(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """A stable hex digest of a call's (already bound) arguments."""
    if args:
        digest = sha256()
        _feed(digest, ("args", args, "kwargs", dict(kwargs)))
    else:
        # A bound call (every call made in code): the encoding of all but
        # its mapping of arguments is always the same, so it is hashed once.
        digest = _NO_ARGS.copy()
        _feed_mapping(digest, dict(kwargs))
    return digest.hexdigest()


def derive_workflow_id(name: str, args_fingerprint: str) -> str:
    """The id of a call that was given none: its name and argument fingerprint.

    A name too long for that to fit an id (names may be longer than ids) is
    cut and completed by a digest of the whole name, so the id stays unique
    and stable; ids that fit are as they always were.
    """
    derived = f"{name}:{args_fingerprint[:20]}"
    if len(derived) > MAX_WORKFLOW_ID_LENGTH:
        digest = sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:40]
        derived = f"{name[:150]}~{digest}:{args_fingerprint[:20]}"
    return derived


def _feed(digest: Any, value: Any) -> None:
    """Write a canonical, type-tagged encoding of ``value`` into ``digest``."""
    tag = _SCALARS.get(type(value))
    if tag is not None:  # the common arguments, tagged as the branches below tag them
        data = value.encode("utf-8", "surrogatepass") if tag == b"s" else repr(value).encode()
        digest.update(tag + len(data).to_bytes(8, "little") + data)
    elif value is None or isinstance(value, (bool, int, float, complex)):
        _chunk(digest, b"n" + type(value).__name__.encode(), repr(value).encode())
    elif isinstance(value, str):
        _chunk(digest, b"s", value.encode("utf-8", "surrogatepass"))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _chunk(digest, b"b", bytes(value))
    elif isinstance(value, enum.Enum):
        _chunk(digest, b"e", _qualname(type(value)).encode())
        _feed(digest, value.value)
    elif isinstance(value, (list, tuple)):
        _chunk(digest, b"l" if isinstance(value, list) else b"t", str(len(value)).encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, Mapping):
        _feed_mapping(digest, value)
    elif isinstance(value, (set, frozenset)):
        members = sorted(_sub_digest(item) for item in value)
        _chunk(digest, b"S", str(len(members)).encode())
        for member in members:
            digest.update(member)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        _chunk(digest, b"d", _qualname(type(value)).encode())
        _feed(digest, {f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    else:
        # Anything else is fingerprinted by its pickle: stable for the plain
        # objects people pass, and at worst a new id (never a wrong replay).
        # A script's classes by name: their copy by value carries a random id.
        _chunk(digest, b"p", dumps(value, by_value=False))


def _feed_mapping(digest: Any, value: Mapping[Any, Any]) -> None:
    items = sorted(((_key_digest(k), v) for k, v in value.items()), key=lambda kv: kv[0])
    _chunk(digest, b"m", str(len(items)).encode())
    for key_digest, item in items:
        digest.update(key_digest)
        _feed(digest, item)


_KEY_DIGESTS: dict[str, bytes] = {}


def _key_digest(key: Any) -> bytes:
    """A mapping key's digest; a str's (a parameter's name, mostly) is kept."""
    if type(key) is not str:
        return _sub_digest(key)
    found = _KEY_DIGESTS.get(key)
    if found is None:
        found = _sub_digest(key)
        if len(_KEY_DIGESTS) < 4096:  # names are few; other str keys may not be
            _KEY_DIGESTS[key] = found
    return found


def _sub_digest(value: Any) -> bytes:
    sub = sha256()
    _feed(sub, value)
    return sub.digest()


_SCALARS: dict[type, bytes] = {
    t: b"n" + t.__name__.encode() for t in (type(None), bool, int, float, complex)
}
_SCALARS[str] = b"s"


def _chunk(digest: Any, tag: bytes, data: bytes) -> None:
    head = tag + len(data).to_bytes(8, "little")
    if len(data) < 4096:  # one call: a digest of the joined bytes is the same digest
        digest.update(head + data)
    else:  # not copied
        digest.update(head)
        digest.update(data)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _empty_args() -> Any:
    digest = sha256()
    _chunk(digest, b"t", b"4")  # ("args", (), "kwargs", {...}) up to its mapping
    _feed(digest, "args")
    _feed(digest, ())
    _feed(digest, "kwargs")
    return digest


_NO_ARGS = _empty_args()
