"""Entities: every state and attribute (snapshot), agreement with the core, dynamic and stale devices."""

from __future__ import annotations

import enum
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.openusage.const import CONF_BREAKDOWN_SENSORS, DOMAIN
from custom_components.openusage.coordinator import STATES_A_PASS
from custom_components.openusage.core.catalog import catalog
from custom_components.openusage.core.reader import ReadOptions, read_store
from custom_components.openusage.options import budgets_from
from tests.storebuilder import limit_snapshot, message

from .conftest import NOW


async def refresh(hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory) -> None:
    """One poll, a minute later."""
    freezer.tick(timedelta(seconds=60))
    await entry.runtime_data.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)


def _add_a_message(store_path: Path) -> None:
    """Add one message half a minute after the store's clock, as the daemon does."""
    from openusage_demo import EventWriter

    conn = sqlite3.connect(store_path, isolation_level=None)
    conn.execute("BEGIN")
    writer = EventWriter(conn)
    message(writer, "2026-11-23T12:00:30Z", message_id="fresh", input_tokens=10, cost_usd=0.5)
    writer.flush()
    conn.execute("COMMIT")
    conn.close()


def _enable_all(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    registry = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        if entity.disabled_by is not None:
            registry.async_update_entity(entity.entity_id, disabled_by=None)


async def _all_enabled(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    _enable_all(hass, entry)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_entities_snapshot(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, snapshot: SnapshotAssertion
) -> None:
    await _all_enabled(hass, loaded_entry)
    registry = er.async_get(hass)
    entries = sorted(er.async_entries_for_config_entry(registry, loaded_entry.entry_id), key=lambda e: e.entity_id)
    assert len(entries) > 60
    for entity in entries:
        # The registry fields that are ours to choose (the rest differ between Home Assistant releases).
        chosen = {
            "unique_id": entity.unique_id,
            "translation_key": entity.translation_key,
            "original_device_class": entity.original_device_class,
            "entity_category": entity.entity_category,
            "disabled_by": entity.disabled_by,
            "unit_of_measurement": entity.unit_of_measurement,
            "capabilities": _plain(entity.capabilities) if entity.capabilities else entity.capabilities,
        }
        assert chosen == snapshot(name=f"{entity.entity_id}-entry")
        state = hass.states.get(entity.entity_id)
        assert state is not None
        shown = {"state": state.state, "attributes": _plain(state.attributes)}
        assert shown == snapshot(name=f"{entity.entity_id}-state")


def _plain(mapping: Mapping[str, object]) -> dict[str, object]:
    """Return attributes and capabilities with text keys and values.

    Home Assistant 2026.10 keys them by enum members, earlier releases by text, and one snapshot serves every
    release.
    """
    return {str(k): v.value if isinstance(v, enum.Enum) else v for k, v in sorted(mapping.items())}


def _expected_state(value: object) -> str:
    if value is None:
        return STATE_UNKNOWN
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, datetime):  # Home Assistant shows timestamps to the second
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


async def test_every_state_equals_the_core_snapshot(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, store_path: Path
) -> None:
    await _all_enabled(hass, loaded_entry)
    await _states_equal_the_core(hass, loaded_entry, store_path, NOW)


async def _states_equal_the_core(hass: HomeAssistant, entry: MockConfigEntry, store_path: Path, now: datetime) -> None:
    options = ReadOptions(budgets=budgets_from(entry.options))
    core = await read_store(store_path, now, ZoneInfo(hass.config.time_zone), options)
    registry = er.async_get(hass)
    entries = er.async_entries_for_config_entry(registry, entry.entry_id)
    by_unique_id = {e.unique_id: e.entity_id for e in entries}
    disabled = {e.entity_id for e in entries if e.disabled_by is not None}
    specs = catalog(core)
    assert len(specs) == len(by_unique_id)
    for spec in specs:
        entity_id = by_unique_id[f"{entry.entry_id}_{spec.device}_{spec.key}"]
        if entity_id in disabled:
            continue
        state = hass.states.get(entity_id)
        assert state is not None, entity_id
        value = spec.value(core)
        assert state.state == _expected_state(value), entity_id
        if spec.has_attributes:
            for key, expected in (spec.attributes(core) or {}).items():
                # Instants are shown as RFC 3339 UTC text, as over MQTT.
                utc_text = lambda v: v.isoformat().replace("+00:00", "Z")  # noqa: E731
                assert state.attributes.get(key) == json.loads(json.dumps(expected, default=utc_text)), (entity_id, key)


async def test_hub_and_account_devices(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), loaded_entry.entry_id)
    names = sorted(d.name for d in devices)
    assert "OpenUsage" in names
    assert "Claude Code" in names  # anthropic usage and claude_code quotas share one device
    assert "OpenRouter" in names  # a quota-only account, the default of its two
    assert "Claude Code (opencode)" in names  # Claude through OpenCode: another account of the provider
    five_hour = hass.states.get("sensor.claude_code_5_hour_usage")
    assert five_hour is not None
    assert five_hour.attributes["unit_of_measurement"] == "%"
    assert five_hour.attributes["window"] == "5h"
    reset = hass.states.get("sensor.claude_code_5_hour_usage_reset")
    assert reset is not None
    assert reset.attributes["device_class"] == "timestamp"
    cost = hass.states.get("sensor.openusage_cost_today")
    assert cost.attributes["state_class"] == "total"
    assert cost.attributes["last_reset"] == "2026-11-22T23:00:00+00:00"  # local midnight (Warsaw is UTC+1)
    assert "claude-sonnet-4-5" in cost.attributes["by_model"]
    assert hass.states.get("binary_sensor.openusage_ingestion_problem").state == "on"  # the demo's stuck hook file


