"""The kinds of entity the catalog makes, as Home Assistant's own values (the core imports nothing of it).

Each member's value is the value of Home Assistant's enum of the same name, so that the native adapter
turns it into that enum and the MQTT adapter writes it into discovery as it is.
"""

from __future__ import annotations

from enum import StrEnum


class Platform(StrEnum):
    """The entity platforms the integration provides."""

    SENSOR = "sensor"
    BINARY_SENSOR = "binary_sensor"


class DeviceClass(StrEnum):
    """The device classes of the catalog's sensors and binary sensors."""

    DATA_SIZE = "data_size"
    DATE = "date"
    DURATION = "duration"
    ENUM = "enum"
    MONETARY = "monetary"
    PROBLEM = "problem"
    TIMESTAMP = "timestamp"


class StateClass(StrEnum):
    """How the recorder keeps statistics of a sensor."""

    MEASUREMENT = "measurement"
    TOTAL = "total"
    TOTAL_INCREASING = "total_increasing"


class EntityCategory(StrEnum):
    """Entities kept apart from the device's main figures."""

    DIAGNOSTIC = "diagnostic"
