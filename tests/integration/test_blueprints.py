"""The automation blueprints load in Home Assistant and fire on test states."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed, async_mock_service

from openusage_demo import EventWriter
from tests.storebuilder import limit_snapshot

SOURCE = Path(__file__).parents[2] / "blueprints" / "automation" / "openusage"


@pytest.fixture
def blueprint_dir(hass: HomeAssistant, tmp_path: Path) -> None:
    """Put the project's blueprints where Home Assistant looks for them."""
    config = tmp_path / "config"
    shutil.copytree(SOURCE, config / "blueprints" / "automation" / "openusage")
    hass.config.config_dir = str(config)


def _notify(path: str) -> list:
    return [{"action": "notify.test", "data": {"message": "{{ message }}"}}]


async def _automation(hass: HomeAssistant, blueprint: str, inputs: dict) -> list[ServiceCall]:
    calls = async_mock_service(hass, "notify", "test")
    assert await async_setup_component(
        hass,
        "automation",
        {"automation": {"use_blueprint": {"path": f"openusage/{blueprint}", "input": {**inputs,
                                                                                   "notify_action": _notify("")}}}},
    )  # fmt: skip
    await hass.async_block_till_done()
    return calls


async def test_quota_alert(hass: HomeAssistant, blueprint_dir: None) -> None:
    quota = "sensor.claude_code_5_hour_usage"
    hass.states.async_set(quota, "40", {"friendly_name": "Claude 5-hour usage", "resets_at": "2099-01-01T15:00:00Z"})
    calls = await _automation(hass, "quota_alert.yaml", {"quota": quota, "threshold": 80})
    hass.states.async_set(quota, "79.5", {"friendly_name": "Claude 5-hour usage", "resets_at": "2099-01-01T15:00:00Z"})
    await hass.async_block_till_done()
    assert calls == []
    hass.states.async_set(quota, "85", {"friendly_name": "Claude 5-hour usage", "resets_at": "2099-01-01T15:00:00Z"})
    await hass.async_block_till_done()
    assert len(calls) == 1
    # Back from unavailable (a reload, a publisher restart) above the threshold: no crossing.
    hass.states.async_set(quota, "unavailable", {"friendly_name": "Claude 5-hour usage"})
    hass.states.async_set(quota, "86", {"friendly_name": "Claude 5-hour usage", "resets_at": "2099-01-01T15:00:00Z"})
    await hass.async_block_till_done()
    assert len(calls) == 1
    message = calls[0].data["message"]
    assert "Claude 5-hour usage is at 85 %" in message
    assert "resets" in message