async def test_new_accounts_and_metrics_appear_and_gone_ones_are_removed(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, store_path: Path, freezer: FrozenDateTimeFactory
) -> None:
    from openusage_demo import EventWriter

    conn = sqlite3.connect(store_path, isolation_level=None)
    writer = EventWriter(conn)
    conn.execute("BEGIN")
    message(writer, "2026-11-23T11:59:00Z", source_system="ollama", provider_id="ollama", account_id="ollama-local",
            message_id="new", input_tokens=5)  # fmt: skip
    metrics = {"usage_five_hour": {"used": 5, "limit": 100, "remaining": None, "unit": "%", "window": "5h"},
               "brand_new_metric": {"used": 1, "limit": 4, "remaining": None, "unit": "calls", "window": "1d"}}  # fmt: skip
    limit_snapshot(writer, "2026-11-23T11:59:30Z", "zai", "zai", {"snapshot": {"status": "OK", "metrics": metrics}})
    writer.flush()
    conn.execute("COMMIT")
    await refresh(hass, loaded_entry, freezer)
    assert hass.states.get("sensor.ollama_tokens_today").state != STATE_UNAVAILABLE
    assert float(hass.states.get("sensor.z_ai_5_hour_usage").state) == 5.0
    unknown_metric = hass.states.get("sensor.z_ai_brand_new_metric")
    assert unknown_metric is not None
    assert float(unknown_metric.state) == 1.0  # in its own unit, not a percent
    assert unknown_metric.attributes["unit_of_measurement"] == "calls"
    assert unknown_metric.attributes["used_percent"] == 25.0

    # The quota-only account disappears from the store: its device goes with it.
    conn.execute("BEGIN")
    conn.execute("DELETE FROM usage_events WHERE provider_id = 'zai'")
    conn.execute("COMMIT")
    conn.close()
    await refresh(hass, loaded_entry, freezer)
    registry = dr.async_get(hass)
    names = [d.name for d in dr.async_entries_for_config_entry(registry, loaded_entry.entry_id)]
    assert "Z.ai" not in names
    assert "Ollama" in names


async def test_breakdown_sensors_from_options(
    hass: HomeAssistant, config_entry: MockConfigEntry, allow_store: None, frozen: None
) -> None:
    config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        config_entry, options={CONF_BREAKDOWN_SENSORS: ["model", "tool", "agent", "project"]}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get("sensor.openusage_model_cost_today_claude_sonnet_4_5") is not None
    assert hass.states.get("sensor.openusage_tool_calls_today_bash") is not None
    assert hass.states.get("sensor.openusage_agent_cost_today_codex") is not None
    assert hass.states.get("sensor.openusage_project_cost_today_api_server") is not None


