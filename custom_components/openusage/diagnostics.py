"""Diagnostics: the snapshot with everything personal redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_PATH
from .coordinator import OpenUsageConfigEntry
from .core.health import ingestion_problems
from .core.schema import release_range
from .core.snapshot_json import snapshot_to_json

REDACTED = "**REDACTED**"
_KEYS = {CONF_PATH, "account_id", "message", "spool_last_error", "session_id"}


def _redact_keys(mapping: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Replace dictionary keys that name something personal (accounts, projects) with stable placeholders."""
    return {f"{prefix}_{i}": value for i, value in enumerate(mapping.values(), start=1)}


def _redact_accounts(by_account: dict[str, Any]) -> dict[str, Any]:
    """Keep the provider of each account key, hide the account id."""
    redacted: dict[str, Any] = {}
    for i, (key, value) in enumerate(by_account.items(), start=1):
        provider = key.partition("/")[0]
        redacted[f"{provider}/account_{i}"] = value
    return redacted


async def async_get_config_entry_diagnostics(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> dict[str, Any]:
    """Return the entry's diagnostics: options, the snapshot, and nothing personal."""
    coordinator = entry.runtime_data
    found: dict[str, Any] = {
        "entry": {
            "data": async_redact_data(dict(entry.data), _KEYS),
            "options": dict(entry.options),
        },
        "last_update_success": coordinator.last_update_success,
    }
    if not coordinator.has_data:  # the first read is still under way
        return found
    snapshot = coordinator.data.snapshot
    document = snapshot_to_json(snapshot)
    document["by_account"] = _redact_accounts(document["by_account"])
    document["by_project"] = _redact_keys(document["by_project"], "project")
    return {
        **found,
        "schema_releases": release_range(tuple(snapshot.store.tables)),
        "ingestion_problems": ingestion_problems(snapshot),
        "snapshot": async_redact_data(document, _KEYS),
    }
