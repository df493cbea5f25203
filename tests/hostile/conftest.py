"""Fixtures for the hostile-world tests: real stores, a real broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt.broker import Broker, mosquitto


@pytest.fixture
def broker(tmp_path: Path, socket_enabled: None) -> Iterator[Broker]:
    with mosquitto(tmp_path) as running:
        yield running
