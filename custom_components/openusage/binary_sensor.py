"""Binary sensors: ingestion problems and limited quotas."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import OpenUsageConfigEntry, OpenUsageCoordinator
from .core.catalog import EntitySpec
from .entity import OpenUsageEntity, add_catalog_entities

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant, entry: OpenUsageConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add the entry's binary sensors, and new ones as the store shows new keys."""
    add_catalog_entities(entry.runtime_data, "binary_sensor", async_add_entities, OpenUsageBinarySensor)


class OpenUsageBinarySensor(OpenUsageEntity, BinarySensorEntity):
    """A yes/no condition of the store or a quota."""

    def __init__(self, coordinator: OpenUsageCoordinator, spec: EntitySpec) -> None:
        """Bind the binary sensor to its catalog entry."""
        super().__init__(coordinator, spec)
        device_class = spec.description.device_class
        self._attr_device_class = BinarySensorDeviceClass(device_class) if device_class else None

    @property
    def is_on(self) -> bool | None:
        """Whether the condition holds (unknown when the snapshot cannot say)."""
        value = self.shown.value
        return None if value is None else bool(value)
