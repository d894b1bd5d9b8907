"""SHA-256 for fingerprints and ids, without loading OpenSSL for what is small.

``hashlib`` loads OpenSSL's libcrypto as it is imported: 3.6 MiB of a short
sync script's peak memory, for digests of a few hundred bytes (argument
fingerprints, code fingerprints, derived ids). CPython also ships its own
SHA-256 (``_sha256`` up to 3.11, ``_sha2`` since 3.12; the one ``hashlib``
falls back to where OpenSSL lacks it), faster than OpenSSL's on short inputs
and six times slower on long ones. :class:`Sha256` starts with it and moves to
``hashlib``'s once it has been fed :data:`SWITCH_BYTES`, so a large argument
costs what it did. A digest is a digest: both give the same bytes.

Where neither built-in module exists (a build without them), or ``hashlib``
is loaded already, ``hashlib``'s is used from the start.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

SWITCH_BYTES = 64 * 1024
"""Fed this much, a digest moves to OpenSSL's SHA-256 (faster on long inputs)."""


def _builtin() -> Callable[..., Any] | None:
    for name in ("_sha2", "_sha256"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        found: Callable[..., Any] = module.sha256
        return found
    return None


_BUILTIN = _builtin()


def _openssl(data: bytes = b"") -> Any:
    import hashlib  # OpenSSL's libcrypto, loaded when first needed

    return hashlib.sha256(data)


class Sha256:
    """A SHA-256 digest being computed: ``update``, ``copy``, ``digest``, ``hexdigest``.

    Made by :func:`sha256`. ``parts`` holds what the built-in digest was fed,
    to be replayed into OpenSSL's if the input grows long; ``None`` once the
    digest is OpenSSL's.
    """

    __slots__ = ("_fed", "_hash", "_parts")

    def __init__(self, digest: Any, parts: list[bytes] | None, fed: int) -> None:
        self._hash = digest
        self._parts = parts
        self._fed = fed

    def update(self, data: bytes) -> None:
        """Feed ``data`` to the digest."""
        parts = self._parts
        if parts is not None:
            self._fed += len(data)
            if self._fed >= SWITCH_BYTES:
                self._hash = _openssl(b"".join(parts))
                self._parts = None
            else:
                parts.append(data)
        self._hash.update(data)

    def copy(self) -> Sha256:
        """An independent digest of what this one was fed so far."""
        parts = None if self._parts is None else list(self._parts)
        return Sha256(self._hash.copy(), parts, self._fed)

    def digest(self) -> bytes:
        """The 32-byte digest."""
        value: bytes = self._hash.digest()
        return value

    def hexdigest(self) -> str:
        """The digest as 64 hex digits."""
        value: str = self._hash.hexdigest()
        return value


def sha256(data: bytes = b"") -> Sha256:
    """A new SHA-256 digest of ``data`` (more can be fed with ``update``)."""
    if _BUILTIN is None or "hashlib" in sys.modules or len(data) >= SWITCH_BYTES:
        return Sha256(_openssl(data), None, len(data))
    return Sha256(_BUILTIN(data), [data], len(data))
