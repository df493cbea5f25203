"""The openusage.get_usage action."""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.openusage.const import CONF_PATH, DOMAIN
from custom_components.openusage.core.models import Window
from custom_components.openusage.core.reader import read_store
from openusage_demo import generate_demo_store
from tests.constants import WARSAW

from .conftest import NOW


async def call(hass: HomeAssistant, **data: str) -> dict:
    """Call `openusage.get_usage` and return its response."""
    return await hass.services.async_call(DOMAIN, "get_usage", data, blocking=True, return_response=True)


async def test_totals_and_breakdowns(hass: HomeAssistant, loaded_entry: MockConfigEntry, store_path: Path) -> None:
    core = await read_store(store_path, NOW, WARSAW)
    today = await call(hass, window="today")
    assert today["window"] == "today"
    assert today["computed_at"] == "2026-11-23T12:00:00Z"
    assert today["totals"]["cost_usd"] == pytest.approx(core.usage.totals[Window.TODAY].cost_usd)
    assert today["totals"]["messages"] == core.usage.totals[Window.TODAY].messages
    by_model = await call(hass, window="30d", group_by="model", config_entry_id=loaded_entry.entry_id)
    assert by_model["group_by"] == "model"
    assert set(by_model["figures"]) == set(core.usage.breakdowns["model"])
    by_tool = await call(hass, window="7d", group_by="tool")
    assert set(next(iter(by_tool["figures"].values()))) == {"tool_calls", "tool_errors"}
    month = await call(hass, window="month")
    assert month["totals"]["cost_usd"] == pytest.approx(core.usage.totals[Window.MONTH].cost_usd)
    assert month["totals"]["cost_usd"] > today["totals"]["cost_usd"]
    week_by_agent = await call(hass, window="week", group_by="agent")  # calendar windows split by agent too
    assert set(week_by_agent["figures"]) == {k for k, w in core.usage.breakdowns["agent"].items() if w}
    assert sum(f["cost_usd"] for f in week_by_agent["figures"].values()) == pytest.approx(
        core.usage.totals[Window.WEEK].cost_usd
    )


async def test_errors(hass: HomeAssistant, loaded_entry: MockConfigEntry, tmp_path: Path) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, window="all", group_by="agent")
    assert err.value.translation_key == "window_not_available"
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, window="today", config_entry_id="nope")
    assert err.value.translation_key == "entry_not_found"
    second = generate_demo_store(tmp_path / "second", days=5, events=100, now=NOW)
    other = MockConfigEntry(domain=DOMAIN, data={CONF_PATH: str(second)})
    other.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, window="today", config_entry_id=other.entry_id)
    assert err.value.translation_key == "entry_not_loaded"
    assert await hass.config_entries.async_setup(other.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, window="today")
    assert err.value.translation_key == "entry_required"
    await hass.config_entries.async_unload(other.entry_id)
    await hass.config_entries.async_unload(loaded_entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, window="today")
    assert err.value.translation_key == "no_loaded_entry"
