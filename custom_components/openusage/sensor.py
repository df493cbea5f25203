"""Sensors: usage totals, quotas and store health."""

from __future__ import annotations

from datetime import date, datetime

from homeassistant.components.sensor import SensorDeviceClass, SensorEntity, SensorStateClass
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import OpenUsageConfigEntry, OpenUsageCoordinator
from .core.catalog import EntitySpec
from .entity import OpenUsageEntity, add_catalog_entities

# Read-only polling through one coordinator: no limit on parallel updates.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant, entry: OpenUsageConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    add_catalog_entities(entry.runtime_data, "sensor", async_add_entities, OpenUsageSensor)


class OpenUsageSensor(OpenUsageEntity, SensorEntity):
    """A figure of the store."""

    def __init__(self, coordinator: OpenUsageCoordinator, spec: EntitySpec) -> None:
        super().__init__(coordinator, spec)
        self._attr_device_class = SensorDeviceClass(spec.device_class) if spec.device_class else None
        self._attr_state_class = SensorStateClass(spec.state_class) if spec.state_class else None
        self._attr_native_unit_of_measurement = spec.unit
        self._attr_suggested_display_precision = spec.precision
        self._attr_options = list(spec.options) if spec.options else None

    @property
    def native_value(self) -> float | int | str | date | datetime | None:
        value = self.shown.value
        if isinstance(value, bool):
            return str(value)
        if self.device_class is SensorDeviceClass.DATE and isinstance(value, str):
            return date.fromisoformat(value)
        return value

    @property
    def last_reset(self) -> datetime | None:
        return self.shown.last_reset
