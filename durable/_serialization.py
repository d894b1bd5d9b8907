"""Payloads: cloudpickle behind a small header, optionally compressed and signed.

Every stored value (step outcome, workflow arguments, result, error) is::

    [format version: 1 byte][flags: 1 byte]([key id: 4 bytes][HMAC-SHA256: 32 bytes])[body]

The flags say whether the body is zlib- or zstd-compressed and whether the
payload is signed. A signature covers the header, the body, the payload's
*place* (its workflow id and slot) and the columns of its row that decide
what runs (a step record's kind, name, status, attempt and code fingerprint;
a workflow's name and arguments fingerprint), so a row copied into another
workflow or position, or whose status or name was edited, fails verification
as surely as an edited payload. With a secret key configured, an unsigned,
tampered or misplaced payload raises PayloadIntegrityError and is never
unpickled.

Formats: 3 is a signed payload whose signature covers the columns too; an
unsigned payload is still written as format 2 (the same bytes as before).
Signed payloads of format 2 (written by releases that signed no columns) are
still read, their signature covering the payload and its place only. Payloads of
format 1 (no flags) are still read when no key is configured.
"""

from __future__ import annotations

import io
import os
import pickle
import traceback
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from durable import _registry
from durable._digests import sha256
from durable._errors import (
    ConfigurationError,
    PayloadIntegrityError,
    PayloadTooLargeError,
    RecordedError,
    SerializationError,
)
from durable._records import Parts, joined

_V1, _V2, _V3 = 1, 2, 3
_ZLIB, _ZSTD, _SIGNED = 0x01, 0x02, 0x04
_PLAIN_HEADER = bytes((_V2, 0))
_MAC_LEN, _KEY_ID_LEN = 32, 4
_SAMPLE = 4 * 1024

SECRET_KEY_ENV = "DURABLE_SECRET_KEY"
MIN_SECRET_KEY_BYTES = 16
"""The shortest signing key accepted: 128 bits, the strength HMAC-SHA256 is
trusted for (NIST SP 800-107). A shorter key (a word, a PIN) can be guessed
offline from one stored payload, and then payloads can be forged."""
OLD_SECRET_KEYS_ENV = "DURABLE_OLD_SECRET_KEYS"
DEFAULT_COMPRESS_THRESHOLD = 64 * 1024
_LARGE_BYTES = 64 * 1024
"""A bytes result this large is pickled by hand (``Codec.dumps``)."""
_BINBYTES_HEAD = pickle.PROTO + bytes((5,)) + pickle.BINBYTES
_BINBYTES_TAIL = pickle.MEMOIZE + pickle.STOP
DEFAULT_MAX_PAYLOAD_BYTES = 512 * 1024 * 1024
PARTS_BYTES = 64 * 1024
"""A sealed step result this large is handed to the store in :class:`Parts`
(below it, one buffer: joining is cheap, and the row holds it anyway)."""


# Pickled alike by pickle and cloudpickle, whose pickler costs more to set up
# than pickling one of these.
_PLAIN = frozenset({int, float, str, bytes, bool, type(None)})


Stored: TypeAlias = "bytes | Parts | memoryview"
"""A sealed payload as read back: its bytes, the parts it was written in, or a view of them."""


def _whole(payload: Stored) -> bytes | memoryview:
    """A payload as one buffer: a view stays a view (a mapped file is not read into a copy)."""
    return bytes(payload) if isinstance(payload, Parts) else payload


def dumps(value: Any, *, by_value: bool = True) -> bytes:
    """Pickle as cloudpickle would, naming a script's classes and functions.

    A value made only of ``None``, bools, ints, floats, str, bytes,
    bytearrays and lists, tuples, dicts, sets and frozensets of them is
    pickled by pickle's own pickler: cloudpickle's writes the very same bytes
    for it (its hooks are not called for these types), costs more to set up,
    and is 1.9 MiB of a process's memory once imported. Anything else is
    pickled by ``durable._cloud`` (see ``_Pickler`` there), which imports
    cloudpickle. ``by_value=False`` leaves out the copy of a script's classes
    and functions by value: for a fingerprint, which must be the same in every
    process.
    """
    buffer = io.BytesIO()
    if _dump_plain(value, buffer):
        return buffer.getvalue()
    buffer = io.BytesIO()
    _dump_cloud(value, buffer, by_value)
    return buffer.getvalue()


