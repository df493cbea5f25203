"""The `openusage.get_usage` action: figures for one window, optionally split by a breakdown."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv

from .const import ATTR_CONFIG_ENTRY_ID, ATTR_GROUP_BY, ATTR_WINDOW, DOMAIN, SERVICE_GET_USAGE
from .coordinator import OpenUsageConfigEntry
from .core.clock import format_utc
from .core.models import BREAKDOWN_FIELDS, BREAKDOWN_WINDOWS, Breakdown, Window
from .validation import vol

SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_WINDOW): vol.In([w.value for w in Window]),
        vol.Optional(ATTR_GROUP_BY): vol.In([b.value for b in Breakdown]),
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
    }
)


def _entry(hass: HomeAssistant, entry_id: str | None) -> OpenUsageConfigEntry:
    if entry_id is not None:
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="entry_not_found",
                translation_placeholders={"entry_id": entry_id},
            )
        if entry.state is not ConfigEntryState.LOADED:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="entry_not_loaded",
                translation_placeholders={"entry_id": entry_id},
            )
        return entry
    loaded = hass.config_entries.async_loaded_entries(DOMAIN)
    if not loaded:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_loaded_entry")
    if len(loaded) > 1:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="entry_required")
    return loaded[0]


async def _get_usage(call: ServiceCall) -> ServiceResponse:
    entry = _entry(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
    if not entry.runtime_data.has_data:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="first_read_running",
            translation_placeholders={"path": str(entry.runtime_data.path)},
        )
    snapshot = entry.runtime_data.data.snapshot
    window = Window(call.data[ATTR_WINDOW])
    response: dict[str, Any] = {"window": window.value, "computed_at": format_utc(snapshot.now)}
    group_by = call.data.get(ATTR_GROUP_BY)
    if group_by is None:
        response["totals"] = asdict(snapshot.usage.totals[window])
        return response
    breakdown = Breakdown(group_by)
    if window not in BREAKDOWN_WINDOWS[breakdown]:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="window_not_available",
            translation_placeholders={"window": window.value, "group_by": breakdown.value},
        )
    fields = BREAKDOWN_FIELDS[breakdown]
    response["group_by"] = breakdown.value
    response["figures"] = {
        key: {name: getattr(per_window[window], name) for name in fields}
        for key, per_window in snapshot.usage.breakdowns[breakdown].items()
    }
    return response


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the `openusage.get_usage` action."""
    hass.services.async_register(
        DOMAIN, SERVICE_GET_USAGE, _get_usage, schema=SCHEMA, supports_response=SupportsResponse.ONLY
    )
