"""Stored payloads: signed, compressed when it pays, bounded, and refused when wrong."""

from __future__ import annotations

import array
import contextlib
import datetime as dt
import decimal
import math
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import durable
from durable.testing import CrashInjector, SimulatedCrash

KEY = "s3cret-key-for-tests"


def execute(url: str, sql: str, *params: Any) -> list[Any]:
    """Write to the store behind durable's back, as an attacker or a bit flip would."""
    if url.startswith("sqlite"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(url.split("sqlite:///", 1)[1])) as conn, conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()
    import psycopg

    base, _, query = url.partition("?")
    schema = dict(p.split("=") for p in query.split("&"))["schema"]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


@durable.step(name="make")
async def make(x: int) -> dict[str, int]:
    return {"x": x}


@durable.step(name="finish")
async def finish(d: dict[str, int]) -> int:
    return d["x"] * 2


@durable.durable_workflow(name="payloads.flow")
async def flow(x: int) -> int:
    return await finish(await make(x))


async def crash_after_first_step(runtime: durable.Runtime, workflow_id: str) -> None:
    CrashInjector(runtime).arm("after_commit", step="make")
    with pytest.raises(SimulatedCrash):
        await flow.run(21, workflow_id=workflow_id)


class Evil:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.touch, (self.path,))


