"""The base entity: one catalog entry (core/catalog.py) bound to the coordinator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, cast

from homeassistant.const import EntityCategory
from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import OpenUsageCoordinator
from .core.catalog import EntitySpec, Value
from .core.clock import as_text
from .core.devices import HUB, DeviceSpec
from .core.kinds import EntityCategory as CoreEntityCategory

# Breakdowns can hold hundreds of keys: shown on the entity, kept out of the recorder's history.
BREAKDOWN_ATTRIBUTES = frozenset({"by_provider", "by_model", "by_agent", "by_tool", "by_project"})


def device_identifier(entry_id: str, device_key: str) -> tuple[str, str]:
    """Return the device registry identifier of one of the entry's devices."""
    return (DOMAIN, f"{entry_id}_{device_key}")


def device_info(entry_id: str, device: DeviceSpec, hub_device_id: str = "") -> DeviceInfo:
    """Return a device of the entry; the account devices are connected through the hub (`hub_device_id`)."""
    info: dict[str, Any] = {
        "identifiers": {device_identifier(entry_id, device.key)},
        "name": device.name,
        "manufacturer": device.manufacturer,
        "model": device.model,
        "entry_type": DeviceEntryType.SERVICE,
    }
    if device.is_hub:
        return cast(DeviceInfo, info)
    if "via_device_id" in DeviceInfo.__annotations__:  # Home Assistant 2026.8 and later
        info["via_device_id"] = hub_device_id
    else:  # earlier releases know the hub by its identifier only
        info["via_device"] = device_identifier(entry_id, HUB)
    return cast(DeviceInfo, info)


def _as_text(attributes: dict[str, Any] | None) -> dict[str, Any] | None:
    """Instants in attributes as the text the MQTT entities show too (and that survives a restart unchanged)."""
    return None if attributes is None else {key: as_text(value) for key, value in attributes.items()}


class Shown(NamedTuple):
    """Everything an entity's written state comes from."""

    available: bool
    value: Value
    attributes: dict[str, Any] | None
    last_reset: datetime | None  # the start of the period, for figures that restart (today, week, month)


class OpenUsageEntity(CoordinatorEntity[OpenUsageCoordinator]):
    """An entity whose identity and state come from an EntitySpec."""

    _attr_has_entity_name = True
    _unrecorded_attributes = BREAKDOWN_ATTRIBUTES

    def __init__(self, coordinator: OpenUsageCoordinator, spec: EntitySpec) -> None:
        """Bind the entity to its catalog entry and work out its first state."""
        super().__init__(coordinator)
        self.spec = spec
        entry_id = coordinator.config_entry.entry_id
        self._attr_unique_id = f"{entry_id}_{spec.device}_{spec.key}"
        self._attr_translation_key = spec.translation_key
        self._attr_translation_placeholders = dict(spec.placeholders)
        description = spec.description
        self._attr_entity_registry_enabled_default = description.enabled_default
        if description.entity_category is CoreEntityCategory.DIAGNOSTIC:
            self._attr_entity_category = EntityCategory.DIAGNOSTIC
        device = coordinator.data.devices[spec.device]
        self._attr_device_info = device_info(entry_id, device, coordinator.hub_device_id)
        # Worked out once per snapshot. Home Assistant may write the state before adding the entity (a registry
        # update), and the snapshot may have changed by the time it is added.
        self.shown = self._work_out()

    def _work_out(self) -> Shown:
        snapshot, spec = self.coordinator.data.snapshot, self.spec
        return Shown(
            available=self.available,
            value=spec.value(snapshot),
            attributes=_as_text(spec.attributes(snapshot)),
            last_reset=spec.last_reset(snapshot),
        )

    async def async_added_to_hass(self) -> None:
        """Work out the state again: the snapshot may have changed since the entity was made."""
        await super().async_added_to_hass()
        self.shown = self._work_out()

    @callback
    def _handle_coordinator_update(self) -> None:
        # Queued: the coordinator brings its entities up to date a few a pass of the event loop.
        self.coordinator.write_state_soon(self._show_latest)

    @callback
    def _show_latest(self) -> None:
        # A refresh changes some of the entities; writing the others again would only keep the event loop
        # busy (about 30 µs each) for states Home Assistant then finds unchanged. Home Assistant writes no
        # state of an entity removed since it was queued (an unload right after a refresh).
        shown = self._work_out()
        if shown != self.shown:
            self.shown = shown
            self.async_write_ha_state()

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The figure's attributes (breakdowns, quota details), as worked out with its state."""
        return self.shown.attributes


def add_catalog_entities(
    coordinator: OpenUsageCoordinator,
    platform: str,
    add_entities: Callable[[list[Any]], None],
    factory: Callable[[OpenUsageCoordinator, EntitySpec], OpenUsageEntity],
) -> None:
    """Add the platform's entities now, and new ones whenever the store shows new keys.

    New keys are a new provider, account, quota metric or breakdown key; no reload is needed.
    """
    known: set[tuple[str, str]] = set()

    def add_new() -> None:
        if not coordinator.has_data:
            return
        new = [
            spec
            for spec in coordinator.data.entities
            if spec.platform == platform and (spec.device, spec.key) not in known
        ]
        known.update((spec.device, spec.key) for spec in new)
        if new:
            add_entities([factory(coordinator, spec) for spec in new])

    add_new()
    coordinator.config_entry.async_on_unload(coordinator.async_add_listener(add_new))
