"""Manifest, HACS file and translations: what hassfest and HACS check, and every string the code uses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from custom_components.openusage.core.catalog import DESCRIPTIONS, ICONS, QUOTA_STATUS_TEXTS, Description
from custom_components.openusage.core.providers import KNOWN_QUOTA_METRICS
from custom_components.openusage.core.reader import StoreErrorKind
from custom_components.openusage.core.version import VERSION

ROOT = Path(__file__).parents[2]
INTEGRATION = ROOT / "custom_components" / "openusage"
EN = json.loads((INTEGRATION / "translations" / "en.json").read_text())
SOURCES = "\n".join(p.read_text() for p in INTEGRATION.glob("*.py"))


def test_manifest_keys_and_order() -> None:
    manifest = json.loads((INTEGRATION / "manifest.json").read_text())
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert manifest["domain"] == INTEGRATION.name
    for key in ("codeowners", "config_flow", "documentation", "integration_type", "iot_class", "issue_tracker",
                "requirements", "version"):  # fmt: skip
        assert key in manifest, key
    assert manifest["iot_class"] == "local_polling"
    assert manifest["version"] == VERSION  # the one release number (core/version.py), also the package's
    assert manifest["documentation"].startswith("https://")
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert hacs["homeassistant"] == "2025.4.0"
    assert set(hacs) <= {"name", "homeassistant", "hacs", "zip_release", "filename", "content_in_root",
                         "hide_default_branch", "country", "persistent_directory", "render_readme"}  # fmt: skip


def test_brand_images_follow_the_brands_rules() -> None:
    """Square icons at 256 and 512 px, trimmed, and no logo that only repeats the icon.

    The brands rules allow no transparent border; a logo that repeats the icon makes Home Assistant show the icon
    where a logo goes.
    """
    from PIL import Image

    brand = INTEGRATION / "brand"
    for name, size in (("icon.png", 256), ("icon@2x.png", 512)):
        with Image.open(brand / name) as image:
            assert image.format == "PNG"
            assert image.size == (size, size), name
            opaque = image.convert("RGBA").getchannel("A").point(lambda a: 255 if a > 8 else 0)
            assert opaque.getbbox() == (0, 0, size, size), name
    icon = (brand / "icon.png").read_bytes()
    for logo in brand.glob("*logo*.png"):
        assert logo.read_bytes() != icon, logo.name


def _translated_names(description: Description[Any]) -> dict[str, str]:
    """Return the translation keys a description stands for, each with the English name it gives."""
    key = description.translation_key or description.key
    if "{known}" not in key:
        return {key: description.name}
    # A quota metric's: each known metric by its own name, the others by theirs ("{metric}").
    names = {key.format(known="metric"): description.name}
    for metric, name in KNOWN_QUOTA_METRICS.items():
        names[key.format(known=metric)] = description.name.format(metric=name)
    return names


def test_every_entity_translation_exists() -> None:
    """en.json names each description's entities as the MQTT publisher does (one list of descriptions)."""
    for description in DESCRIPTIONS:
        table = EN["entity"][description.platform]
        for key, name in _translated_names(description).items():
            assert table[key]["name"] == name, key
    # MQTT entities show the same state texts and the same icons as the native ones.
    assert EN["entity"]["sensor"]["quota_status"]["state"] == QUOTA_STATUS_TEXTS
    icons = json.loads((INTEGRATION / "icons.json").read_text())["entity"]
    assert {k: v["default"] for entries in icons.values() for k, v in entries.items()} == ICONS


def test_every_exception_issue_and_error_key_exists() -> None:
    used = set(re.findall(r'translation_key="([a-z_]+)"', SOURCES))
    issue_keys = {"store_unreadable", "not_openusage"}
    for key in used - issue_keys:
        assert key in EN["exceptions"], key
    for key in issue_keys:
        assert key in EN["issues"], key
    errors = EN["config"]["error"]
    for kind in StoreErrorKind:
        assert kind.value in errors
    assert {"not_absolute", "not_allowed"} <= set(errors)
    assert "invalid_links" in EN["options"]["error"]


@pytest.mark.parametrize("service", ["get_usage"])
def test_service_fields_are_described(service: str) -> None:
    fields = yaml.safe_load((INTEGRATION / "services.yaml").read_text())[service]["fields"]
    described = EN["services"][service]["fields"]
    assert set(fields) == set(described)
    icons = json.loads((INTEGRATION / "icons.json").read_text())
    assert service in icons["services"]


def test_icons_follow_hassfest_rules() -> None:
    icons = json.loads((INTEGRATION / "icons.json").read_text())
    for platform, entries in icons["entity"].items():
        for key, icon in entries.items():
            assert key in EN["entity"][platform], key
            assert icon["default"].startswith("mdi:")
            for state_icon in icon.get("state", {}).values():
                assert state_icon.startswith("mdi:")
                assert state_icon != icon["default"]


def test_the_core_s_entity_kinds_are_home_assistant_s() -> None:
    """The core names device classes, state classes and categories without importing Home Assistant."""
    from homeassistant.components.binary_sensor import BinarySensorDeviceClass
    from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
    from homeassistant.const import EntityCategory as HomeAssistantCategory
    from homeassistant.const import Platform as HomeAssistantPlatform

    from custom_components.openusage.core.kinds import DeviceClass, EntityCategory, Platform, StateClass

    device_classes = {Platform.SENSOR: SensorDeviceClass, Platform.BINARY_SENSOR: BinarySensorDeviceClass}
    for description in DESCRIPTIONS:
        if description.device_class is not None:
            device_classes[description.platform](description.device_class.value)  # raises for an unknown one
    assert {c.value for c in DeviceClass} <= {c.value for c in (*SensorDeviceClass, *BinarySensorDeviceClass)}
    assert {c.value for c in StateClass} <= {c.value for c in SensorStateClass}
    assert {c.value for c in EntityCategory} <= {c.value for c in HomeAssistantCategory}
    assert {p.value for p in Platform} <= {p.value for p in HomeAssistantPlatform}
