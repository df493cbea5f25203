"""The base entity: one catalog entry (core/catalog.py) bound to the coordinator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.const import EntityCategory
from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import OpenUsageCoordinator
from .core.catalog import HUB, DeviceSpec, EntitySpec, Value, account_devices, last_reset

# Breakdowns can hold hundreds of keys: shown on the entity, kept out of the recorder's history.
BREAKDOWN_ATTRIBUTES = frozenset({"by_provider", "by_model", "by_agent", "by_tool", "by_project"})


def device_identifier(entry_id: str, device_key: str) -> tuple[str, str]:
    return (DOMAIN, f"{entry_id}_{device_key}")


def device_info(entry_id: str, device: DeviceSpec | None) -> DeviceInfo:
    if device is None:  # the hub
        return DeviceInfo(
            identifiers={device_identifier(entry_id, HUB)},
            name="OpenUsage",
            manufacturer="openusage",
            model="Telemetry store",
            entry_type=DeviceEntryType.SERVICE,
        )
    return DeviceInfo(
        identifiers={device_identifier(entry_id, device.key)},
        name=device.name,
        manufacturer="openusage",
        model=device.model,
        entry_type=DeviceEntryType.SERVICE,
        via_device=device_identifier(entry_id, HUB),
    )


class OpenUsageEntity(CoordinatorEntity[OpenUsageCoordinator]):
    """An entity whose identity and state come from an EntitySpec."""

    _attr_has_entity_name = True
    _unrecorded_attributes = BREAKDOWN_ATTRIBUTES

    def __init__(self, coordinator: OpenUsageCoordinator, spec: EntitySpec) -> None:
        super().__init__(coordinator)
        self.spec = spec
        entry_id = coordinator.config_entry.entry_id
        self._attr_unique_id = f"{entry_id}_{spec.device}_{spec.key}"
        self._attr_translation_key = spec.translation_key
        self._attr_translation_placeholders = dict(spec.placeholders)
        self._attr_entity_registry_enabled_default = spec.enabled_default
        if spec.entity_category == "diagnostic":
            self._attr_entity_category = EntityCategory.DIAGNOSTIC
        device = None if spec.device == HUB else account_devices(coordinator.data).get(spec.device)
        self._attr_device_info = device_info(entry_id, device)
        self._written: tuple[Any, ...] | None = None  # what the state was last written from

    def _shown(self) -> tuple[Any, ...]:
        """Everything the written state depends on: availability, value, attributes, start of `today`."""
        data = self.coordinator.data
        midnight = last_reset(data) if self.spec.last_reset_at_midnight else None
        return (self.available, self.spec.value(data), self.extra_state_attributes, midnight)

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self._written = self._shown()  # the platform writes the first state right after this

    @callback
    def _handle_coordinator_update(self) -> None:
        # A refresh changes a few of the entities; writing the others again would only keep the event loop
        # busy (about 30 µs each) for states Home Assistant then finds unchanged.
        shown = self._shown()
        if shown != self._written:
            self._written = shown
            self.async_write_ha_state()

    @property
    def spec_value(self) -> Value:
        return self.spec.value(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        if self.spec.attributes is None:
            return None
        return self.spec.attributes(self.coordinator.data)


def add_catalog_entities(
    coordinator: OpenUsageCoordinator,
    platform: str,
    add_entities: Callable[[list[Any]], None],
    factory: Callable[[OpenUsageCoordinator, EntitySpec], OpenUsageEntity],
) -> None:
    """Add the platform's entities now, and new ones whenever the store shows a new provider,
    account, quota metric or breakdown key (no reload needed)."""
    known: set[tuple[str, str]] = set()

    def add_new() -> None:
        new = [
            spec for spec in coordinator.specs() if spec.platform == platform and (spec.device, spec.key) not in known
        ]
        known.update((spec.device, spec.key) for spec in new)
        if new:
            add_entities([factory(coordinator, spec) for spec in new])

    add_new()
    coordinator.config_entry.async_on_unload(coordinator.async_add_listener(add_new))
