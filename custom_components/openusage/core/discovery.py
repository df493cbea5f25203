"""Home Assistant MQTT discovery for the catalog's entities: topics and payloads, no I/O.

One device-based discovery document per device (`<prefix>/device/<id>/config`), one retained JSON
state document per device, and two availability topics: the publisher's own (its Last Will) and
the store's. Usage totals listen only to the store's, so they keep their last value while the
workstation sleeps; live figures (quotas, active sessions, health) also listen to the publisher's and
carry `expire_after`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from .catalog import ICONS, EntitySpec, catalog, entity_id
from .clock import as_text, last_reset
from .devices import HUB, DeviceSpec, all_devices
from .models import Breakdown, Snapshot
from .naming import slug, unique_slugs
from .version import VERSION

ORIGIN = {"name": "openusage-ha", "sw": VERSION, "url": "https://github.com/openusage-ha/openusage-ha"}
TOPIC_ROOT = "openusage"
ONLINE = "online"
OFFLINE = "offline"
MIN_EXPIRE_AFTER = 300


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message to publish."""

    topic: str
    payload: str
    retain: bool = True
    qos: int = 1


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic of one publisher (one workstation)."""

    prefix: str
    node_id: str

    @property
    def availability(self) -> str:
        """Return the publisher's availability topic (its Last Will)."""
        return f"{TOPIC_ROOT}/{self.node_id}/availability"

    @property
    def store_availability(self) -> str:
        """Return the store's availability topic (online while it can be read)."""
        return f"{TOPIC_ROOT}/{self.node_id}/store"

    @property
    def birth(self) -> str:
        """Return Home Assistant's birth topic."""
        return f"{self.prefix}/status"

    def device_id(self, device_slug: str) -> str:
        """Return a device's id from its slug (device_slugs; '' for the hub)."""
        return f"openusage_{self.node_id}" + (f"_{device_slug}" if device_slug else "")

    def discovery(self, device_slug: str) -> str:
        """Return a device's discovery topic."""
        return f"{self.prefix}/device/{self.device_id(device_slug)}/config"

    @property
    def discovery_filter(self) -> str:
        """Subscription that returns every retained device config (ours are told apart by id)."""
        return f"{self.prefix}/device/+/config"

    def owns(self, discovery_topic: str, document: Mapping[str, Any]) -> bool:
        """Whether a retained discovery document is this node's.

        Its topic alone cannot say (the devices of node `dev` and the hub of node `dev_box` both start
        `openusage_dev_`): its entities must read this node's own state topics, under `openusage/<node>/`.
        """
        head = f"{self.prefix}/device/openusage_{self.node_id}"
        if not (discovery_topic.startswith(head) and discovery_topic.endswith("/config")):
            return False
        if discovery_topic[len(head)] not in "/_":
            return False
        root = f"{TOPIC_ROOT}/{self.node_id}/"
        components = document.get("cmps") or document.get("components") or {}
        return isinstance(components, dict) and any(
            isinstance(c, dict) and str(c.get("state_topic", "")).startswith(root) for c in components.values()
        )

    def state(self, device_slug: str) -> str:
        """Return a device's state topic."""
        return f"{TOPIC_ROOT}/{self.node_id}/{self.device_id(device_slug)}/state"

    def attributes(self, device_slug: str) -> str:
        """Return a device's attributes topic."""
        return f"{TOPIC_ROOT}/{self.node_id}/{self.device_id(device_slug)}/attributes"


def device_slugs(device_keys: Iterable[str]) -> dict[str, str]:
    """Each device's slug in ids and topics, one of its own (accounts `a.b` and `a_b` stay two devices)."""
    return {HUB: "", **unique_slugs(key for key in device_keys if key != HUB)}


def node_id_from(name: str) -> str:
    """Make the node id of a machine name."""
    return slug(name, limit=32)


def _component_id(spec: EntitySpec) -> str:
    return slug(spec.key)


def _is_total(spec: EntitySpec) -> bool:
    """Usage totals keep their last value when the publisher goes away; live figures do not."""
    return not spec.description.expires and spec.description.entity_category is None


def _state_value(spec: EntitySpec, snapshot: Snapshot) -> Any:
    value = spec.value(snapshot)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if spec.platform == "binary_sensor" and value is not None:
        return "ON" if value else "OFF"
    texts = spec.description.state_texts
    if texts is not None and isinstance(value, str):
        return texts.get(value, value)
    return value


def _text(value: object) -> str:
    """Instants in attributes as RFC 3339 UTC text, as the native entities show them."""
    return str(as_text(value))


def _options(spec: EntitySpec) -> list[str] | None:
    """Return an enum's options as its states are published."""
    options = spec.description.options
    if options is None:
        return None
    texts = spec.description.state_texts or {}
    return [texts.get(option, option) for option in options]


def mqtt_entity_id(spec: EntitySpec, device: DeviceSpec, node_id: str) -> str:
    """Return the entity id of a published entity: Home Assistant's own rule (device name, then entity name).

    As for the native entities, with the machine in the device's name (`sensor.claude_code_laptop_5_hour_usage`).
    """
    return entity_id(spec, device.name_on(node_id))


