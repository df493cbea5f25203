"""Time parsing, window bounds and the schema's release ranges."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from custom_components.openusage.core import mirror
from custom_components.openusage.core.clock import format_utc, local_midnight, parse_time, sort_key
from custom_components.openusage.core.schema import create_indexes, create_schema, release_range
from openusage_demo import EventWriter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-08-17T11:02:03Z", "2026-08-17T11:02:03Z"),
        ("2026-08-17T11:02:03.123456789Z", "2026-08-17T11:02:03.123456Z"),
        ("2026-08-17T13:02:03+02:00", "2026-08-17T11:02:03Z"),
        ("2026-08-17 11:02:03", "2026-08-17T11:02:03Z"),
        ("2026-08-17", "2026-08-17T00:00:00Z"),
        ("1786964523", "2026-08-17T11:02:03Z"),
        ("1786964523000", "2026-08-17T11:02:03Z"),
        ("1786964523000000", "2026-08-17T11:02:03Z"),
        (1786964523, "2026-08-17T11:02:03Z"),
        (1786964523.5, "2026-08-17T11:02:03.5Z"),
    ],
)
def test_parse_time_forms(text: object, expected: str) -> None:
    parsed = parse_time(text)
    assert parsed is not None
    assert format_utc(parsed) == expected


@pytest.mark.parametrize("text", ["", "  ", "soon", None, True, [], "2026-13-45", "99999999999999999999"])
def test_parse_time_rejects(text: object) -> None:
    assert parse_time(text) is None


def test_sort_key_orders_fractions_and_whole_seconds() -> None:
    stamps = ["2026-08-17T11:00:00.5Z", "2026-08-17T11:00:00Z", "2026-08-17T11:00:00.05Z", "2026-08-17T10:59:59.999Z"]
    assert sorted(stamps, key=sort_key) == [
        "2026-08-17T10:59:59.999Z", "2026-08-17T11:00:00Z", "2026-08-17T11:00:00.05Z", "2026-08-17T11:00:00.5Z"
    ]  # fmt: skip
    assert sorted(stamps) != sorted(stamps, key=sort_key)  # plain text order is wrong here


def test_local_midnight_on_a_day_whose_midnight_is_skipped() -> None:
    from zoneinfo import ZoneInfo

    # Chile springs forward at 00:00 on 2026-09-06: the day starts at 01:00 local, 04:00 UTC.
    now = datetime(2026, 9, 6, 15, tzinfo=UTC)
    assert local_midnight(now, ZoneInfo("America/Santiago")) == datetime(2026, 9, 6, 4, tzinfo=UTC)


def test_release_ranges() -> None:
    assert release_range({"usage_events", "usage_raw_events"}) == "0.5.0-0.6.4"
    assert release_range({"usage_events", "_migrations"}) == "0.6.5-0.13.x"
    assert release_range({"usage_events", "_migrations", "balance_observations"}) == "0.14.0-0.21.x"
    assert release_range({"usage_events", "daemon_meta", "usage_rollup_daily"}) == ">=0.22.0"


@pytest.mark.parametrize("rows", [0, 2000])
def test_the_oldest_usage_row_is_found_through_the_time_index(tmp_path: Path, rows: int) -> None:
    """Every refresh asks for the store's oldest placeable row: a walk of the time index, not a sort of every row.

    SQLite 3.53 reads and sorts every row (16 s at 1,000,000 rows) unless the time's bounds are spelled out.
    """
    path = tmp_path / "telemetry.db"
    conn = sqlite3.connect(path)
    create_schema(conn)
    writer = EventWriter(conn)
    for i in range(rows):
        writer.add(source_system="claude_code", occurred_at=f"2026-08-{1 + i % 28:02d}T10:00:00Z", message_id=f"m{i}",
                   dedup_key=f"k{i}")  # fmt: skip
    writer.flush()
    conn.commit()
    plan = [detail for *_ids, detail in conn.execute(f"EXPLAIN QUERY PLAN {mirror._TOP_AND_OLDEST_SQL}")]
    conn.close()
    assert any("USING INDEX idx_usage_events_occurred_at" in detail for detail in plan), plan
    assert not any("TEMP B-TREE" in detail for detail in plan), plan


def test_an_epoch_number_before_any_date_is_no_time() -> None:
    assert parse_time(-1e20) is None


def test_a_bulk_load_adds_the_indexes_it_skipped() -> None:
    def indexes(conn: sqlite3.Connection) -> set[str]:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql > ''")}

    with closing(sqlite3.connect(":memory:")) as full, closing(sqlite3.connect(":memory:")) as bulk:
        create_schema(full)
        create_schema(bulk, indexes=False)
        assert "idx_usage_events_occurred_at" in indexes(full) - indexes(bulk)
        create_indexes(bulk)
        assert indexes(bulk) == indexes(full)
