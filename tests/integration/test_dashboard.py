"""The dashboard only names entities the integration really creates, and only built-in cards."""

from __future__ import annotations

from pathlib import Path

import yaml
from homeassistant.core import HomeAssistant
from homeassistant.helpers.template import Template
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .test_sensor import _all_enabled

DASHBOARD = Path(__file__).parents[2] / "dashboards" / "openusage.yaml"
BUILT_IN = {"heading", "gauge", "entities", "tile", "statistics-graph", "markdown", "history-graph"}


def _cards(node: object) -> list[dict]:
    found: list[dict] = []
    if isinstance(node, dict):
        if "type" in node and isinstance(node["type"], str) and "cards" not in node and "sections" not in node:
            found.append(node)
        for value in node.values():
            found += _cards(value)
    elif isinstance(node, list):
        for item in node:
            found += _cards(item)
    return found


def _entity_ids(card: dict) -> list[str]:
    ids = [card["entity"]] if "entity" in card else []
    for item in card.get("entities", []):
        ids.append(item if isinstance(item, str) else item["entity"])
    return ids


async def test_every_entity_on_the_dashboard_exists(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    await _all_enabled(hass, loaded_entry)
    document = yaml.safe_load(DASHBOARD.read_text())
    cards = [c for c in _cards(document["views"]) if c.get("type") not in ("sections", "grid")]
    assert cards
    for card in cards:
        assert card["type"] in BUILT_IN, card["type"]
        for entity_id in _entity_ids(card):
            assert hass.states.get(entity_id) is not None, entity_id
    markdown = next(c for c in cards if c["type"] == "markdown")
    rendered = Template(markdown["content"], hass).async_render(parse_result=False)
    assert "| claude_code |" in rendered
    assert "| claude-sonnet-4-5 |" in rendered