def _dump_plain(value: Any, file: io.BytesIO | _PartsWriter) -> bool:
    """Pickle ``value`` into ``file`` by pickle's own pickler; False if it is not plain data."""
    try:
        _PlainPickler(file, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    except (_NotPlain, RecursionError):  # cloudpickle's, for its own error if any
        return False
    return True


def _dump_cloud(value: Any, file: io.BytesIO | _PartsWriter, by_value: bool) -> None:
    from durable import _cloud

    _cloud.dump(value, file, by_value=by_value, live=_live)


class _NotPlain(Exception):
    """A value holds an object that cloudpickle may pickle otherwise than pickle."""


class _PlainPickler(pickle.Pickler):
    """pickle's pickler, for values that pickle and cloudpickle write alike.

    pickle's C pickler writes ``None``, bools, ints, floats, str, bytes,
    bytearrays, lists, tuples, dicts, sets and frozensets (exact types) by
    itself and asks ``reducer_override`` about every other object: cloudpickle
    does its own work there, so this pickler gives up on the first one.
    """

    def reducer_override(self, obj: Any) -> Any:
        raise _NotPlain


def _live(module: str, qualname: str, copy: bytes | None, where: str | None = None) -> Any:
    """Unpickle a script's class or function: the live one of the same script, else its copy.

    Another script that reads the record (a report, a notebook) may define a
    class of the same name; it is not the recorded one.
    """
    found, here = _registry.find_in_file(module, qualname)
    if found is not None and _registry.same_file(where, here):
        return found
    if copy is None:
        raise SerializationError(
            f"{module}.{qualname} is not defined in this process; run the script or "
            "notebook that defines it (it could not be recorded by value)",
            what=f"{module}.{qualname}",
            type_name=f"{module}.{qualname}",
        )
    return pickle.loads(copy)


def plain(values: Iterable[Any]) -> bool:
    """Whether each value pickles alike by pickle and cloudpickle (so by the cheaper one)."""
    return all(type(value) in _PLAIN for value in values)


def pickle_value(value: Any, *, what: str) -> bytes:
    """Pickle ``value``; ``what`` names it in the error ("result of step 'fetch'")."""
    if type(value) in _PLAIN:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        data = dumps(value)
    except Exception as exc:
        raise _unpicklable(value, what, exc) from exc
    return data


class _PartsWriter:
    """A file for the pickler that keeps what it is given, in order, without copying.

    The pickler writes its frames (64 KiB each, fresh bytes of its own) and,
    past them, a large bytes or str value's own buffer: kept as they are,
    they are the pickle in parts. Anything else it writes (a view of a
    bytearray's or an array's memory) is copied at once, as a file would:
    that memory may change after the call.
    """

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes | memoryview | pickle.PickleBuffer) -> int:
        part = data if type(data) is bytes else bytes(data)  # a PickleBuffer has no len()
        self.parts.append(part)
        return len(part)


def pickle_parts(value: Any, *, what: str) -> Sequence[bytes]:
    """:func:`pickle_value`, as the pieces the pickler wrote (joined: the same bytes).

    Pickling into one buffer copies each large buffer of the value into it;
    the pieces leave them where they are, for the store to write out.
    """
    if type(value) in _PLAIN:
        return (pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL),)
    writer = _PartsWriter()
    try:
        if not _dump_plain(value, writer):
            writer = _PartsWriter()
            _dump_cloud(value, writer, by_value=True)
    except Exception as exc:
        raise _unpicklable(value, what, exc) from exc
    return writer.parts


def _unpicklable(value: Any, what: str, exc: Exception) -> SerializationError:
    return SerializationError(
        f"cannot pickle the {what}: a value of type {_type_name(value)} "
        f"is not picklable by cloudpickle ({type(exc).__name__}: {exc}). "
        "Return plain data (or make the type picklable) from durable code.",
        what=what,
        type_name=_type_name(value),
    )


def pickle_error(exc: BaseException) -> bytes:
    """Pickle an exception, or a readable stand-in when it cannot round-trip.

    The round trip is checked here because many exception classes pickle fine
    but fail to unpickle (a custom ``__init__`` with other arguments), and that
    must be found when it is recorded, not on some later replay.
    """
    try:
        data = dumps(exc)
        pickle.loads(data)
        return data
    except Exception:
        info = _ErrorInfo(
            type_name=_type_name(exc),
            message=str(exc),
            traceback_text="".join(traceback.format_exception(exc)),
        )
        from durable import _cloud

        return _cloud.plain_dumps(info)


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


