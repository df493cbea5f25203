"""Stores with openusage's table names but not its rules, and paths that are not UTF-8.

The rules broken are NULL times, numbers where text belongs and bytes that are not UTF-8: the publisher and Home
Assistant keep running and show what can be shown.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.openusage.const import CONF_PATH, CONF_STATISTIC_PREFIX, DOMAIN
from custom_components.openusage.core.models import Window
from custom_components.openusage.core.reader import read_store
from tests.mqtt.broker import Broker
from tests.storebuilder import limit_snapshot, message, store

REPO = Path(__file__).parents[2]
NOW = datetime.now(UTC).replace(microsecond=0)


def loose_store(folder: Path) -> Path:
    """Openusage's tables, rebuilt without its constraints, holding what no daemon writes."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "telemetry.db"
    at = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    with store(db) as w:
        message(w, at, message_id="m", input_tokens=5)
        limit_snapshot(w, at, "zai", "zai", {"snapshot": {"status": "OK", "metrics": {"x": {"used": 1, "unit": "%"}}}})
        limit_snapshot(w, at, "codex", "a", {"snapshot": {"status": "OK"}})
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE loose AS SELECT * FROM usage_events")
    conn.execute("DROP TABLE usage_events")
    conn.execute("ALTER TABLE loose RENAME TO usage_events")
    conn.execute("UPDATE usage_events SET provider_id = 5, account_id = 7 WHERE provider_id = 'zai'")
    conn.execute("UPDATE usage_events SET occurred_at = NULL WHERE provider_id = 'codex'")
    conn.execute("UPDATE usage_events SET session_id = 3, model_raw = 4.5, agent_name = x'00ff' WHERE message_id = 'm'")
    conn.commit()
    conn.close()
    return db


async def test_the_core_reads_what_can_be_read(tmp_path: Path) -> None:
    snapshot = await read_store(loose_store(tmp_path), NOW, ZoneInfo("UTC"))
    assert snapshot.usage.totals[Window.TODAY].input_tokens == 5
    assert {(q.provider_id, q.account_id) for q in snapshot.quotas.values()} == {("5", "7"), ("codex", "a")}
    assert "\ufffd" in next(iter(snapshot.usage.breakdowns["agent"]))  # type: ignore[index]


def test_the_publisher_publishes_such_stores_and_non_utf8_paths(tmp_path: Path, broker: Broker) -> None:
    for folder in (tmp_path / "loose", tmp_path / os.fsdecode(b"\xffstate")):
        db = loose_store(folder)
        result = subprocess.run(
            [sys.executable, "-m", "custom_components.openusage.core.cli", "publish", "--db", os.fsencode(db),
             "--broker", broker.url, "--node-id", "loose", "--once"],
            capture_output=True, cwd=REPO, check=False, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert b"Traceback" not in result.stderr


async def test_home_assistant_loads_such_a_store(hass: HomeAssistant, tmp_path: Path) -> None:
    db = loose_store(tmp_path / "state")
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    entry = MockConfigEntry(domain=DOMAIN, title="OpenUsage", data={CONF_PATH: str(db), CONF_STATISTIC_PREFIX: ""},
                            minor_version=2)  # fmt: skip
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.openusage_tokens_today").state == "5"