async def test_a_planted_pickle_is_never_unpickled(db_url: str, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    with durable.Runtime(db_url, secret_key=KEY) as runtime:
        await crash_after_first_step(runtime, "w")
        evil = bytes((2, 0)) + pickle.dumps(Evil(pwned))  # well-formed, unsigned
        execute(db_url, "UPDATE durable_steps SET output = %s WHERE position = 1", evil)
        with pytest.raises(durable.PayloadIntegrityError) as info:
            await flow.run(21, workflow_id="w")
    assert "no signature, and a secret key is configured" in str(info.value)
    assert "It was not unpickled" in str(info.value)
    assert not pwned.exists()


async def test_a_tampered_payload_is_refused(db_url: str) -> None:
    with durable.Runtime(db_url, secret_key=KEY) as runtime:
        await crash_after_first_step(runtime, "w")
        [(output,)] = execute(db_url, "SELECT output FROM durable_steps WHERE position = 1")
        flipped = bytes(output[:-1]) + bytes((output[-1] ^ 1,))
        execute(db_url, "UPDATE durable_steps SET output = %s WHERE position = 1", flipped)
        with pytest.raises(durable.PayloadIntegrityError, match="does not match"):
            await flow.run(21, workflow_id="w")


async def test_a_signed_payload_moved_to_another_workflow_is_refused(db_url: str) -> None:
    with durable.Runtime(db_url, secret_key=KEY) as runtime:
        await crash_after_first_step(runtime, "victim")
        assert await flow.run(99, workflow_id="donor") == 198
        [(donor,)] = execute(
            db_url, "SELECT output FROM durable_steps WHERE workflow_id = 'donor' AND position = 1"
        )
        execute(
            db_url,
            "UPDATE durable_steps SET output = %s WHERE workflow_id = 'victim' AND position = 1",
            donor,
        )
        with pytest.raises(durable.PayloadIntegrityError, match="moved from another workflow"):
            await flow.run(21, workflow_id="victim")


async def test_key_rotation_reads_old_keys_and_refuses_unknown_ones(db_url: str) -> None:
    with durable.Runtime(db_url, secret_key="old-key-0123456789") as runtime:
        await crash_after_first_step(runtime, "w")
    with (
        durable.Runtime(db_url, secret_key="new-key-0123456789"),
        pytest.raises(durable.PayloadIntegrityError, match="key that is not configured"),
    ):
        await flow.run(21, workflow_id="w")
    with durable.Runtime(
        db_url, secret_key="new-key-0123456789", old_secret_keys=["old-key-0123456789"]
    ):
        assert await flow.run(21, workflow_id="w") == 42


async def test_secret_key_from_the_environment(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLE_SECRET_KEY", KEY)
    with durable.Runtime(db_url) as runtime:
        await crash_after_first_step(runtime, "w")
    monkeypatch.delenv("DURABLE_SECRET_KEY")
    monkeypatch.setenv("DURABLE_OLD_SECRET_KEYS", f"other,{KEY}")
    with durable.Runtime(db_url, secret_key="brand-new-0123456789"):
        assert await flow.run(21, workflow_id="w") == 42


async def test_signed_payloads_are_refused_without_the_key(db_url: str) -> None:
    with durable.Runtime(db_url, secret_key=KEY) as runtime:
        await crash_after_first_step(runtime, "w")
    with (
        durable.Runtime(db_url),
        pytest.raises(durable.PayloadIntegrityError, match="key that is not configured"),
    ):
        await flow.run(21, workflow_id="w")


@durable.step(name="big")
def big(kind: str, size: int) -> bytes:
    return os.urandom(size) if kind == "random" else b"abc" * (size // 3)


@durable.durable_workflow(name="payloads.big")
def big_flow(kind: str, size: int) -> int:
    return len(big(kind, size))


def test_compressible_payloads_are_compressed_and_random_ones_are_not(
    runtime: durable.Runtime,
) -> None:
    size = 3 << 19
    assert big_flow.run("text", size, workflow_id="text") == size
    assert big_flow.run("random", size, workflow_id="random") == size
    [text] = runtime.list_steps("text")
    [random] = runtime.list_steps("random")
    assert text.payload_bytes < size // 50
    assert size < random.payload_bytes < size * 1.001
    assert big_flow.run("text", size, workflow_id="text") == size  # reads back


def test_compression_can_be_turned_off(durable_sqlite: str) -> None:
    with durable.Runtime(durable_sqlite, compress_threshold=None) as runtime:
        big_flow.run("text", 300_000, workflow_id="plain")
        [step] = runtime.list_steps("plain")
    assert step.payload_bytes > 300_000


def test_payloads_over_the_limit_are_refused_before_writing(durable_sqlite: str) -> None:
    with durable.Runtime(durable_sqlite, max_payload_bytes=100_000) as runtime:
        with pytest.raises(durable.PayloadTooLargeError) as info:
            big_flow.run("random", 200_000, workflow_id="huge")
        assert runtime.list_steps("huge") == []
    error = info.value
    assert error.limit == 100_000
    assert error.size > 200_000
    assert "result of step 'big' (position 1 of workflow 'huge')" in str(error)
    assert "over the limit of 100,000 bytes (max_payload_bytes)" in str(error)


def test_bad_codec_settings_are_configuration_errors() -> None:
    with pytest.raises(durable.ConfigurationError, match="max_payload_bytes must be"):
        durable.Runtime("sqlite://", max_payload_bytes=0)
    with pytest.raises(durable.ConfigurationError, match="compress_threshold must be"):
        durable.Runtime("sqlite://", compress_threshold=-5)  # type: ignore[arg-type]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


EDGE_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=True)
    | st.binary(max_size=64)
    | st.text(max_size=32)
    | st.decimals(allow_nan=False)
    | st.datetimes(timezones=st.just(dt.timezone(dt.timedelta(hours=5, minutes=30)))),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=EDGE_VALUES)
def test_step_results_round_trip_through_the_store(value: Any) -> None:
    @durable.step(name="echo")
    def echo() -> Any:
        return value

    @durable.durable_workflow(name="payloads.echo")
    def wf() -> Any:
        return echo()

    with durable.Runtime("sqlite:///:memory:", secret_key=KEY, compress_threshold=1):
        CrashInjector().arm("after_commit", step="echo")
        with pytest.raises(SimulatedCrash):
            wf()
        replayed = wf()  # decoded from the stored, signed, maybe compressed payload
    assert _same(value, replayed)


class Frames:
    """A value whose pickle hands over its memory as a PickleBuffer, as a numpy array's does."""

    def __init__(self, data: bytes | bytearray | pickle.PickleBuffer) -> None:
        self.data = bytearray(data)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (Frames, (pickle.PickleBuffer(self.data),))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Frames) and self.data == other.data


