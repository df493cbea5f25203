"""Fixtures for the publisher tests: a demo store and a real broker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from openusage_demo import generate_demo_store

from .broker import Broker, mosquitto

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def sockets(socket_enabled: None) -> None:
    """Let these tests talk to a real broker on 127.0.0.1."""


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Return a demo store."""
    return generate_demo_store(tmp_path / "state", days=40, events=2000, seed=5, now=NOW)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """Run a real Mosquitto for the test."""
    with mosquitto(tmp_path) as running:
        yield running
