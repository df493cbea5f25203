"""The OpenUsage integration: AI coding-agent usage from the local openusage store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from homeassistant.components import persistent_notification
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later, async_track_time_change
from homeassistant.helpers.typing import ConfigType

from .config_flow import entry_title
from .const import CONF_PATH, CONF_STATISTIC_PREFIX, DOMAIN
from .coordinator import OpenUsageConfigEntry, OpenUsageCoordinator, mirror_cache, repair_issue_id
from .core.cache import remove_cache_file
from .core.devices import HUB, HUB_DEVICE, account_device
from .core.naming import entity_slug
from .entity import device_identifier, device_info
from .services import async_setup_services
from .statistics import async_clear_statistics, async_update_statistics, statistic_prefix_for

PLATFORMS = [Platform.BINARY_SENSOR, Platform.SENSOR]
FIRST_READ_NOTICE_AFTER = 2.0  # seconds: a first read that takes longer is told in a notification
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's actions."""
    async_setup_services(hass)
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> bool:
    """Migrate config entries of version 1.1 to 1.2.

    Version 1.2 has a title instead of the store's path, no unique id (it was the path, which a reconfigure changes; one
    store per entry is checked by path), stable statistic ids, and the entity ids Home Assistant gave under the old
    device names ("claude_code claude-code") moved to the new ones.
    """
    if entry.version > 1:
        return False
    if entry.minor_version < 2:
        title = entry.title
        if title == entry.data[CONF_PATH]:
            others = [e.title for e in hass.config_entries.async_entries(DOMAIN) if e.entry_id != entry.entry_id]
            title = entry_title(Path(entry.data[CONF_PATH]), others)
        _move_entity_ids(hass, entry)
        data = {**entry.data, CONF_STATISTIC_PREFIX: statistic_prefix_for(hass)}
        hass.config_entries.async_update_entry(entry, title=title, data=data, unique_id=None, minor_version=2)
    return True


# The names the per-key sensors had in entries of version 1.1, by the breakdown in their key (Home Assistant made
# `sensor.openusage_gpt_5_cost_today` of "gpt-5 cost today").
_EARLIER_BREAKDOWN_ENDINGS = {"model": "cost_today", "agent": "cost_today", "project": "cost_today",
                              "tool": "calls_today"}  # fmt: skip


def _move_entity_ids(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> None:
    """Give entity ids that are still Home Assistant's make of the version 1.1 names its make of today's.

    Ids a user chose are left alone.
    """
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    keys: dict[str, str] = {}  # device id → device key
    for device in dr.async_entries_for_config_entry(devices, entry.entry_id):
        for domain, identifier in device.identifiers:
            if domain == DOMAIN and identifier.startswith(f"{entry.entry_id}_"):
                keys[device.id] = identifier.removeprefix(f"{entry.entry_id}_")
    accounts = Counter(key.partition("/")[0] for key in keys.values() if key != HUB)
    for entity in er.async_entries_for_config_entry(entities, entry.entry_id):
        device_key = keys.get(entity.device_id or "")
        if device_key is None:
            continue
        domain, _, object_id = entity.entity_id.partition(".")
        key = entity.unique_id.removeprefix(f"{entry.entry_id}_{device_key}_")
        new_object_id = None
        if device_key == HUB:
            breakdown, _, rest = key.partition("_")
            ending = _EARLIER_BREAKDOWN_ENDINGS.get(breakdown)
            kind = "tool_calls_today" if breakdown == "tool" else "cost_today"
            if ending and rest.endswith(f"_{kind}"):
                value = rest.removesuffix(f"_{kind}")
                if object_id == f"openusage_{value}_{ending}":
                    new_object_id = f"openusage_{breakdown}_{kind}_{value}"
        else:
            provider_id, _, account_id = device_key.partition("/")
            spec = account_device(provider_id, account_id, accounts[provider_id])
            earlier = entity_slug(f"{provider_id} {account_id}") + "_"
            if object_id.startswith(earlier):
                new_object_id = entity_slug(spec.name) + "_" + object_id.removeprefix(earlier)
        new_id = f"{domain}.{new_object_id}" if new_object_id else None
        if new_id and new_id != entity.entity_id and entities.async_get(new_id) is None:
            entities.async_update_entity(entity.entity_id, new_entity_id=new_id)


async def async_setup_entry(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> bool:
    """Set up one store: check it, add its devices and platforms, and start the first read."""
    cache = await hass.async_add_executor_job(mirror_cache, hass, entry)
    # The hub first: the account devices name it as the device they are connected through.
    hub = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **device_info(entry.entry_id, HUB_DEVICE)
    )
    coordinator = OpenUsageCoordinator(hass, entry, cache, hub.id)
    # A quick look first, so that a store that cannot be read stops the setup with its reason. The first
    # read of every figure then runs in the background: on a store of a million rows it takes a while,
    # and neither the setup dialog nor Home Assistant's start waits for it. Entities appear when it is done.
    await coordinator.async_check_store()
    entry.runtime_data = coordinator
    entry.async_on_unload(coordinator.async_add_listener(_device_pruner(hass, entry)))
    entry.async_on_unload(entry.add_update_listener(_options_changed))

    async def _close_at_stop(_event: Event) -> None:
        # Home Assistant unloads no entry when it stops: the reader keeps its mirror for the next start now, and
        # its connection's thread ends.
        await coordinator.async_shutdown()

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _close_at_stop))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_create_background_task(hass, _first_read(hass, entry), "openusage first read")
    return True