async def test_device_removal_is_refused_while_the_store_has_it(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    from custom_components.openusage import async_remove_config_entry_device

    registry = dr.async_get(hass)
    device = next(
        d for d in dr.async_entries_for_config_entry(registry, loaded_entry.entry_id) if d.name == "OpenUsage"
    )
    assert not await async_remove_config_entry_device(hass, loaded_entry, device)
    stray = registry.async_get_or_create(config_entry_id=loaded_entry.entry_id, identifiers={(DOMAIN, "gone")})
    assert await async_remove_config_entry_device(hass, loaded_entry, stray)


async def test_a_refresh_writes_only_the_states_that_changed(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, store_path: Path, freezer: FrozenDateTimeFactory
) -> None:
    cost = "sensor.openusage_cost_all_time"
    age = "sensor.claude_code_snapshot_age"
    before = {entity_id: hass.states.get(entity_id) for entity_id in (cost, age)}
    reported = before[cost].last_reported  # Home Assistant moves it on the same State when written again
    await refresh(hass, loaded_entry, freezer)  # a minute later, nothing new in the store
    assert hass.states.get(cost).last_reported == reported
    assert float(hass.states.get(age).state) == float(before[age].state) + 60

    _add_a_message(store_path)
    await refresh(hass, loaded_entry, freezer)
    assert float(hass.states.get(cost).state) == round(float(before[cost].state) + 0.5, 6)

    # Only an attribute changes: the problem stays on (the demo's stuck hook file), with one reason more.
    problem = "binary_sensor.openusage_ingestion_problem"
    assert hass.states.get(problem).attributes["hook_spool_stuck"]
    assert not hass.states.get(problem).attributes["corrupt_store_reset"]
    backup = store_path.with_name(store_path.name + ".corrupt.1")
    backup.write_bytes(b"")
    os.utime(backup, (NOW.timestamp(), NOW.timestamp()))
    await refresh(hass, loaded_entry, freezer)
    assert hass.states.get(problem).state == "on"
    assert hass.states.get(problem).attributes["corrupt_store_reset"]


async def test_the_changed_states_are_written_a_few_each_pass_of_the_event_loop(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, store_path: Path, freezer: FrozenDateTimeFactory
) -> None:
    """A refresh that changes many states writes them all, but no more than STATES_A_PASS in one loop pass."""
    _add_a_message(store_path)
    passes = 0

    def tick() -> None:  # once every pass of the loop
        nonlocal passes
        passes += 1
        ticker[0] = hass.loop.call_soon(tick)

    ticker = [hass.loop.call_soon(tick)]
    written: list[int] = []
    unsubscribe = hass.bus.async_listen("state_changed", callback(lambda _event: written.append(passes)))
    try:
        await refresh(hass, loaded_entry, freezer)
    finally:
        unsubscribe()
        ticker[0].cancel()
    assert len(written) > STATES_A_PASS  # a minute's figures: the tokens and cost of every window and key
    assert max(Counter(written).values()) <= STATES_A_PASS
    await _states_equal_the_core(hass, loaded_entry, store_path, NOW + timedelta(seconds=60))


async def test_an_unload_with_states_still_queued_writes_none_of_them(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    store_path: Path,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The entry unloaded right after a refresh that queued writes: no write for a removed entity, no error."""
    _add_a_message(store_path)
    freezer.tick(timedelta(seconds=60))
    cost = "sensor.openusage_cost_all_time"
    before = hass.states.get(cost).state
    await loaded_entry.runtime_data.async_refresh()  # the changed states are queued, not yet written
    assert hass.states.get(cost).state == before
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(cost).state == STATE_UNAVAILABLE
    assert "Error" not in caplog.text


async def test_midnight_moves_last_reset_of_figures_that_stay_the_same(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    """A `today` figure that is zero on both days still starts a new period at local midnight.

    This week's and this month's keep theirs (Monday 23 November, 1 November in Warsaw).
    """
    registry = er.async_get(hass)
    periods = {
        e.entity_id: state.attributes["last_reset"]
        for e in er.async_entries_for_config_entry(registry, loaded_entry.entry_id)
        if (state := hass.states.get(e.entity_id)) is not None and "last_reset" in state.attributes
    }
    assert periods["sensor.openusage_cost_this_week"] == "2026-11-22T23:00:00+00:00"
    assert periods["sensor.openusage_cost_this_month"] == "2026-10-31T23:00:00+00:00"
    assert periods["sensor.claude_code_cost_this_month"] == "2026-10-31T23:00:00+00:00"
    resetting = [
        entity_id for entity_id, at in periods.items() if at == "2026-11-22T23:00:00+00:00" and "week" not in entity_id
    ]
    before = {entity_id: hass.states.get(entity_id) for entity_id in resetting}
    freezer.tick(timedelta(hours=11, minutes=1))  # past midnight in Warsaw (UTC+1)
    await refresh(hass, loaded_entry, freezer)
    after = {entity_id: hass.states.get(entity_id) for entity_id in resetting}
    assert any(after[e].state == before[e].state for e in resetting)  # the case this test is about
    for entity_id in resetting:
        assert after[entity_id].attributes["last_reset"] == "2026-11-23T23:00:00+00:00", entity_id
    for entity_id, at in periods.items():
        if entity_id not in resetting:
            assert hass.states.get(entity_id).attributes["last_reset"] == at, entity_id
