"""durable.Options: every runtime setting in one frozen object, validated once."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

import durable


def test_a_runtime_takes_its_settings_from_options() -> None:
    options = durable.Options(lease_seconds=dt.timedelta(minutes=2), max_recoveries=3)
    with durable.Runtime("sqlite:///:memory:", options=options) as runtime:
        assert runtime.options is options
        assert runtime.lease_seconds == 120.0
        assert runtime.max_recoveries == 3


def test_loose_arguments_build_the_same_options() -> None:
    with durable.Runtime("sqlite:///:memory:", poll_interval=0.25, durability="full") as runtime:
        assert runtime.options == durable.Options(poll_interval=0.25, durability="full")


def test_options_and_loose_arguments_together_are_refused() -> None:
    with pytest.raises(durable.ConfigurationError, match=r"lease_seconds given beside options="):
        durable.Runtime("sqlite:///:memory:", lease_seconds=5, options=durable.Options())


def test_options_are_frozen_and_replace_validates() -> None:
    options = durable.Options()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.lease_seconds = 1.0  # type: ignore[misc]
    assert options.replace(durability="batched").durability == "batched"
    with pytest.raises(durable.ConfigurationError, match="durability must be one of"):
        options.replace(durability="fast")
    with pytest.raises(durable.ConfigurationError, match=r"unknown option\(s\) leese"):
        options.replace(leese=1)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("lease_seconds", -1, "lease_seconds"),
        ("poll_interval", "soon", "poll_interval"),
        ("max_recoveries", True, "max_recoveries must be an int"),
        ("max_recoveries", -1, "max_recoveries must be >= 0"),
        ("compress_threshold", 0, "compress_threshold must be a whole number"),
        ("max_payload_bytes", 1.5, "max_payload_bytes must be a whole number"),
        ("secret_key", 1234, "secret_key must be a str or bytes"),
        ("old_secret_keys", "one-key", "old_secret_keys must be a list"),
    ],
)
def test_a_bad_option_names_itself(field: str, value: object, message: str) -> None:
    with pytest.raises(durable.ConfigurationError, match=message):
        durable.Options(**{field: value})  # type: ignore[arg-type]


def test_the_repr_hides_the_keys() -> None:
    shown = repr(durable.Options(secret_key="s" * 32, old_secret_keys=["o" * 32]))
    assert "s" * 32 not in shown
    assert "o" * 32 not in shown
    assert "secret_key=<hidden>" in shown
