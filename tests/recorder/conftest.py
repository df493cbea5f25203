"""Tests with a real recorder: it must be set up before Home Assistant itself."""

from __future__ import annotations

import pytest
from homeassistant.components.recorder import Recorder


@pytest.fixture(autouse=True)
def recorder_then_integrations(recorder_mock: Recorder, enable_custom_integrations: None) -> None:
    """Set up the recorder first (its database before `hass`), then enable custom integrations."""
