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
    """Add the entry's sensors, and new ones as the store shows new keys."""
    add_catalog_entities(entry.runtime_data, "sensor", async_add_entities, OpenUsageSensor)


class OpenUsageSensor(OpenUsageEntity, SensorEntity):
    """A figure of the store."""

    def __init__(self, coordinator: OpenUsageCoordinator, spec: EntitySpec) -> None:
        """Bind the sensor to its catalog entry."""
        super().__init__(coordinator, spec)
        description = spec.description
        self._attr_device_class = SensorDeviceClass(description.device_class) if description.device_class else None
        self._attr_state_class = SensorStateClass(description.state_class) if description.state_class else None
        self._attr_native_unit_of_measurement = spec.unit
        self._attr_suggested_display_precision = description.precision
        self._attr_options = list(description.options) if description.options else None

    @property
    def native_value(self) -> float | int | str | date | datetime | None:
        """The figure, as worked out for the latest snapshot."""
        value = self.shown.value
        return str(value) if isinstance(value, bool) else value

    @property
    def last_reset(self) -> datetime | None:
        """The start of the period a total counts (today, this week, this month)."""
        return self.shown.last_reset
