"""Figures no agent records.

Huge, infinite, overflowing or timeless rows. Every other figure stays right, the JSON stays JSON, and the rows left out
are counted.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from custom_components.openusage.core.models import Window
from custom_components.openusage.core.reader import read_store
from custom_components.openusage.core.snapshot_json import snapshot_to_json
from tests.constants import NOW
from tests.storebuilder import limit_snapshot, message, rollup, store


def _strict_json(document: object) -> object:
    """Return the document through JSON that refuses Infinity and NaN, as Home Assistant's MQTT states do."""

    def refuse(name: str) -> object:
        raise ValueError(name)

    return json.loads(json.dumps(document), parse_constant=refuse)


async def test_rows_with_impossible_figures_are_left_out_and_counted(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="good", input_tokens=100, cost_usd=1.5)
        message(w, "2026-08-17T10:01:00Z", message_id="huge", input_tokens=10)  # made 1e308 below
        message(w, "2026-08-17T10:02:00Z", message_id="max1", input_tokens=10)
        message(w, "2026-08-17T10:03:00Z", message_id="max2", input_tokens=10)
        message(w, "2026-08-17T10:04:00Z", message_id="rich", cost_usd=1.0)
        message(w, "2026-08-17T10:05:00Z", message_id="text", input_tokens=10)
        message(w, "2026-08-17T10:06:00Z", message_id="minus", output_tokens=10)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE usage_events SET input_tokens = 1e308 WHERE message_id = 'huge'")
    conn.execute("UPDATE usage_events SET input_tokens = 9223372036854775807 WHERE message_id LIKE 'max%'")
    conn.execute("UPDATE usage_events SET cost_usd = 9.3e9 WHERE message_id = 'rich'")  # past 2^63 nano-dollars
    conn.execute("UPDATE usage_events SET input_tokens = 'lots' WHERE message_id = 'text'")
    conn.execute("UPDATE usage_events SET output_tokens = -10 WHERE message_id = 'minus'")
    conn.commit()
    conn.close()
    snapshot = await read_store(db, NOW, ZoneInfo("UTC"))
    today = snapshot.usage.totals[Window.TODAY]
    assert today.input_tokens == 100
    assert today.cost_usd == 1.5
    assert today.messages == 1
    assert snapshot.store.rows_left_out == 6
    document = _strict_json(snapshot_to_json(snapshot))
    assert document["store"]["rows_left_out"] == 6  # type: ignore[index]


async def test_a_row_without_a_time_neither_crashes_nor_pulls_the_rollup_in(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-10T10:00:00Z", message_id="old", cost_usd=40.0)
        message(w, "2026-08-17T10:00:00Z", message_id="new", cost_usd=6.9)
        message(w, "2026-08-17T11:00:00Z", message_id="blank", cost_usd=1.0)
        message(w, "2026-08-17T11:00:00Z", message_id="null", cost_usd=1.0)
        message(w, "2026-08-17T11:00:00Z", message_id="blob", cost_usd=1.0)
    rollup(db, watermark="2026-08-16", prune_before="2026-08-11T00:00:00Z")  # 08-10 only in the rollup
    before = (await read_store(db, NOW, ZoneInfo("UTC"))).usage.totals[Window.ALL].cost_usd
    conn = sqlite3.connect(db)
    conn.execute("UPDATE usage_events SET occurred_at = '' WHERE message_id = 'blank'")
    # The stored form's bytes, as a BLOB: not a time either.
    conn.execute("UPDATE usage_events SET occurred_at = CAST(occurred_at AS BLOB) WHERE message_id = 'blob'")
    # Tables with the right names but not openusage's constraints: a NULL time.
    conn.execute("CREATE TABLE loose AS SELECT * FROM usage_events")
    conn.execute("DROP TABLE usage_events")
    conn.execute("ALTER TABLE loose RENAME TO usage_events")
    conn.execute("UPDATE usage_events SET occurred_at = NULL WHERE message_id = 'null'")
    conn.commit()
    conn.close()
    snapshot = await read_store(db, NOW, ZoneInfo("UTC"))
    assert before == 40.0 + 6.9 + 3.0
    assert snapshot.usage.totals[Window.ALL].cost_usd == 40.0 + 6.9  # not the rollup added on top again
    assert snapshot.store.oldest_raw_day == date(2026, 8, 17)
    assert snapshot.store.rows_left_out == 3


async def test_a_quota_whose_ratio_overflows_is_unknown_not_infinite(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    metrics = {"tiny_limit": {"used": 1e308, "limit": 1e-308, "unit": "requests"},
               "usage_five_hour": {"used": 1e308, "remaining": -1e308, "unit": "%"}}  # fmt: skip
    with store(db) as w:
        limit_snapshot(w, "2026-08-17T11:00:00Z", "zai", "zai", {"snapshot": {"metrics": metrics}})
    snapshot = await read_store(db, NOW, ZoneInfo("UTC"))
    (quota,) = snapshot.quotas.values()
    assert quota.metrics["tiny_limit"].used_percent is None
    document = _strict_json(snapshot_to_json(snapshot))
    assert document["quotas"][0]["metrics"]["tiny_limit"]["used"] == 1e308  # type: ignore[index]
