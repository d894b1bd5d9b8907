"""What cloudpickle must carry, and the clear errors when it cannot."""

from __future__ import annotations

import datetime
import decimal
import json
import random
import threading
from pathlib import Path
from typing import Any

import pytest

import durable
from tests.conftest import run_program

pytestmark = pytest.mark.usefixtures("runtime")


async def test_lambdas_closures_and_local_classes_round_trip(runtime: durable.Runtime) -> None:
    factor = 3

    class Local:
        def __init__(self, v: int) -> None:
            self.v = v

    @durable.step
    async def make() -> tuple[Any, Any, Local]:
        return (lambda x: x + 1), (lambda x: x * factor), Local(7)

    @durable.durable_workflow(name="ser.closures")
    async def wf() -> tuple[Any, Any, Local]:
        return await make()

    await wf()
    inc, times, local = await wf()  # from the store this time
    assert (inc(1), times(2), local.v) == (2, 6, 7)


def test_classes_defined_in_main_round_trip_across_processes(tmp_path: Path, db_url: str) -> None:
    first = run_program("main_classes", DURABLE_URL=db_url)
    second = run_program("main_classes", DURABLE_URL=db_url)
    assert json.loads(first.stdout) == {"point": [1, 2], "doubled": 6, "ran": True}
    assert json.loads(second.stdout) == {"point": [1, 2], "doubled": 6, "ran": False}


async def test_unpicklable_result_raises_serialization_error_naming_step_and_type(
    runtime: durable.Runtime,
) -> None:
    @durable.step
    async def returns_lock() -> Any:
        return threading.Lock()

    @durable.durable_workflow(name="ser.lock")
    async def wf() -> None:
        await returns_lock()

    with pytest.raises(durable.SerializationError) as info:
        await wf()
    message = str(info.value)
    assert "cannot pickle the result of step" in message
    assert "returns_lock" in message
    assert "_thread.lock" in message
    assert isinstance(info.value, TypeError)
    assert runtime.list_steps(wf.id_for()) == []  # nothing half-recorded


async def test_unpicklable_workflow_result_fails_the_workflow(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="ser.wf_result")
    async def wf() -> Any:
        return (n for n in range(3))  # generators do not pickle

    with pytest.raises(durable.SerializationError, match=r"result of workflow 'ser\.wf_result:"):
        await wf()
    info = runtime.get_workflow(wf.id_for())
    assert info is not None
    assert info.status is durable.WorkflowStatus.ERROR


async def test_unpicklable_arguments_are_refused_before_running(runtime: durable.Runtime) -> None:
    ran: list[int] = []

    @durable.durable_workflow(name="ser.args")
    async def wf(lock: Any) -> None:
        ran.append(1)

    with pytest.raises(durable.SerializationError, match=r"arguments of workflow 'ser\.args'"):
        await wf(threading.Lock())
    assert ran == []