def _device_block(topics: Topics, device: DeviceSpec, device_slug: str) -> dict[str, Any]:
    block = {
        "identifiers": [topics.device_id(device_slug)],
        "name": device.name_on(topics.node_id),
        "manufacturer": device.manufacturer,
        "model": device.model,
    }
    # The hub carries the publisher's version; the account devices connect through it.
    return block | ({"sw_version": VERSION} if device.is_hub else {"via_device": topics.device_id("")})


def _component(
    topics: Topics, spec: EntitySpec, device: DeviceSpec, device_slug: str, interval: float
) -> dict[str, Any]:
    component_id = _component_id(spec)
    object_id = mqtt_entity_id(spec, device, topics.node_id).partition(".")[2]
    config: dict[str, Any] = {
        "p": spec.platform,
        "name": spec.name,
        "unique_id": f"{topics.device_id(device_slug)}_{component_id}",
        "object_id": object_id,  # Home Assistant before 2025.10
        "default_entity_id": f"{spec.platform}.{object_id}",
        "state_topic": topics.state(device_slug),
        "value_template": f"{{{{ value_json['{component_id}'] }}}}",
    }
    if spec.translation_key in ICONS:
        config["icon"] = ICONS[spec.translation_key]
    if _is_total(spec):
        config["availability"] = [{"topic": topics.store_availability}]
    else:
        config["availability"] = [{"topic": topics.store_availability}, {"topic": topics.availability}]
        config["availability_mode"] = "all"
    description = spec.description
    for key, value in (
        ("device_class", description.device_class),
        ("state_class", description.state_class),
        ("unit_of_measurement", spec.unit),
        ("entity_category", description.entity_category),
        ("suggested_display_precision", description.precision),
        ("options", _options(spec)),
    ):
        if value is not None:
            config[key] = str(value) if isinstance(value, StrEnum) else value
    if not description.enabled_default:
        config["enabled_by_default"] = False
    if description.expires:
        config["expire_after"] = int(max(MIN_EXPIRE_AFTER, 3 * interval))
    if spec.has_attributes:
        config["json_attributes_topic"] = topics.attributes(device_slug)
        config["json_attributes_template"] = f"{{{{ value_json['{component_id}'] | tojson }}}}"
    if description.resets_with:
        config["last_reset_value_template"] = f"{{{{ value_json.last_reset_{description.resets_with} }}}}"
    return config


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything to publish for one snapshot: per device, its discovery, state and attributes."""

    discovery: dict[str, dict[str, Any]]  # discovery topic → document
    states: dict[str, str]  # state or attributes topic → JSON text


def plan(
    snapshot: Snapshot,
    topics: Topics,
    interval: float,
    *,
    breakdown_sensors: frozenset[Breakdown] = frozenset(),
    removed: dict[str, dict[str, str]] | None = None,
) -> Plan:
    """Return the discovery documents and state payloads of a snapshot.

    `removed` maps a discovery topic to components that existed before and must be removed by
    publishing them with only their platform (`{"p": ...}`) once.
    """
    specs = catalog(snapshot, breakdown_sensors)
    devices = all_devices(snapshot)
    slugs = device_slugs(devices)
    discovery: dict[str, dict[str, Any]] = {}
    states: dict[str, str] = {}
    for key, device in devices.items():
        mine = [s for s in specs if s.device == key]
        device_slug = slugs[key]
        components = {_component_id(s): _component(topics, s, device, device_slug, interval) for s in mine}
        topic = topics.discovery(device_slug)
        for component_id, platform in (removed or {}).get(topic, {}).items():
            components.setdefault(component_id, {"p": platform})
        discovery[topic] = {
            "dev": _device_block(topics, device, device_slug),
            "o": ORIGIN,
            "cmps": components,
            "qos": 1,
        }
        state: dict[str, Any] = {_component_id(s): _state_value(s, snapshot) for s in mine}
        for window in sorted({s.description.resets_with for s in mine if s.description.resets_with}):
            state[f"last_reset_{window}"] = last_reset(snapshot, window).isoformat()
        states[topics.state(device_slug)] = json.dumps(state, sort_keys=True)
        attributes = {_component_id(s): s.attributes(snapshot) for s in mine if s.has_attributes}
        if attributes:
            states[topics.attributes(device_slug)] = json.dumps(attributes, sort_keys=True, default=_text)
    return Plan(discovery=discovery, states=states)


def components_of(document: dict[str, Any]) -> dict[str, str]:
    """Component id → platform of a discovery document (ours or one read back from the broker)."""
    components = document.get("cmps") or document.get("components") or {}
    if not isinstance(components, dict):
        return {}
    return {
        str(cid): str(c.get("p") or c.get("platform") or "sensor")
        for cid, c in components.items()
        if isinstance(c, dict) and len(c) > 1  # a platform-only entry is already a removal
    }
