"""The dashboard names only entities the integration really creates (natively and over MQTT).

It uses only built-in cards; the shipped file is what `openusage-ha dashboard` prints for the demo store.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from homeassistant.core import HomeAssistant
from homeassistant.helpers.template import Template
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.openusage.core.dashboard import NATIVE_COST_STATISTIC, dashboard, to_yaml

from .test_sensor import _all_enabled

DASHBOARD = Path(__file__).parents[2] / "dashboards" / "openusage.yaml"
BUILT_IN = {"heading", "gauge", "entities", "tile", "statistics-graph", "markdown", "history-graph", "conditional"}


def cards_of(node: object) -> list[dict]:
    """Every card of a dashboard document (not the sections and grids that hold them)."""
    found: list[dict] = []
    if isinstance(node, dict):
        if "type" in node and isinstance(node["type"], str) and "cards" not in node and "sections" not in node:
            found.append(node)
        for value in node.values():
            found += cards_of(value)
    elif isinstance(node, list):
        for item in node:
            found += cards_of(item)
    return found


def entity_ids_of(document: dict) -> list[str]:
    """Every entity id a dashboard names (statistics graphs may name an imported statistic instead)."""
    ids: list[str] = []
    for card in cards_of(document["views"]):
        ids += [card["entity"]] if "entity" in card else []
        for item in card.get("entities", []):
            ids.append(item if isinstance(item, str) else item.get("row", item)["entity"])
    return [i for i in ids if ":" not in i]  # not the imported statistic the native daily-spend card shows


async def test_the_shipped_dashboard_is_the_command_s_output_and_every_entity_exists(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    await _all_enabled(hass, loaded_entry)
    document = dashboard(loaded_entry.runtime_data.data.snapshot)
    shipped = DASHBOARD.read_text()
    assert yaml.safe_load(shipped) == document
    assert shipped.rstrip().endswith(to_yaml(document))  # the printed text, not just the same data
    cards = cards_of(document["views"])
    assert {c["type"] for c in cards} <= BUILT_IN
    names = entity_ids_of(document)
    assert "sensor.claude_code_5_hour_usage" in names
    assert "sensor.openusage_cost_7_days" in names
    for entity_id in names:
        assert hass.states.get(entity_id) is not None, entity_id
    graph = next(c for c in cards if c["type"] == "statistics-graph")
    assert graph["entities"] == [{"entity": NATIVE_COST_STATISTIC, "name": "Cost"}]  # imported: bars on day one
    month, markdown = (c for c in cards if c["type"] == "markdown")
    said = Template(month["content"], hass).async_render(parse_result=False)
    projected = hass.states.get("sensor.openusage_projected_month_cost")
    low = projected.attributes["low"]
    assert said.startswith(f"Heading for **${float(projected.state):.2f}** this month (${low:.2f} to ")
    assert said.endswith(", against a budget of $300.00.")
    gauges = [c["card"]["entity"] for c in cards if c.get("card", {}).get("type") == "gauge"]
    assert gauges == ["sensor.openusage_budget_used", "sensor.openusage_claude_code_budget_used"]
    hass.states.async_remove("sensor.openusage_budget_used")  # as without a budget: the card says how to set one
    said = Template(month["content"], hass).async_render(parse_result=False)
    assert said.endswith(
        "Set a monthly budget in the integration's options (or `--budget` for the publisher) to follow it here."
    )
    rendered = Template(markdown["content"], hass).async_render(parse_result=False)
    assert "| Claude Code |" in rendered  # providers by their names
    assert "| claude-sonnet-4-5 |" in rendered