def place(workflow_id: str, slot: str) -> bytes:
    """Where a payload lives: part of what its signature covers."""
    return f"{workflow_id}\x00{slot}".encode("utf-8", "surrogatepass")


def columns(*values: str | int | None) -> bytes:
    """A row's columns, encoded for a signature: each one length-prefixed.

    The prefixes make the encoding unambiguous whatever the values hold (no
    separator a name could contain); one f-string and one encode keep it
    well under a microsecond on the per-step path.
    """
    text = "".join(f"{len(v)}:{v}" for v in ("" if x is None else str(x) for x in values))
    return text.encode("utf-8", "surrogatepass")


def step_columns(kind: str, name: str, status: str, attempt: int, code_hash: str | None) -> bytes:
    """The columns of a step record its signature covers (its place covers the rest).

    Each decides what runs: the status whether a new attempt runs the step
    again, kind and name whether the record is replayed for the call at its
    position, the code fingerprint whether changed code runs it again. The
    same encoding as :func:`columns`, written out: this runs for every step.
    """
    tries, code = str(attempt), code_hash or ""
    return (
        f"{len(kind)}:{kind}{len(name)}:{name}{len(status)}:{status}"
        f"{len(tries)}:{tries}{len(code)}:{code}"
    ).encode("utf-8", "surrogatepass")


def call_columns(name: str, args_fingerprint: str) -> bytes:
    """The columns of a workflow its arguments' signature covers: which function they call."""
    return columns(name, args_fingerprint)


def step_slot(position: int) -> str:
    return f"step:{position}"


def event_slot(key: str) -> str:
    return f"event:{key}"


def stream_slot(key: str) -> str:
    return f"stream:{key}"


def check_bytes(name: str, number: object) -> None:
    """Refuse a size setting that is not a whole number of bytes >= 1, or None."""
    if number is not None and (
        isinstance(number, bool) or not isinstance(number, int) or number < 1
    ):
        raise ConfigurationError(
            f"{name} must be a whole number of bytes >= 1 (or None), not {number!r}"
        )


