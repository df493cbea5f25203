"""Fixtures for the hostile-world tests: real stores, a real broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt.broker import Broker, mosquitto


@pytest.fixture
def broker(tmp_path: Path, socket_enabled: None) -> Iterator[Broker]:
    """Run a real Mosquitto for the test."""
    with mosquitto(tmp_path) as running:
        yield running


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let Home Assistant load the integration from custom_components/ in the tests that start it."""
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")
