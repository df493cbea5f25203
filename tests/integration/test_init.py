"""Setup, unload, and the store going away and coming back."""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import persistent_notification
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

import custom_components.openusage as integration
from custom_components.openusage.const import CONF_BREAKDOWN_SENSORS, CONF_PATH, CONF_STATISTIC_PREFIX, DOMAIN
from custom_components.openusage.coordinator import repair_issue_id
from openusage_demo import generate_demo_store
from tests.counting import count_rebuilds

from .conftest import NOW

COST = "sensor.openusage_cost_today"


async def poll(hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory, minutes: float = 1) -> None:
    """Move the clock on by `minutes` and let the entry poll."""
    freezer.tick(timedelta(minutes=minutes))
    await entry.runtime_data.async_refresh()
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_setup_and_unload(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert float(hass.states.get(COST).state) > 0
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    assert loaded_entry.state is ConfigEntryState.NOT_LOADED
    assert hass.states.get(COST).state == STATE_UNAVAILABLE
    assert await hass.config_entries.async_setup(loaded_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert loaded_entry.state is ConfigEntryState.LOADED


async def test_missing_store_at_start_retries(
    hass: HomeAssistant, config_entry: MockConfigEntry, store_path: Path, allow_store: None
) -> None:
    hidden = store_path.with_name("hidden.db")
    store_path.rename(hidden)
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert "no such file" in (config_entry.reason or "")


async def test_not_an_openusage_store_is_an_error_with_a_repair(
    hass: HomeAssistant, config_entry: MockConfigEntry, store_path: Path, allow_store: None
) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(store_path)
    conn.execute("CREATE TABLE unrelated (x)")
    conn.commit()
    conn.close()
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    issue = ir.async_get(hass).async_get_issue(DOMAIN, repair_issue_id(config_entry))
    assert issue is not None
    assert issue.translation_key == "not_openusage"
    assert issue.severity is ir.IssueSeverity.ERROR


async def test_store_goes_away_and_comes_back(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    store_path: Path,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = hass.states.get(COST).state
    issues = ir.async_get(hass)
    moved = store_path.with_name("moved.db")
    store_path.rename(moved)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await poll(hass, loaded_entry, freezer)
        assert hass.states.get(COST).state == STATE_UNAVAILABLE
        assert issues.async_get_issue(DOMAIN, repair_issue_id(loaded_entry)) is None  # not yet: a grace period
        await poll(hass, loaded_entry, freezer, minutes=3)
        await poll(hass, loaded_entry, freezer, minutes=3)
        issue = issues.async_get_issue(DOMAIN, repair_issue_id(loaded_entry))
        assert issue is not None
        assert issue.translation_key == "store_unreadable"
        assert issue.translation_placeholders["cause"] == "no such file"  # the path is {path}, said once
        moved.rename(store_path)
        await poll(hass, loaded_entry, freezer)
        await poll(hass, loaded_entry, freezer)
    assert hass.states.get(COST).state == before
    assert issues.async_get_issue(DOMAIN, repair_issue_id(loaded_entry)) is None
    unavailable = [r for r in caplog.records if "openusage" in r.name and "no such file" in r.getMessage()]
    recovered = [r for r in caplog.records if "openusage" in r.name and "recovered" in r.getMessage()]
    assert len(unavailable) == 1  # logged once while down, however many polls fail
    assert len(recovered) == 1


async def test_removing_the_entry_clears_its_repair(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, store_path: Path, freezer: FrozenDateTimeFactory
) -> None:
    store_path.rename(store_path.with_name("gone.db"))
    await poll(hass, loaded_entry, freezer)
    await poll(hass, loaded_entry, freezer, minutes=6)
    assert ir.async_get(hass).async_get_issue(DOMAIN, repair_issue_id(loaded_entry)) is not None
    await hass.config_entries.async_remove(loaded_entry.entry_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, repair_issue_id(loaded_entry)) is None


async def test_an_entry_of_version_1_1_gets_its_title_statistics_and_entity_ids_moved(
    hass: HomeAssistant, store_path: Path, allow_store: None, frozen: None
) -> None:
    """An entry made before names were people's names.

    Its title was the store's path, and Home Assistant named its entities after devices called
    "claude_code claude-code" and per-key sensors "gpt-5 cost today".
    """
    entry_id = "01JOPENUSAGEOLDENTRY00000"
    entry = MockConfigEntry(domain=DOMAIN, title=str(store_path), data={CONF_PATH: str(store_path)},
                            unique_id=str(store_path), entry_id=entry_id, version=1, minor_version=1,
                            options={CONF_BREAKDOWN_SENSORS: ["model"]})  # fmt: skip
    entry.add_to_hass(hass)
    devices, entities = dr.async_get(hass), er.async_get(hass)
    claude = devices.async_get_or_create(
        config_entry_id=entry_id, identifiers={(DOMAIN, f"{entry_id}_claude_code/claude-code")}
    )
    opencode = devices.async_get_or_create(
        config_entry_id=entry_id, identifiers={(DOMAIN, f"{entry_id}_claude_code/opencode")}
    )
    hub = devices.async_get_or_create(config_entry_id=entry_id, identifiers={(DOMAIN, f"{entry_id}_hub")})
    old = {
        "sensor.claude_code_claude_code_5_hour_usage": (claude, "claude_code/claude-code_quota_usage_five_hour"),
        "sensor.claude_code_opencode_cost_today": (opencode, "claude_code/opencode_cost_today"),
        "sensor.openusage_claude_sonnet_4_5_cost_today": (hub, "hub_model_claude_sonnet_4_5_cost_today"),
        "sensor.my_own_name": (claude, "claude_code/claude-code_quota_usage_seven_day"),  # a user's choice stays
    }
    for entity_id, (device, unique) in old.items():
        entities.async_get_or_create("sensor", DOMAIN, f"{entry_id}_{unique}", config_entry=entry,
                                     device_id=device.id, suggested_object_id=entity_id.partition(".")[2])  # fmt: skip
    assert await hass.config_entries.async_setup(entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert entry.title == "OpenUsage"
    assert entry.unique_id is None  # it was the path, which a reconfigure changes
    assert (entry.version, entry.minor_version) == (1, 2)
    assert entry.data[CONF_STATISTIC_PREFIX] == ""
    moved = {
        e.unique_id.removeprefix(f"{entry_id}_"): e.entity_id
        for e in er.async_entries_for_config_entry(entities, entry_id)
    }
    assert moved["claude_code/claude-code_quota_usage_five_hour"] == "sensor.claude_code_5_hour_usage"
    assert moved["claude_code/opencode_cost_today"] == "sensor.claude_code_opencode_cost_today"
    assert moved["hub_model_claude_sonnet_4_5_cost_today"] == "sensor.openusage_model_cost_today_claude_sonnet_4_5"
    assert moved["claude_code/claude-code_quota_usage_seven_day"] == "sensor.my_own_name"
    assert float(hass.states.get("sensor.claude_code_5_hour_usage").state) > 0
    assert devices.async_get(claude.id).name == "Claude Code"
    assert devices.async_get(opencode.id).name == "Claude Code (opencode)"
    assert devices.async_get(claude.id).manufacturer == "Anthropic"


@pytest.fixture
def big_store(tmp_path: Path) -> Path:
    """Return a store whose first read takes a while (a second or more here)."""
    return generate_demo_store(tmp_path / "openusage", days=60, events=60_000, seed=5, now=NOW)


async def test_setup_returns_before_the_first_read_and_tells_that_it_runs(
    hass: HomeAssistant, big_store: Path, allow_store: None, frozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(integration, "FIRST_READ_NOTICE_AFTER", 0.0)  # tell at once, not after 2 s
    entry = MockConfigEntry(domain=DOMAIN, title="OpenUsage", data={CONF_PATH: str(big_store), CONF_STATISTIC_PREFIX: ""},
                            minor_version=2)  # fmt: skip
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED
    assert not entry.runtime_data.has_data  # the setup did not wait for the figures
    assert hass.states.get(COST) is None  # entities come with them
    notice = f"{DOMAIN}_first_read_{entry.entry_id}"
    async_fire_time_changed(hass)  # the notice's moment has come, the read still runs
    assert notice in persistent_notification._async_get_or_create_notifications(hass)
    with pytest.raises(ServiceValidationError) as err:  # the action says why it has nothing yet
        await hass.services.async_call(DOMAIN, "get_usage", {"window": "today"}, blocking=True, return_response=True)
    assert err.value.translation_key == "first_read_running"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.runtime_data.has_data
    assert float(hass.states.get(COST).state) > 0
    assert notice not in persistent_notification._async_get_or_create_notifications(hass)
    assert "Claude Code" in {d.name for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)}


async def test_an_unload_during_the_first_read_stops_it_cleanly(
    hass: HomeAssistant, big_store: Path, allow_store: None, frozen: None
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, title="OpenUsage", data={CONF_PATH: str(big_store), CONF_STATISTIC_PREFIX: ""},
                            minor_version=2)  # fmt: skip
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    coordinator = entry.runtime_data
    assert not coordinator.has_data
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert coordinator.reader._db is None  # the reader let go of its mirror
    assert not coordinator.has_data
    # ...and it starts again from scratch.
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert float(hass.states.get(COST).state) > 0


async def test_the_entry_keeps_its_mirror_between_starts_and_removes_it_with_itself(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Path(hass.config.path(".cache", DOMAIN, f"{loaded_entry.entry_id}.mirror.db"))
    before = hass.states.get(COST).state
    rebuilds = count_rebuilds(monkeypatch)
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert cache.exists()
    assert rebuilds == []  # the restart took up the kept mirror: it read only what changed
    assert hass.states.get(COST).state == before
    assert await hass.config_entries.async_remove(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert not cache.exists()


async def test_no_mirror_is_kept_when_home_assistant_s_folder_is_inside_the_state_folder(
    hass: HomeAssistant, config_entry: MockConfigEntry, allow_store: None, frozen: None, state_dir: Path
) -> None:
    hass.config.config_dir = str(state_dir / "home-assistant")
    before = sorted(p.name for p in state_dir.iterdir())
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert hass.states.get(COST) is not None
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    assert sorted(p.name for p in state_dir.iterdir()) == before  # nothing made in openusage's folder
