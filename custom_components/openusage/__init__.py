"""The OpenUsage integration: AI coding-agent usage from the local openusage store."""

from __future__ import annotations

from datetime import datetime

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_change
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN
from .coordinator import OpenUsageConfigEntry, OpenUsageCoordinator, repair_issue_id
from .core.catalog import HUB
from .entity import device_identifier
from .services import async_setup_services
from .statistics import async_clear_statistics, async_update_statistics

PLATFORMS = [Platform.BINARY_SENSOR, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> bool:
    coordinator = OpenUsageCoordinator(hass, entry)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    _remove_stale_devices(hass, entry)
    entry.async_on_unload(coordinator.async_add_listener(lambda: _remove_stale_devices(hass, entry)))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    if "recorder" in hass.config.components:
        _schedule_statistics(hass, entry)
    return True


def _schedule_statistics(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> None:
    """Backfill now, then import each new hour a few minutes after it ends."""

    @callback
    def update(_now: datetime | None = None) -> None:
        entry.async_create_background_task(hass, async_update_statistics(hass, entry), "openusage statistics")

    update()
    entry.async_on_unload(async_track_time_change(hass, update, minute=5, second=0))


async def async_unload_entry(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> bool:
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> None:
    ir.async_delete_issue(hass, DOMAIN, repair_issue_id(entry))
    if "recorder" in hass.config.components:
        await async_clear_statistics(hass, entry)


def _current_identifiers(entry: OpenUsageConfigEntry) -> set[tuple[str, str]]:
    keys = {HUB, *entry.runtime_data.devices}
    return {device_identifier(entry.entry_id, key) for key in keys}


@callback
def _remove_stale_devices(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> None:
    """Provider accounts that left the store (pruned, renamed) lose their device."""
    current = _current_identifiers(entry)
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not device.identifiers & current:
            registry.async_update_device(device.id, remove_config_entry_id=entry.entry_id)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: OpenUsageConfigEntry, device: dr.DeviceEntry
) -> bool:
    """A device may be deleted by hand once the store no longer has its account."""
    return not device.identifiers & _current_identifiers(entry)
