"""Diagnostics show the figures and hide what is personal."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.openusage.diagnostics import async_get_config_entry_diagnostics


async def test_diagnostics_are_redacted(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, snapshot: SnapshotAssertion
) -> None:
    result = await async_get_config_entry_diagnostics(hass, loaded_entry)
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