class Codec:
    """Seals pickled bodies into stored payloads and opens them again.

    Args:
        secret_key: Sign every payload with HMAC-SHA256 under this key, and
            refuse unsigned or badly signed ones. Defaults to
            ``$DURABLE_SECRET_KEY``. At least :data:`MIN_SECRET_KEY_BYTES`
            bytes (UTF-8 for a str); an empty or shorter one, given or from
            the environment, is a ConfigurationError, never "no signing".
        old_secret_keys: Keys still accepted for reading (key rotation).
            Defaults to ``$DURABLE_OLD_SECRET_KEYS`` (comma-separated).
        compress_threshold: Bodies at least this large are compressed, when a
            sample shows they compress (random or already compressed data is
            stored as is). ``None`` turns compression off.
        max_payload_bytes: The largest payload stored; larger ones raise
            PayloadTooLargeError before anything is written.
    """

    def __init__(
        self,
        *,
        secret_key: str | bytes | None = None,
        old_secret_keys: Sequence[str | bytes] | None = None,
        compress_threshold: int | None = DEFAULT_COMPRESS_THRESHOLD,
        max_payload_bytes: int | None = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        from_env = secret_key is None
        if from_env:
            secret_key = os.environ.get(SECRET_KEY_ENV)
        if old_secret_keys is None:
            env = os.environ.get(OLD_SECRET_KEYS_ENV, "")
            old_secret_keys = [k for k in env.split(",") if k]
        check_bytes("compress_threshold", compress_threshold)
        check_bytes("max_payload_bytes", max_payload_bytes)
        self._key = None if secret_key is None else _signing_key(secret_key, from_env)
        self._keys = {_key_id(k): k for k in map(_as_key, old_secret_keys)}
        if self._key is not None:
            self._keys[_key_id(self._key)] = self._key
        self.compress_threshold = compress_threshold
        self.max_payload_bytes = max_payload_bytes
        self._zstd = _zstd()

    @property
    def signing(self) -> bool:
        """Whether payloads are signed (a secret key is configured)."""
        return self._key is not None

    def seal(self, body: bytes, where: bytes, *, what: str, bound: bytes = b"") -> bytes:
        """The stored form of a pickled body at ``where``, signed with ``bound``.

        ``bound`` is :func:`columns` of the row the payload is stored in: the
        signature then covers them, so editing one of them is detected.
        """
        return joined(self._seal((body,), where, what=what, bound=bound))

    def _seal(
        self, parts: Sequence[bytes], where: bytes, *, what: str, bound: bytes = b""
    ) -> bytes | Parts:
        """The stored form of the pickled body made of ``parts``.

        One buffer when small; from ``PARTS_BYTES`` on, the header and the
        parts, not joined (see :class:`Parts`): the bytes are the same.
        """
        if self._key is None and len(parts) == 1:
            # The common case (a small result, no key): its header and itself.
            body, limit = parts[0], self.max_payload_bytes
            small = self.compress_threshold is None or len(body) < self.compress_threshold
            if small and (limit is None or len(body) + 2 <= limit) and len(body) < PARTS_BYTES:
                return _PLAIN_HEADER + body
        flags = 0
        if self.compress_threshold is not None and sum(map(len, parts)) >= self.compress_threshold:
            parts, flags = self._compress(parts)
        if self._key is not None:
            flags |= _SIGNED
            header = bytes((_V3, flags))
            mac = _hmac(self._key, _signed_place(where, bound) + header)
            for part in parts:
                mac.update(part)
            pieces: tuple[bytes, ...] = (header + _key_id(self._key) + mac.digest(), *parts)
        else:
            pieces = (bytes((_V2, flags)), *parts)
        size = sum(map(len, pieces))
        if self.max_payload_bytes is not None and size > self.max_payload_bytes:
            raise PayloadTooLargeError(
                f"the {what} is {size:,} bytes once serialised, over the limit of "
                f"{self.max_payload_bytes:,} bytes (max_payload_bytes); store large data "
                "elsewhere and return a reference to it, or raise the limit",
                what=what,
                size=size,
                limit=self.max_payload_bytes,
            )
        if size >= PARTS_BYTES:
            return Parts(pieces)
        return b"".join(pieces)

    def open(self, payload: Stored, where: bytes, *, what: str, bound: bytes = b"") -> bytes:
        """The pickled body of a stored payload, verified; never unpickles it."""
        return bytes(self._open(_whole(payload), where, what=what, bound=bound))

    def _open(
        self, payload: bytes | memoryview, where: bytes, *, what: str, bound: bytes
    ) -> bytes | memoryview:
        """:meth:`open`, the body as a view of ``payload`` when it is stored as is.

        A slice of a 16 MiB payload would copy it; unpickling reads the view.
        """
        if len(payload) < 2 or payload[0] not in (_V1, _V2, _V3):
            raise self._refuse(what, f"an unknown header {bytes(payload[:2])!r}")
        version, flags = payload[0], payload[1]
        if version == _V1:
            if flags or self._key is not None:
                raise self._refuse(what, "no signature (it predates signing)")
            return memoryview(payload)[2:]
        body_at = 2
        if flags & _SIGNED:
            body_at = 2 + _KEY_ID_LEN + _MAC_LEN
            key = self._keys.get(bytes(payload[2 : 2 + _KEY_ID_LEN]))
            if key is None:
                raise self._refuse(
                    what,
                    "a signature by a key that is not configured (set DURABLE_SECRET_KEY, "
                    "or list the old key in DURABLE_OLD_SECRET_KEYS)",
                )
            mac = bytes(payload[2 + _KEY_ID_LEN : body_at])
            # Format 2 signed the place alone: its rows are read as before.
            signed = where if version == _V2 else _signed_place(where, bound)
            expected = _hmac(key, signed + bytes(payload[:2]))
            expected.update(memoryview(payload)[body_at:])
            if not _same_digest(mac, expected.digest()):
                raise self._refuse(
                    what,
                    "a signature that does not match (tampered with, moved from "
                    "another workflow or position, or its row's status, kind or name "
                    "edited)",
                )
        elif self._key is not None:
            raise self._refuse(what, "no signature, and a secret key is configured")
        body = memoryview(payload)[body_at:]
        if flags & _ZSTD:
            if self._zstd is None:
                raise ConfigurationError(
                    f"the stored {what} is zstd-compressed; install zstandard to read it: "
                    'pip install "durable-sdk[zstd]"'
                )
            return bytes(self._zstd.ZstdDecompressor().decompress(body))
        if flags & _ZLIB:
            return zlib.decompress(body)
        return body

    def dumps(self, value: Any, where: bytes, *, what: str, bound: bytes = b"") -> bytes:
        """Pickle and seal a value."""
        return joined(self.dumps_parts(value, where, what=what, bound=bound))

    def dumps_parts(
        self, value: Any, where: bytes, *, what: str, bound: bytes = b""
    ) -> bytes | Parts:
        """Pickle and seal a value; a large one in :class:`Parts`, never joined.

        The bytes are those :meth:`dumps` gives. Neither the pickle nor the
        sealing copies a large result: the pickle's frames are written to a
        list (``pickle_parts``), the value's own buffers among them, and the
        header goes before them.
        """
        if type(value) is bytes and _LARGE_BYTES <= len(value) < 1 << 32:
            # A file, an image, a buffer: its pickle is a few opcodes around it
            # (the very bytes pickle.dumps gives), without pickling anything.
            head = _BINBYTES_HEAD + len(value).to_bytes(4, "little")
            return self._seal((head, value, _BINBYTES_TAIL), where, what=what, bound=bound)
        return self._seal(pickle_parts(value, what=what), where, what=what, bound=bound)

    def loads(self, payload: Stored, where: bytes, *, what: str, bound: bytes = b"") -> Any:
        """Open and unpickle a payload."""
        return pickle.loads(self._open(_whole(payload), where, what=what, bound=bound))

    def dumps_error(
        self, exc: BaseException, where: bytes, *, what: str, bound: bytes = b""
    ) -> bytes:
        """Pickle (see :func:`pickle_error`) and seal an exception."""
        return self.seal(pickle_error(exc), where, what=what, bound=bound)

    def loads_error(
        self, payload: Stored, where: bytes, *, what: str, bound: bytes = b""
    ) -> BaseException:
        """The exception recorded by :meth:`dumps_error`, ready to raise."""
        body = self._open(_whole(payload), where, what=what, bound=bound)
        try:
            value = pickle.loads(body)
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
            raise self._refuse(what, "a value that is not an exception")
        return value

    def _compress(self, parts: Sequence[bytes]) -> tuple[Sequence[bytes], int]:
        first = parts[0]
        sample = first[:_SAMPLE]
        if len(sample) < _SAMPLE and len(parts) > 1:  # a header: sample what follows it
            sample += parts[1][: _SAMPLE - len(sample)]
        # Random or already compressed data: not worth the CPU.
        if len(zlib.compress(sample, 1)) > 0.9 * len(sample):
            return parts, 0
        body = b"".join(parts)
        if self._zstd is not None:
            return (self._zstd.ZstdCompressor(level=3).compress(body),), _ZSTD
        return (zlib.compress(body, 3),), _ZLIB

    @staticmethod
    def _refuse(what: str, why: str) -> PayloadIntegrityError:
        return PayloadIntegrityError(
            f"the stored {what} was refused: it has {why}. It was not unpickled.",
            what=what,
        )


def _signed_place(where: bytes, bound: bytes) -> bytes:
    """What a format-3 signature covers besides the payload: place and columns, framed."""
    return len(where).to_bytes(4, "big") + where + len(bound).to_bytes(4, "big") + bound


def _signing_key(key: object, from_env: bool) -> bytes:
    """The key to sign with; ConfigurationError for one that would sign nothing safely.

    An empty key used to turn signing off without a word, so a store the user
    believed protected unpickled whatever was written into it.
    """
    source = f"${SECRET_KEY_ENV}" if from_env else "secret_key"
    if not isinstance(key, (str, bytes, bytearray)):
        raise ConfigurationError(f"{source} must be a str or bytes, not {type(key).__name__}")
    data = key.encode() if isinstance(key, str) else bytes(key)
    if len(data) < MIN_SECRET_KEY_BYTES:
        unset = f"unset {SECRET_KEY_ENV}" if from_env else "pass secret_key=None"
        raise ConfigurationError(
            f"{source} is {'empty' if not data else f'{len(data)} bytes long'}: a signing key "
            f"must be at least {MIN_SECRET_KEY_BYTES} bytes (128 bits), or a forged payload "
            "could be signed by guessing it. Use a long random secret, e.g. the output of "
            '`python -c "import secrets; print(secrets.token_hex(32))"`, or '
            f"{unset} to store payloads unsigned."
        )
    return data


def _as_key(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else bytes(key)


def _key_id(key: bytes) -> bytes:
    return sha256(b"durable-key-id:" + key).digest()[:_KEY_ID_LEN]


def _hmac(key: bytes, data: bytes) -> Any:
    # hmac loads OpenSSL's libcrypto (3.6 MiB): only a store with a key signs.
    import hashlib
    import hmac

    return hmac.new(key, data, hashlib.sha256)


def _same_digest(a: bytes, b: bytes) -> bool:
    import hmac

    return hmac.compare_digest(a, b)


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard


def _type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"
