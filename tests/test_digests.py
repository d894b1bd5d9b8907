"""durable's SHA-256: the digests of hashlib's, without loading OpenSSL for short inputs."""

from __future__ import annotations

import hashlib
import random

from durable._digests import SWITCH_BYTES, sha256


def test_digests_are_hashlibs_short_long_and_across_the_switch() -> None:
    rng = random.Random(256)
    sizes = [0, 1, 55, 64, 1000, SWITCH_BYTES - 1, SWITCH_BYTES, 3 * SWITCH_BYTES]
    for first in sizes:
        for then in (0, 1, SWITCH_BYTES // 2, SWITCH_BYTES):
            head, tail = rng.randbytes(first), rng.randbytes(then)
            ours, theirs = sha256(head), hashlib.sha256(head)
            for piece in (tail[: then // 3], tail[then // 3 :]):
                ours.update(piece)
                theirs.update(piece)
            assert (ours.digest(), ours.hexdigest()) == (theirs.digest(), theirs.hexdigest())


def test_a_copy_goes_on_apart_from_its_original() -> None:
    original = sha256(b"shared prefix")
    twin = original.copy()
    original.update(b"a")
    twin.update(b"b" * SWITCH_BYTES)  # the twin moves to OpenSSL's digest, the original not
    assert original.hexdigest() == hashlib.sha256(b"shared prefixa").hexdigest()
    assert twin.hexdigest() == hashlib.sha256(b"shared prefix" + b"b" * SWITCH_BYTES).hexdigest()