def _large_values() -> dict[str, Any]:
    text = "durable " * 40_000  # 320 KiB: past the parts threshold and a payload file's
    values: dict[str, Any] = {
        "bytes": text.encode(),
        "str": text,
        "bytearray": bytearray(text.encode()),
        "array": array.array("d", range(40_000)),
        "PickleBuffer": Frames(text.encode()),
        "nested": {"frames": [Frames(b"a" * 200_000), b"b" * 200_000], "n": 1},
    }
    with contextlib.suppress(ImportError):
        import numpy

        values["numpy"] = numpy.arange(100_000, dtype="float64").reshape(1000, 100)
    return values


@pytest.mark.parametrize("kind", sorted(_large_values()))
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_large_values_of_every_kind_round_trip(db_url: str, kind: str, signed: bool) -> None:
    """Large step results of each buffer kind are stored, replayed after a crash, and equal."""
    value = _large_values()[kind]

    @durable.step(name="large")
    def large() -> Any:
        return value

    @durable.durable_workflow(name="payloads.large")
    def wf() -> Any:
        return large()

    with durable.Runtime(db_url, secret_key=KEY if signed else None):
        CrashInjector().arm("after_commit", step="large")
        with pytest.raises(SimulatedCrash):
            wf.run_sync(workflow_id=f"large-{kind}")
        replayed = wf.run_sync(workflow_id=f"large-{kind}")
    if kind == "numpy":
        assert (replayed == value).all()
        assert replayed.dtype == value.dtype
    else:
        assert type(replayed) is type(value)
        assert replayed == value


def test_self_referencing_and_numpy_values_round_trip(durable_sqlite: str) -> None:
    numpy = pytest.importorskip("numpy")
    loop: list[Any] = [1]
    loop.append(loop)
    array = numpy.arange(12, dtype="float32").reshape(3, 4)

    @durable.step(name="odd")
    def odd() -> tuple[list[Any], Any, decimal.Decimal]:
        return loop, array, decimal.Decimal("-0.000")

    @durable.durable_workflow(name="payloads.odd")
    def wf() -> tuple[list[Any], Any, decimal.Decimal]:
        return odd()

    with durable.Runtime(durable_sqlite):
        wf()
        got_loop, got_array, got_decimal = wf()
    assert got_loop[1] is got_loop
    assert (got_array == array).all()
    assert got_array.dtype == array.dtype
    assert str(got_decimal) == "-0.000"


