"""Long-term statistics against a real recorder: backfill, hourly update, restarts, pruning, removal."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.components.recorder.models import StatisticData, StatisticMeanType, StatisticMetaData
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_metadata,
    statistics_during_period,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import async_wait_recording_done

from custom_components.openusage.const import CONF_PATH, DOMAIN
from custom_components.openusage.statistics import async_update_statistics, statistic_id
from tests.storebuilder import message, rollup, store

ENTRY_ID = "01JSTATSENTRY000000000000"


def _store(path: Path) -> None:
    with store(path) as w:
        # 2026-07-30 will be pruned: it survives only in the rollup.
        message(w, "2026-07-30T09:00:00Z", message_id="old1", cost_usd=5.0, input_tokens=500)
        message(w, "2026-07-30T15:00:00Z", message_id="old2", cost_usd=2.5, input_tokens=250)
        # 2026-08-03: two messages at 10:xx (one delivered twice), one at 12:xx, an error and a tool call.
        message(w, "2026-08-03T10:15:00Z", message_id="a", cost_usd=1.0, input_tokens=100, workspace_id="p")
        message(w, "2026-08-03T10:15:01Z", message_id="a", cost_usd=1.0, input_tokens=100, source_channel="hook")
        message(w, "2026-08-03T10:45:00Z", message_id="b", cost_usd=2.0, input_tokens=200, source_system="codex",
                provider_id="codex", account_id="codex-cli")  # fmt: skip
        message(w, "2026-08-03T12:00:00Z", message_id="c", cost_usd=4.0, input_tokens=400)
        message(w, "2026-08-03T12:30:00Z", message_id="e", cost_usd=9.0, input_tokens=900, status="error")
        w.add(source_system="claude_code", occurred_at="2026-08-03T12:31:00Z", event_type="tool_usage",
              tool_call_id="t", tool_name="bash", requests=1)  # fmt: skip
    rollup(path, watermark="2026-08-02", prune_before="2026-08-01T00:00:00Z")


async def _rows(hass: HomeAssistant, sid: str) -> list[tuple[datetime, float, float]]:
    await async_wait_recording_done(hass)
    stats = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass, datetime(2026, 1, 1, tzinfo=UTC), None, {sid}, "hour", None, {"state", "sum"},
    )  # fmt: skip
    return [
        (datetime.fromtimestamp(r["start"], UTC), round(r["state"], 6), round(r["sum"], 6)) for r in stats.get(sid, [])
    ]


def _prepared_store(hass: HomeAssistant, tmp_path: Path, freezer: FrozenDateTimeFactory) -> Path:
    freezer.move_to("2026-08-03T13:30:00+00:00")
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    path = tmp_path / "telemetry.db"
    _store(path)
    return path


async def _set_up(hass: HomeAssistant, path: Path) -> MockConfigEntry:
    """Return an entry of config entry version 1.1 (it is migrated on setup), set up with its statistics imported."""
    config_entry = MockConfigEntry(domain=DOMAIN, data={CONF_PATH: str(path)}, entry_id=ENTRY_ID)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    await async_wait_recording_done(hass)
    return config_entry


@pytest.fixture
async def entry(
    recorder_mock: Recorder, hass: HomeAssistant, tmp_path: Path, freezer: FrozenDateTimeFactory
) -> MockConfigEntry:
    """Return an entry of the store, set up with its statistics imported."""
    return await _set_up(hass, _prepared_store(hass, tmp_path, freezer))


def _h(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def test_backfill_from_the_rollup_and_raw_hours(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    cost = statistic_id(entry, "total", "cost")
    assert cost == "openusage:total_cost"  # the first store's ids are the ones the shipped dashboard names
    assert await _rows(hass, cost) == [
        (_h("2026-07-30T00:00:00"), 7.5, 7.5),  # a pruned day: one daily value from the rollup
        (_h("2026-08-03T10:00:00"), 3.0, 10.5),  # the hook and JSONL copies of "a" count once
        (_h("2026-08-03T12:00:00"), 4.0, 14.5),  # the error does not count; 13:00 is not complete yet
    ]
    assert await _rows(hass, statistic_id(entry, "total", "tokens")) == [
        (_h("2026-07-30T00:00:00"), 750.0, 750.0),
        (_h("2026-08-03T10:00:00"), 300.0, 1050.0),
        (_h("2026-08-03T12:00:00"), 400.0, 1450.0),
    ]
    assert [r[1] for r in await _rows(hass, statistic_id(entry, "total", "requests"))] == [2.0, 2.0, 1.0]
    assert await _rows(hass, statistic_id(entry, "codex", "cost")) == [(_h("2026-08-03T10:00:00"), 2.0, 2.0)]
    assert [r[1] for r in await _rows(hass, statistic_id(entry, "claude_code", "cost"))] == [7.5, 1.0, 4.0]
    metadata = await get_instance(hass).async_add_executor_job(get_metadata, hass)
    assert metadata[cost][1]["name"] == "OpenUsage cost"
    assert metadata["openusage:claude_code_tokens"][1]["name"] == "Claude Code tokens"


async def test_hourly_update_restart_and_pruning(
    hass: HomeAssistant, entry: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    cost = statistic_id(entry, "total", "cost")
    path = Path(entry.data[CONF_PATH])
    conn = sqlite3.connect(path, isolation_level=None)
    from openusage_demo import EventWriter

    writer = EventWriter(conn)
    conn.execute("BEGIN")
    message(writer, "2026-08-03T13:20:00Z", message_id="d", cost_usd=0.5, input_tokens=50)
    writer.flush()
    conn.execute("COMMIT")
    freezer.move_to("2026-08-03T14:05:00+00:00")
    assert await async_update_statistics(hass, entry) > 0
    rows = await _rows(hass, cost)
    assert rows[-1] == (_h("2026-08-03T13:00:00"), 0.5, 15.0)
    # Nothing new: nothing written, however often it runs, and a reload adds nothing either.
    assert await async_update_statistics(hass, entry) == 0
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await _rows(hass, cost) == rows
    # openusage prunes the raw rows of 08-03: the imported hours stay as they were.
    conn.execute("DELETE FROM usage_events WHERE occurred_at < '2026-08-03T13'")
    conn.close()
    freezer.move_to("2026-08-03T15:05:00+00:00")
    assert await async_update_statistics(hass, entry) == 0
    assert await _rows(hass, cost) == rows


async def test_removing_the_entry_removes_its_statistics(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    cost = statistic_id(entry, "total", "cost")
    assert await _rows(hass, cost)
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert await _rows(hass, cost) == []


async def test_statistics_imported_under_the_entry_id_keep_their_history(
    recorder_mock: Recorder, hass: HomeAssistant, tmp_path: Path, freezer: FrozenDateTimeFactory
) -> None:
    """Statistics of version 1.1 entries move to the stable id, and the import goes on from their last hour.

    Such entries imported `openusage:<entry id>_total_cost`.
    """
    path = _prepared_store(hass, tmp_path, freezer)
    old = "openusage:01jstatsentry000000000000_total_cost"
    metadata = {"has_sum": True, "mean_type": StatisticMeanType.NONE, "name": "OpenUsage cost (all providers)",
                "source": DOMAIN, "statistic_id": old, "unit_of_measurement": "USD"}  # fmt: skip
    if "unit_class" in StatisticMetaData.__annotations__:
        metadata["unit_class"] = None
    async_add_external_statistics(hass, metadata, [StatisticData(start=_h("2026-07-30T00:00:00"), state=7.5, sum=7.5)])
    await async_wait_recording_done(hass)
    await _set_up(hass, path)
    assert await _rows(hass, old) == []
    assert await _rows(hass, "openusage:total_cost") == [
        (_h("2026-07-30T00:00:00"), 7.5, 7.5),
        (_h("2026-08-03T10:00:00"), 3.0, 10.5),
        (_h("2026-08-03T12:00:00"), 4.0, 14.5),
    ]