class NeedsTwoArgs(Exception):
    """Pickles, but does not unpickle: a classic trap."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")


class HoldsALock(Exception):
    def __init__(self) -> None:
        super().__init__("cannot pickle me")
        self.lock = threading.Lock()


@pytest.mark.parametrize("error_type", [NeedsTwoArgs, HoldsALock])
async def test_unpicklable_errors_are_replayed_as_recorded_error(
    runtime: durable.Runtime, error_type: type[Exception]
) -> None:
    crash = {"armed": True}

    @durable.step
    async def fails() -> None:
        if error_type is NeedsTwoArgs:
            raise NeedsTwoArgs(503, "unavailable")
        raise HoldsALock()

    @durable.step
    async def tail() -> None:
        if crash["armed"]:
            raise KeyboardInterrupt  # a crash after the error was recorded

    @durable.durable_workflow(name=f"ser.err.{error_type.__name__}")
    async def wf() -> str:
        try:
            await fails()
        except Exception as exc:
            caught = exc
        await tail()
        return f"{type(caught).__name__}|{caught}"

    with pytest.raises(KeyboardInterrupt):
        await wf()
    crash["armed"] = False
    outcome = await wf()  # replays the recorded error instead of re-running the step
    kind, _, text = outcome.partition("|")
    assert kind == "RecordedError"
    assert f"test_serialization.{error_type.__name__}:" in text
    assert "could not be pickled" in text
    assert "in fails" in text  # the recorded traceback


async def test_errors_that_pickle_are_replayed_as_themselves(runtime: durable.Runtime) -> None:
    @durable.durable_workflow(name="ser.plain_error")
    async def wf() -> None:
        raise PermissionError(13, "denied")

    for _ in range(2):
        with pytest.raises(PermissionError) as info:
            await wf()
        assert info.value.errno == 13


def test_durable_errors_pickle() -> None:
    import pickle

    error = durable.NonDeterminismError("msg", workflow_id="w", position=3, expected="a", found="b")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is durable.NonDeterminismError
    assert (str(copy), copy.position, copy.expected, copy.found) == ("msg", 3, "a", "b")


@pytest.mark.parametrize("secret_key", [None, "k" * 32])
@pytest.mark.parametrize("compress_threshold", [None, 64 * 1024])
def test_large_bytes_are_stored_as_the_general_path_would_store_them(
    secret_key: str | None, compress_threshold: int | None
) -> None:
    """Large bytes take a shortcut past pickle.dumps: the stored bytes must not change."""
    import os
    import pickle

    from durable._serialization import Codec

    codec = Codec(secret_key=secret_key, compress_threshold=compress_threshold)
    where = b"wf\x00step:1"
    for value in (os.urandom(70_000), b"compressible" * 20_000, os.urandom(1 << 20)):
        stored = codec.dumps(value, where, what="result")
        assert stored == codec.seal(pickle.dumps(value, protocol=5), where, what="result")
        assert codec.loads(stored, where, what="result") == value


def test_plain_values_pickle_as_cloudpickle_would() -> None:
    import pickle

    import cloudpickle

    from durable._serialization import pickle_value

    for value in (0, -1, 2**80, 1.5, float("nan"), -0.0, "", "é" * 10, b"x", True, None):
        assert pickle_value(value, what="v") == cloudpickle.dumps(value, protocol=5)
        assert pickle.loads(pickle_value(value, what="v")) == value or value != value


@pytest.mark.parametrize("secret_key", [None, "k" * 32])
def test_a_large_result_is_sealed_in_parts_of_its_own_buffers(secret_key: str | None) -> None:
    """The stored bytes are those of one buffer; the result's buffer is not copied into it.

    A 16 MiB step spent a third of its time copying header and pickle into one
    buffer that the store then wrote to a file: the parts are written instead.
    """
    import os
    import pickle

    from durable._serialization import PARTS_BYTES, Codec
    from durable.backends import Parts

    codec = Codec(secret_key=secret_key, compress_threshold=None)  # text would compress
    where = b"wf\x00step:1"
    blob, text = os.urandom(1 << 20), "é" * (1 << 19)
    for value, own in ((blob, blob), ([blob, 1, "x"], blob), ({"k": blob}, blob), (text, None)):
        stored = codec.dumps_parts(value, where, what="result")
        assert isinstance(stored, Parts)
        assert bytes(stored) == codec.dumps(value, where, what="result")
        assert bytes(stored) == codec.seal(pickle.dumps(value, protocol=5), where, what="result")
        if own is not None:  # the value's own buffer, not a copy of it
            assert any(piece is own for piece in stored.pieces)
        assert codec.loads(stored, where, what="result") == value
        assert codec.loads(bytes(stored), where, what="result") == value
    small = codec.dumps_parts(b"x" * (PARTS_BYTES // 2), where, what="result")
    assert type(small) is bytes  # kept in its row: one buffer


def test_a_buffer_that_changes_after_sealing_leaves_the_parts_as_they_were() -> None:
    """A bytearray's or an array's memory is copied when pickled: it may change before the write."""
    import pickle

    from durable._serialization import Codec

    codec = Codec(compress_threshold=None)
    value = bytearray(b"a" * (1 << 20))
    stored = codec.dumps_parts(value, b"w", what="result")
    value[:] = b"b" * len(value)
    assert codec.loads(stored, b"w", what="result") == bytearray(b"a" * (1 << 20))
    assert bytes(stored)[2:] == pickle.dumps(bytearray(b"a" * (1 << 20)), protocol=5)


def test_a_signed_result_in_parts_that_is_altered_is_refused() -> None:
    import os

    from durable._serialization import Codec

    codec = Codec(secret_key="k" * 32)
    value = os.urandom(1 << 20)
    stored = bytearray(bytes(codec.dumps_parts(value, b"w", what="result")))
    stored[len(stored) // 2] ^= 1
    with pytest.raises(durable.PayloadIntegrityError, match="does not match"):
        codec.loads(bytes(stored), b"w", what="result")
    other = codec.dumps_parts(value, b"w", what="result")
    with pytest.raises(durable.PayloadIntegrityError, match="does not match"):
        codec.loads(other, b"elsewhere", what="result")


def _nested(rng: random.Random, depth: int = 0) -> Any:
    """A random value made of what pickle's own pickler writes alone, with others inside."""
    scalars = [
        lambda: rng.randrange(-(10**30), 10**30),
        lambda: rng.random() * 10 ** rng.randrange(-5, 300),
        lambda: "".join(chr(rng.randrange(1, 0xD7FF)) for _ in range(rng.randrange(12))),
        lambda: rng.randbytes(rng.randrange(20)),
        lambda: rng.choice([True, False, None, float("inf"), -0.0, "", b""]),
        lambda: bytearray(rng.randbytes(3)),
        lambda: datetime.datetime(2026, 1, 1) + datetime.timedelta(seconds=rng.randrange(10**8)),
        lambda: decimal.Decimal(rng.randrange(10**6)) / 7,
        lambda: ValueError("bad", rng.randrange(9)),
    ]
    if depth > 3 or rng.random() < 0.4:
        return rng.choice(scalars)()
    size = rng.randrange(5)
    kind = rng.randrange(5)
    if kind == 0:
        return [_nested(rng, depth + 1) for _ in range(size)]
    if kind == 1:
        return tuple(_nested(rng, depth + 1) for _ in range(size))
    if kind == 2:
        return {str(rng.randrange(99)): _nested(rng, depth + 1) for _ in range(size)}
    if kind == 3:
        return {rng.randrange(99) for _ in range(size)}
    return frozenset(str(rng.randrange(99)) for _ in range(size))