@pytest.mark.parametrize("key", ["", "short", b"15 bytes secret", "é" * 7])
def test_an_empty_or_short_secret_key_is_refused(key: str | bytes, tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    url = f"sqlite:///{store}"
    with pytest.raises(durable.ConfigurationError, match="at least 16 bytes") as info:
        durable.Runtime(url, secret_key=key)
    assert "secret_key=None" in str(info.value)
    with pytest.raises(durable.ConfigurationError, match="at least 16 bytes"):
        durable.configure(url=url, secret_key=key)
    assert not store.exists()  # refused before the store was opened


@pytest.mark.parametrize("key", ["", "short"])
def test_an_empty_or_short_secret_key_in_the_environment_is_refused(
    key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLE_SECRET_KEY", key)
    store = tmp_path / "store.db"
    url = f"sqlite:///{store}"
    with pytest.raises(durable.ConfigurationError, match=r"\$DURABLE_SECRET_KEY is") as info:
        durable.Runtime(url)
    assert "unset DURABLE_SECRET_KEY" in str(info.value)
    with pytest.raises(durable.ConfigurationError, match="at least 16 bytes"):
        durable.configure(url=url)
    assert not store.exists()


async def test_an_empty_key_never_lets_a_forged_payload_be_unpickled(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pwned = tmp_path / "pwned"
    with durable.Runtime(db_url, secret_key=KEY) as runtime:
        await crash_after_first_step(runtime, "w")
    evil = bytes((2, 0)) + pickle.dumps(Evil(pwned))
    execute(db_url, "UPDATE durable_steps SET output = %s WHERE position = 1", evil)
    monkeypatch.setenv("DURABLE_SECRET_KEY", "")  # a deployment that lost its secret
    with pytest.raises(durable.ConfigurationError):
        durable.Runtime(db_url)
    assert not pwned.exists()


def test_a_secret_key_of_16_bytes_signs() -> None:
    with durable.Runtime("sqlite:///:memory:", secret_key="0123456789abcdef") as runtime:
        assert runtime is not None


# The signature covers the columns that decide what runs ------------------------

RUNS: list[str] = []


@durable.step(name="counted")
async def counted(x: int) -> int:
    RUNS.append("counted")
    return x + 1


@durable.step(name="counted_too")
async def counted_too(x: int) -> int:
    RUNS.append("counted_too")
    return x * 2


FAIL_AFTER_STEPS = [True]


async def two_steps(x: int) -> int:
    y = await counted_too(await counted(x))
    if FAIL_AFTER_STEPS[0]:
        raise RuntimeError("the card was declined")
    return y


columns_flow = durable.durable_workflow(name="payloads.columns")(two_steps)
rerun_flow = durable.durable_workflow(name="payloads.columns_rerun", on_code_change="rerun")(
    two_steps
)


@durable.durable_workflow(name="payloads.columns_other")
async def other_flow(x: int) -> int:
    RUNS.append("other_flow")
    return x


def live_step_rows(url: str, workflow_id: str) -> list[tuple[Any, ...]]:
    return execute(
        url,
        "SELECT position, name, kind, status, attempt FROM durable_steps "
        "WHERE workflow_id = %s AND superseded = %s ORDER BY position",
        workflow_id,
        False,
    )


def crash_signed(url: str, workflow: Any = columns_flow) -> None:
    """Run ``workflow`` as "w" until its two steps committed, then crash it."""
    RUNS.clear()
    FAIL_AFTER_STEPS[0] = False
    with durable.Runtime(url, secret_key=KEY) as runtime:
        CrashInjector(runtime).arm("after_commit", step="counted_too")
        with pytest.raises(SimulatedCrash):
            workflow.run_sync(1, workflow_id="w")
    assert RUNS == ["counted", "counted_too"]


@pytest.fixture
def signed_and_crashed(db_url: str) -> Any:
    """A workflow whose two steps committed before its process crashed."""
    crash_signed(db_url)
    yield db_url
    assert RUNS == ["counted", "counted_too"]  # no committed step ran again
    FAIL_AFTER_STEPS[0] = True


STEP_EDITS = {
    "status": "UPDATE durable_steps SET status = 'error' WHERE position = 1",
    "name": "UPDATE durable_steps SET name = 'counted_too' WHERE position = 1",
    "kind_same_family": "UPDATE durable_steps SET kind = 'child' WHERE position = 1",
    "kind_other_family": "UPDATE durable_steps SET kind = 'snapshot' WHERE position = 1",
    "attempt": "UPDATE durable_steps SET attempt = 3 WHERE position = 1",
    "code_hash": "UPDATE durable_steps SET code_hash = 'f00d' WHERE position = 1",
}


@pytest.mark.parametrize("column", sorted(STEP_EDITS))
@pytest.mark.parametrize("workflow", [columns_flow, rerun_flow], ids=["reuse", "rerun"])
def test_an_edited_step_column_is_refused_not_replayed_or_rerun(
    db_url: str, column: str, workflow: Any
) -> None:
    crash_signed(db_url, workflow)
    try:
        execute(db_url, STEP_EDITS[column])
        edited = live_step_rows(db_url, "w")
        with durable.Runtime(db_url, secret_key=KEY):
            for _ in range(2):  # refused every time, not once
                with pytest.raises(durable.PayloadIntegrityError, match="position 1"):
                    workflow.run_sync(1, workflow_id="w")
    finally:
        FAIL_AFTER_STEPS[0] = True
    assert live_step_rows(db_url, "w") == edited  # nothing superseded
    assert RUNS == ["counted", "counted_too"]  # no committed step ran again


def test_step_records_swapped_between_positions_are_refused(signed_and_crashed: str) -> None:
    url = signed_and_crashed
    execute(url, "UPDATE durable_steps SET position = 99 WHERE position = 1")
    execute(url, "UPDATE durable_steps SET position = 1 WHERE position = 2")
    execute(url, "UPDATE durable_steps SET position = 2 WHERE position = 99")
    with (
        durable.Runtime(url, secret_key=KEY),
        pytest.raises(durable.PayloadIntegrityError, match="position 1"),
    ):
        columns_flow.run_sync(1, workflow_id="w")


def test_a_step_record_moved_to_another_workflow_is_refused(signed_and_crashed: str) -> None:
    url = signed_and_crashed
    with durable.Runtime(url, secret_key=KEY):
        assert columns_flow.run_sync(5, workflow_id="donor") == 12
    RUNS[:] = ["counted", "counted_too"]
    execute(url, "DELETE FROM durable_steps WHERE workflow_id = 'w'")
    execute(url, "UPDATE durable_steps SET workflow_id = 'w' WHERE workflow_id = 'donor'")
    with (
        durable.Runtime(url, secret_key=KEY),
        pytest.raises(durable.PayloadIntegrityError, match="moved from another workflow"),
    ):
        columns_flow.run_sync(1, workflow_id="w")


@pytest.fixture
def signed_and_failed(db_url: str) -> Any:
    """A workflow that failed after both its steps committed."""
    RUNS.clear()
    FAIL_AFTER_STEPS[0] = True
    with (
        durable.Runtime(db_url, secret_key=KEY),
        pytest.raises(RuntimeError, match="declined"),
    ):
        columns_flow.run_sync(1, workflow_id="w")
    FAIL_AFTER_STEPS[0] = False
    yield db_url
    FAIL_AFTER_STEPS[0] = True


def test_a_committed_step_edited_to_error_is_not_run_again_by_a_new_attempt(
    signed_and_failed: str,
) -> None:
    url = signed_and_failed
    execute(url, "UPDATE durable_steps SET status = 'error' WHERE position = 1")
    edited = live_step_rows(url, "w")
    with durable.Runtime(url, secret_key=KEY) as runtime:
        for _ in range(2):
            with pytest.raises(durable.PayloadIntegrityError, match="position 1"):
                columns_flow.run_sync(1, workflow_id="w")
        info = runtime.get_workflow("w")
        assert info is not None
        assert info.status is durable.WorkflowStatus.ERROR  # the claim was rolled back
        assert info.attempts == 1
    assert live_step_rows(url, "w") == edited
    assert RUNS == ["counted", "counted_too"]
    # Put back as it was, the new attempt reuses both steps.
    execute(url, "UPDATE durable_steps SET status = 'success' WHERE position = 1")
    with durable.Runtime(url, secret_key=KEY):
        assert columns_flow.run_sync(1, workflow_id="w") == 4
    assert RUNS == ["counted", "counted_too"]


def test_a_finished_workflow_edited_to_error_is_not_run_again(db_url: str) -> None:
    RUNS.clear()
    FAIL_AFTER_STEPS[0] = False
    try:
        with durable.Runtime(db_url, secret_key=KEY):
            assert columns_flow.run_sync(1, workflow_id="w") == 4
        execute(db_url, "UPDATE durable_workflows SET status = 'error' WHERE workflow_id = 'w'")
        with (
            durable.Runtime(db_url, secret_key=KEY),
            pytest.raises(
                durable.PayloadIntegrityError,
                match="workflow 'w' has status 'error' but no signed error",
            ),
        ):
            columns_flow.run_sync(1, workflow_id="w")
    finally:
        FAIL_AFTER_STEPS[0] = True
    assert RUNS == ["counted", "counted_too"]
    [(status,)] = execute(db_url, "SELECT status FROM durable_workflows WHERE workflow_id = 'w'")
    assert status == "error"


def test_a_failed_workflow_edited_to_success_is_refused(signed_and_failed: str) -> None:
    url = signed_and_failed
    execute(url, "UPDATE durable_workflows SET status = 'success' WHERE workflow_id = 'w'")
    with (
        durable.Runtime(url, secret_key=KEY),
        pytest.raises(durable.PayloadIntegrityError, match="result of workflow 'w'"),
    ):
        columns_flow.run_sync(1, workflow_id="w")
    assert RUNS == ["counted", "counted_too"]


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE durable_workflows SET name = 'payloads.columns_other' WHERE workflow_id = 'w'",
        "UPDATE durable_workflows SET args_fingerprint = 'f00d' WHERE workflow_id = 'w'",
    ],
)
def test_an_edited_workflow_name_or_fingerprint_is_refused(
    signed_and_crashed: str, edit: str
) -> None:
    url = signed_and_crashed
    execute(url, edit)
    with durable.Runtime(url, secret_key=KEY) as runtime:
        with pytest.raises(durable.PayloadIntegrityError, match="arguments of workflow 'w'"):
            columns_flow.run_sync(1, workflow_id="w")
        with pytest.raises(durable.PayloadIntegrityError, match="arguments of workflow 'w'"):
            runtime.resume_sync("w")
    assert "other_flow" not in RUNS


def test_unsigned_stores_ignore_the_columns(db_url: str) -> None:
    RUNS.clear()
    FAIL_AFTER_STEPS[0] = False
    try:
        with durable.Runtime(db_url) as runtime:
            CrashInjector(runtime).arm("after_commit", step="counted_too")
            with pytest.raises(SimulatedCrash):
                columns_flow.run_sync(1, workflow_id="w")
        execute(db_url, "UPDATE durable_steps SET attempt = 3 WHERE position = 1")
        with durable.Runtime(db_url):
            assert columns_flow.run_sync(1, workflow_id="w") == 4
    finally:
        FAIL_AFTER_STEPS[0] = True
    assert RUNS == ["counted", "counted_too"]


def test_records_signed_by_an_older_release_are_still_read(db_url: str) -> None:
    """Format 2 signed a payload and its place only: such rows replay as before."""
    import hashlib
    import hmac

    RUNS.clear()
    FAIL_AFTER_STEPS[0] = False
    try:
        with durable.Runtime(db_url, secret_key=KEY) as runtime:
            CrashInjector(runtime).arm("after_commit", step="counted_too")
            with pytest.raises(SimulatedCrash):
                columns_flow.run_sync(1, workflow_id="w")
        key = KEY.encode()
        for position, value in ((1, 2), (2, 4)):
            header, body = bytes((2, 0x04)), pickle.dumps(value)
            where = f"w\x00step:{position}".encode()
            mac = hmac.new(key, where + header + body, hashlib.sha256).digest()
            key_id = hashlib.sha256(b"durable-key-id:" + key).digest()[:4]
            execute(
                db_url,
                "UPDATE durable_steps SET output = %s WHERE position = %s",
                header + key_id + mac + body,
                position,
            )
        with durable.Runtime(db_url, secret_key=KEY):
            assert columns_flow.run_sync(1, workflow_id="w") == 4
    finally:
        FAIL_AFTER_STEPS[0] = True
    assert RUNS == ["counted", "counted_too"]