async def _options_changed(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> None:
    """Reload when the options changed: entities, budgets and the interval are made from them.

    Other updates (a reconfigure's new path, which reloads by
    itself; a title) need none from here.
    """
    if dict(entry.options) != entry.runtime_data.options:
        hass.config_entries.async_schedule_reload(entry.entry_id)


async def _first_read(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> None:
    """Return the first refresh; a notification tells that it is under way if it takes more than a moment."""
    notification = f"{DOMAIN}_first_read_{entry.entry_id}"

    @callback
    def tell(_now: datetime) -> None:
        persistent_notification.async_create(
            hass,
            f"OpenUsage is reading {entry.data[CONF_PATH]} for the first time. Its entities appear when it is done.",
            title="OpenUsage",
            notification_id=notification,
        )

    cancel = async_call_later(hass, FIRST_READ_NOTICE_AFTER, tell)
    try:
        await entry.runtime_data.async_refresh()
    finally:
        cancel()
        persistent_notification.async_dismiss(hass, notification)
    if "recorder" in hass.config.components:
        _schedule_statistics(hass, entry)


def _device_pruner(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> Callable[[], None]:
    """Make the listener that removes the devices of accounts that left the store.

    It prunes after the first refresh (they may have left while Home Assistant was down), then only when the set of
    devices shrinks.
    """
    known: set[str] | None = None

    @callback
    def prune() -> None:
        nonlocal known
        coordinator = entry.runtime_data
        if not coordinator.has_data:
            return
        current = set(coordinator.data.devices)
        if known is None or known - current:
            _remove_stale_devices(hass, entry)
        known = current

    return prune


def _schedule_statistics(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> None:
    """Backfill now, then import each new hour a few minutes after it ends."""

    @callback
    def update(_now: datetime | None = None) -> None:
        entry.async_create_background_task(hass, async_update_statistics(hass, entry), "openusage statistics")

    update()
    entry.async_on_unload(async_track_time_change(hass, update, minute=5, second=0))


async def async_unload_entry(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> bool:
    """Unload the entry's platforms."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> None:
    """Remove what the entry left behind: its repair issue, kept mirror and imported statistics."""
    ir.async_delete_issue(hass, DOMAIN, repair_issue_id(entry))
    await hass.async_add_executor_job(_remove_mirror_cache, hass, entry)
    if "recorder" in hass.config.components:
        await async_clear_statistics(hass, entry)


def _remove_mirror_cache(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> None:
    cache = mirror_cache(hass, entry)
    if cache is not None:
        remove_cache_file(cache)


def _current_identifiers(entry: OpenUsageConfigEntry) -> set[tuple[str, str]]:
    return {device_identifier(entry.entry_id, key) for key in entry.runtime_data.data.devices}


@callback
def _remove_stale_devices(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> None:
    """Remove the devices of provider accounts that left the store (pruned, renamed)."""
    current = _current_identifiers(entry)
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not device.identifiers & current:
            registry.async_remove_device(device.id)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: OpenUsageConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Return a device may be deleted by hand once the store no longer has its account."""
    return entry.runtime_data.has_data and not device.identifiers & _current_identifiers(entry)