def test_values_pickle_as_cloudpickle_would_whichever_pickler_takes_them() -> None:
    """Values of plain types, nested, skip cloudpickle's pickler: the bytes must not change.

    A stored payload must load, and an argument's pickle is part of what
    names its workflow, so pickle's own pickler may take only what it writes
    exactly as cloudpickle's does; the rest (a date, a Decimal, an error,
    nested anywhere) still goes to cloudpickle.
    """
    import cloudpickle

    from durable._serialization import dumps, pickle_value

    rng = random.Random(21)
    for _ in range(2_000):
        value = _nested(rng)
        expected = cloudpickle.dumps(value, protocol=5)
        assert pickle_value(value, what="v") == expected
        assert dumps(value, by_value=False) == expected
    deep: list[Any] = []
    for _ in range(100_000):  # deeper than either pickler goes: cloudpickle's error
        deep = [deep]
    with pytest.raises(durable.SerializationError, match="recursion"):
        pickle_value(deep, what="v")


def test_derived_workflow_ids_do_not_change() -> None:
    """Ids derived from arguments name stored workflows: pinned for many kinds of values."""
    import hashlib

    @durable.durable_workflow(name="ser.pinned")
    def pinned(a: Any, b: Any = None, *more: Any, **named: Any) -> None:
        """Never run: its ids are computed."""

    rng = random.Random(7)
    digest = hashlib.sha256()
    for index in range(500):
        value = _nested(rng)
        args = (value, [value], 3) if index % 2 else (value,)
        digest.update(pinned.id_for(*args, x=value).encode())
    digest.update(pinned.id_for("x" * 200_000, b"y" * 100_000).encode())  # OpenSSL's digest
    assert digest.hexdigest() == (
        "22247d5091bec34344816c0840ff16b5de3830fb9cf0192e9b37fe99e9ea517e"  # as at 8d24904
    )