@pytest.mark.parametrize("expected_lingering_timers", [True])  # the time trigger stays scheduled
async def test_daily_cost_summary(hass: HomeAssistant, blueprint_dir: None, freezer: FrozenDateTimeFactory) -> None:
    await hass.config.async_set_time_zone("UTC")
    freezer.move_to("2026-11-23 20:59:00+00:00")
    hass.states.async_set(
        "sensor.openusage_cost_today", "12.345",
        {"unit_of_measurement": "USD", "device_class": "monetary",
         "by_provider": {"claude_code": 10.0, "codex": 2.345}, "by_model": {"claude-opus-4-1": 9.0, "gpt-5": 3.3}},
    )  # fmt: skip
    calls = await _automation(hass, "daily_cost_summary.yaml", {"at": "21:00:00"})
    freezer.tick(timedelta(minutes=1, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert len(calls) == 1
    message = calls[0].data["message"]
    assert message.startswith("Today: 12.35 USD.")
    assert message.index("claude_code: 10.0") < message.index("codex: 2.35")
    assert "Top model: claude-opus-4-1." in message


@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_ingestion_stalled(hass: HomeAssistant, blueprint_dir: None, freezer: FrozenDateTimeFactory) -> None:
    freezer.move_to("2026-11-23 12:00:30+00:00")
    problem = "binary_sensor.openusage_ingestion_problem"
    hass.states.async_set(problem, "off", {"hook_spool_stuck": False, "spool_failed": False})
    hass.states.async_set("sensor.openusage_active_sessions", "2")
    hass.states.async_set("sensor.openusage_last_activity", "2026-11-23T11:59:00+00:00")
    calls = await _automation(hass, "ingestion_stalled.yaml", {"quiet_minutes": 20})
    # A stuck hook spool for two minutes: one alert saying which problem.
    hass.states.async_set(problem, "on", {"hook_spool_stuck": True, "spool_failed": False})
    await hass.async_block_till_done()
    freezer.tick(timedelta(minutes=2, seconds=5))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert [c.data["message"].strip() for c in calls] == ["openusage is not ingesting: hook spool stuck."]
    # Problem gone, sessions still active, but no event for 25 minutes: the periodic check alerts.
    hass.states.async_set(problem, "off", {"hook_spool_stuck": False, "spool_failed": False})
    freezer.move_to("2026-11-23 12:25:01+00:00")
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert len(calls) == 2
    assert "2 agent session(s) active, but no usage event for 26 minutes" in calls[1].data["message"]
    # The same stall at the next checks, and the sensors coming back from a reload: nothing new.
    for entity_id, state in (
        ("sensor.openusage_last_activity", "unavailable"),
        ("binary_sensor.openusage_ingestion_problem", "unavailable"),
    ):
        hass.states.async_set(entity_id, state)
    freezer.move_to("2026-11-23 12:30:01+00:00")
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    hass.states.async_set("sensor.openusage_last_activity", "2026-11-23T11:59:00+00:00")
    hass.states.async_set(problem, "on", {"hook_spool_stuck": True, "spool_failed": False})
    freezer.move_to("2026-11-23 12:40:01+00:00")
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert len(calls) == 2
    # A new event ends the stall; the next stall is told again.
    hass.states.async_set("sensor.openusage_last_activity", "2026-11-23T12:40:00+00:00")
    freezer.move_to("2026-11-23 13:05:01+00:00")
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert len(calls) == 3


def _readme_example() -> dict:
    """Return the README's quota notification example, as written there."""
    text = (Path(__file__).parents[2] / "README.md").read_text()
    block = text.split("Notify at 80 % of the Claude 5-hour window")[1].split("```yaml\n")[1].split("```")[0]
    return yaml.safe_load(block)


async def test_quota_alerts_fire_once_per_crossing_of_the_real_sensor(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, blueprint_dir: None, store_path: Path,
    freezer: FrozenDateTimeFactory,
) -> None:  # fmt: skip
    """The blueprint and the README example on the integration's own sensor.

    A crossing fires once, and an entry reload or a store outage above the threshold fires nothing.
    """
    quota = "sensor.claude_code_5_hour_usage"
    assert float(hass.states.get(quota).state) < 80  # the demo store's value
    calls = async_mock_service(hass, "notify", "test")
    readme_calls = async_mock_service(hass, "notify", "notify")
    blueprint = {"path": "openusage/quota_alert.yaml", "input": {"quota": quota, "threshold": 80,
                                                                 "notify_action": _notify("")}}  # fmt: skip
    automations = [{"use_blueprint": blueprint}, _readme_example()]
    assert await async_setup_component(hass, "automation", {"automation": automations})
    await hass.async_block_till_done()

    def poll_to(used: float, minutes: int) -> None:
        metrics = {"usage_five_hour": {"used": used, "limit": 100, "remaining": None, "unit": "%", "window": "5h"}}
        snapshot = {"status": "OK", "metrics": metrics, "resets": {"usage_five_hour": "2026-11-23T15:00:00Z"}}
        conn = sqlite3.connect(store_path, isolation_level=None)
        writer = EventWriter(conn)
        conn.execute("BEGIN")
        limit_snapshot(writer, f"2026-11-23T12:{minutes:02d}:00Z", "claude_code", "claude-code", {"snapshot": snapshot})
        writer.flush()
        conn.execute("COMMIT")
        conn.close()

    async def refresh() -> None:
        freezer.tick(timedelta(minutes=1))
        await loaded_entry.runtime_data.async_refresh()
        await hass.async_block_till_done()

    poll_to(85.0, 1)
    await refresh()
    assert float(hass.states.get(quota).state) == 85.0
    assert len(calls) == len(readme_calls) == 1
    assert "Claude Code 5-hour usage is at 85.0 %" in calls[0].data["message"]
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)  # the reload's first read, before the outage
    hidden = store_path.with_name("hidden.db")
    store_path.rename(hidden)
    await refresh()
    assert hass.states.get(quota).state == "unavailable"
    hidden.rename(store_path)
    await refresh()
    assert float(hass.states.get(quota).state) == 85.0
    assert len(calls) == len(readme_calls) == 1


async def test_budget_alert(hass: HomeAssistant, blueprint_dir: None) -> None:
    problem = "binary_sensor.openusage_projected_over_budget"
    figures = {"friendly_name": "OpenUsage Projected over budget", "budget": 300.0, "spent": 120.5, "projected": 310.25}
    hass.states.async_set(problem, "off", figures)
    calls = await _automation(hass, "budget_alert.yaml", {"problem": problem})
    hass.states.async_set(problem, "on", figures)
    await hass.async_block_till_done()
    assert len(calls) == 1
    assert calls[0].data["message"] == (
        "OpenUsage Projected over budget: 120.50 USD spent this month, heading for 310.25 USD, "
        "against a budget of 300.00 USD."
    )
    # Back from unavailable (a reload, a publisher restart) while still over: no new crossing.
    hass.states.async_set(problem, "unavailable", {})
    hass.states.async_set(problem, "on", figures)
    await hass.async_block_till_done()
    assert len(calls) == 1
    # A new month turns it off; going over again is a new crossing.
    hass.states.async_set(problem, "off", figures)
    hass.states.async_set(problem, "on", figures)
    await hass.async_block_till_done()
    assert len(calls) == 2
