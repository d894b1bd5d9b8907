"""The storage contract (durable.testing.contract) on both built-in backends, sync and async."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import durable
from durable.backends import Backend
from durable.testing.contract import BackendContract


class TestBuiltInBackends(BackendContract):
    """Every check of the contract, on SQLite (file and memory) and PostgreSQL."""

    @pytest.fixture
    def backend(self, durable_backend: str) -> Iterator[Backend]:
        with durable.Runtime(durable_backend) as runtime:
            yield runtime.backend
