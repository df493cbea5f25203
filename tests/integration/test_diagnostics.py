"""Diagnostics show the figures and hide what is personal."""

from __future__ import annotations

import json

# The download imports it on first use; a first import under the frozen clock fails (its models build
# date parsers from `datetime`), so it is imported before the clock stops.
import homeassistant.components.hassio  # noqa: F401
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion


async def test_diagnostics_are_redacted(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, hass_client: ClientSessionGenerator, snapshot: SnapshotAssertion
) -> None:
    # Through Home Assistant's diagnostics download, as a user gets them.
    result = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    text = json.dumps(result)
    for secret in (
        loaded_entry.data["path"],
        "claude-code",
        "codex-cli",
        "api-server",
        "web-app",
        "database is locked",
    ):
        assert secret not in text, secret
    assert result["entry"]["data"]["path"] == "**REDACTED**"
    assert result["snapshot"]["quotas"][0]["account_id"] == "**REDACTED**"
    assert "claude_code/account_1" in result["snapshot"]["by_account"]
    assert result["schema_releases"] == ">=0.22.0"
    assert result == snapshot
