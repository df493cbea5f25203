"""End to end.

The publisher feeds a real broker, and Home Assistant's own MQTT integration, connected to that broker, creates the
entities.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service

from custom_components.openusage.core.clock import period_start
from custom_components.openusage.core.models import Window
from openusage_demo import generate_demo_store
from tests.constants import WARSAW
from tests.mqtt.broker import Broker, mosquitto, publish

from .test_dashboard import entity_ids_of

REPO = Path(__file__).parents[2]
BUDGETS = ("--budget", "300", "--provider-budget", "claude_code=200")


@pytest.fixture
def broker(tmp_path: Path, socket_enabled: None) -> Iterator[Broker]:
    """Run a real Mosquitto for the test."""
    with mosquitto(tmp_path) as running:
        yield running


@pytest.fixture
def live_store(tmp_path: Path) -> Path:
    """Return a store whose history ends now: the publisher runs in its own process, on the real clock."""
    return generate_demo_store(tmp_path / "state", days=30, events=2000, seed=3, now=datetime.now(UTC))


async def _wait(hass: HomeAssistant, entity_id: str, attribute: str | None = None) -> None:
    """Until the entity has a state (and the attribute): retained messages arrive in any order."""
    for _ in range(200):
        await hass.async_block_till_done()
        state = hass.states.get(entity_id)
        ready = state is not None and state.state not in ("unknown", "unavailable")
        if ready and (attribute is None or attribute in state.attributes):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{entity_id} never got a state: {hass.states.get(entity_id)}")


async def _wait_for_state(hass: HomeAssistant, entity_id: str, state: str) -> None:
    for _ in range(200):
        await hass.async_block_till_done()
        if (found := hass.states.get(entity_id)) is not None and found.state == state:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{entity_id} never became {state}: {hass.states.get(entity_id)}")


async def test_home_assistant_mqtt_creates_the_entities(
    hass: HomeAssistant, broker: Broker, live_store: Path, tmp_path: Path
) -> None:
    # MQTT reads configuration.yaml for YAML-defined items: give it an empty one.
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "configuration.yaml").write_text("")
    hass.config.config_dir = str(config_dir)
    published = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "custom_components.openusage.core.cli", "publish", "--db", str(live_store),
         "--broker", broker.url, "--node-id", "workstation", "--once", "--tz", "Europe/Warsaw", *BUDGETS],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip
    assert published.returncode == 0, published.stderr

    entry = MockConfigEntry(domain="mqtt", data={"broker": "127.0.0.1", "port": broker.port})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await _wait(hass, "sensor.openusage_workstation_cost_today", attribute="by_model")

    cost = hass.states.get("sensor.openusage_workstation_cost_today")
    assert cost.attributes["unit_of_measurement"] == "USD"
    assert cost.attributes["device_class"] == "monetary"
    assert cost.attributes["state_class"] == "total"
    assert cost.attributes["friendly_name"].endswith("Cost today")
    assert float(cost.state) > 0
    assert "claude-sonnet-4-5" in cost.attributes["by_model"]

    quota = "sensor.claude_code_workstation_5_hour_usage"
    await _wait(hass, quota, attribute="window")
    five_hour = hass.states.get(quota)
    assert five_hour.attributes["unit_of_measurement"] == "%"
    assert five_hour.attributes.get("window") == "5h", five_hour.attributes
    assert five_hour.attributes["friendly_name"] == "Claude Code (workstation) 5-hour usage"
    assert five_hour.attributes["icon"] == "mdi:gauge"
    reset = hass.states.get("sensor.claude_code_workstation_5_hour_usage_reset")
    assert reset.attributes["device_class"] == "timestamp"
    problem = hass.states.get("binary_sensor.openusage_workstation_ingestion_problem")
    assert problem.state == "on"
    assert problem.attributes["spool_failed"] is True

    registry = er.async_get(hass)
    disabled = registry.async_get("sensor.openusage_workstation_input_tokens_today")
    assert disabled is not None
    assert disabled.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    devices = {d.name for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)}
    assert {"OpenUsage (workstation)", "Claude Code (workstation)", "Claude Code (opencode, workstation)"} <= devices
    assert hass.states.get("sensor.claude_code_workstation_quota_status").state == "OK"  # a text, as natively
    # This month, its projection and the budgets, as natively (last_reset at the 1st, local midnight).
    month = hass.states.get("sensor.openusage_workstation_cost_this_month")
    first = period_start(Window.MONTH, datetime.now(UTC), WARSAW)
    assert month.attributes["last_reset"] == first.isoformat()
    assert float(month.state) > 0
    budget = hass.states.get("sensor.openusage_workstation_budget_used")
    assert float(budget.state) == pytest.approx(float(month.state) / 3, abs=0.01)
    assert budget.attributes["budget"] == 300.0
    assert hass.states.get("binary_sensor.openusage_workstation_claude_code_projected_over_budget").state in (
        "on",
        "off",
    )
    assert hass.states.get("sensor.openusage_workstation_projected_month_cost").attributes["method"]

    # The dashboard `openusage-ha dashboard --node-id` prints names only entities that exist.
    board = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "custom_components.openusage.core.cli", "dashboard", "--db", str(live_store),
         "--node-id", "workstation", *BUDGETS],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip
    assert board.returncode == 0, board.stderr
    names = entity_ids_of(yaml.safe_load(board.stdout))
    assert "sensor.claude_code_workstation_5_hour_usage" in names
    for entity_id in names:
        assert hass.states.get(entity_id) is not None, entity_id

    # A quota alert above its threshold, then the publisher restarts (its Last Will, then a new run): the
    # quota goes unavailable and comes back, which is no new crossing.
    shutil.copytree(
        REPO / "blueprints" / "automation" / "openusage", config_dir / "blueprints" / "automation" / "openusage"
    )
    calls = async_mock_service(hass, "notify", "test")
    blueprint = {"path": "openusage/quota_alert.yaml", "input": {
        "quota": quota, "threshold": 1, "notify_action": [{"action": "notify.test", "data": {"message": "{{ message }}"}}]}}  # fmt: skip
    assert await async_setup_component(hass, "automation", {"automation": {"use_blueprint": blueprint}})
    await hass.async_block_till_done()
    assert float(hass.states.get(quota).state) > 1
    await asyncio.to_thread(publish, broker.port, "openusage/workstation/availability", "offline", retain=True)
    await _wait_for_state(hass, quota, "unavailable")
    again = await asyncio.to_thread(subprocess.run, published.args, capture_output=True, text=True, cwd=REPO,
                                    check=False, timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr
    await _wait(hass, quota)
    assert calls == []
    assert await hass.config_entries.async_unload(entry.entry_id)
