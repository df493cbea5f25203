"""The calendar windows, this week and this month (metrics.md §1).

Calendar bounds in the local zone across DST changes, and the seam with openusage's rollup days. Every expected figure
is worked out by hand.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from custom_components.openusage.core.models import Breakdown, Window
from custom_components.openusage.core.reader import ReadOptions, StoreReader, read_store
from tests.constants import UTC_ZONE as UTC
from tests.constants import WARSAW
from tests.storebuilder import message, rollup, store, tool


async def _totals(path: Path, now: str, zone: ZoneInfo) -> dict[Window, int]:
    usage = (await read_store(path, datetime.fromisoformat(now), zone, ReadOptions())).usage
    return {w: usage.totals[w].input_tokens for w in (Window.WEEK, Window.MONTH)}


async def test_month_and_week_start_at_local_midnight_after_summer_time_ends(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        # Summer time ended on 25 October: 1 November begins at 23:00 UTC the day before (CET, +1).
        message(w, "2026-10-31T22:59:59.999Z", message_id="october", input_tokens=1)
        message(w, "2026-10-31T23:00:00Z", message_id="november", input_tokens=10)
        # Monday 2 November begins at 23:00 UTC on Sunday.
        message(w, "2026-11-01T22:59:59.5Z", message_id="sunday", input_tokens=100)
        message(w, "2026-11-01T23:00:00Z", message_id="monday", input_tokens=1000)
    assert await _totals(db, "2026-11-04T12:00:00+00:00", WARSAW) == {Window.WEEK: 1000, Window.MONTH: 1110}
    # In UTC the same rows fall otherwise: the month starts at 1 November 00:00, the week at 2 November 00:00.
    assert await _totals(db, "2026-11-04T12:00:00+00:00", UTC) == {Window.WEEK: 0, Window.MONTH: 1100}


async def test_month_and_week_start_at_local_midnight_after_summer_time_begins(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        # Summer time began on Sunday 29 March at 01:00 UTC: Monday 30 March begins at 22:00 UTC (CEST, +2).
        message(w, "2026-03-29T21:59:59Z", message_id="sunday", input_tokens=1)
        message(w, "2026-03-29T22:00:00Z", message_id="monday", input_tokens=10)
        message(w, "2026-03-31T21:59:59Z", message_id="march", input_tokens=100)
        message(w, "2026-03-31T22:00:00Z", message_id="april", input_tokens=1000)
    assert await _totals(db, "2026-04-01T09:00:00+00:00", WARSAW) == {Window.WEEK: 1110, Window.MONTH: 1000}


async def test_a_new_month_on_new_year_s_eve_in_another_zone(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-12-31T14:59:59Z", message_id="december", input_tokens=1)
        message(w, "2026-12-31T15:00:00Z", message_id="january", input_tokens=10)  # 1 January 00:00 in Tokyo
    # Thursday 1 January 2027 in Tokyo: its week began on Monday 28 December.
    assert await _totals(db, "2026-12-31T20:00:00+00:00", ZoneInfo("Asia/Tokyo")) == {Window.WEEK: 11, Window.MONTH: 10}
    assert await _totals(db, "2026-12-31T20:00:00+00:00", UTC) == {Window.WEEK: 11, Window.MONTH: 11}


def _history(w) -> None:
    """31 July (before the month), 1 August (to be pruned), 2 August (partly pruned), 3 and 17 August (kept)."""
    message(w, "2026-07-31T10:00:00Z", message_id="july", input_tokens=5000, cost_usd=50.0)
    for i, at in enumerate(("2026-08-01T10:00:00Z", "2026-08-01T11:00:00Z")):
        message(w, at, message_id=f"a{i}", input_tokens=100, cost_usd=1.0, agent_name="cursor")
    tool(w, "2026-08-01T12:00:00Z", "bash", tool_call_id="a-t")
    message(w, "2026-08-02T01:00:00Z", message_id="b0", input_tokens=10, cost_usd=0.1)
    message(w, "2026-08-02T23:00:00Z", message_id="b1", input_tokens=20, cost_usd=0.2)
    message(w, "2026-08-03T10:00:00Z", message_id="c0", input_tokens=1, cost_usd=0.01)
    message(w, "2026-08-17T10:00:00Z", message_id="d0", input_tokens=7000, cost_usd=7.0)


async def test_a_month_that_reaches_back_past_the_oldest_raw_day_takes_rollup_days(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        _history(w)
    rollup(db, watermark="2026-08-16", prune_before="2026-08-02T12:00:00Z")  # day B = 2 August, partly pruned
    usage = (await read_store(db, datetime.fromisoformat("2026-08-17T12:00:00+00:00"), UTC, ReadOptions())).usage
    month, week = usage.totals[Window.MONTH], usage.totals[Window.WEEK]
    # August: 1 August from the rollup (200), 2 August from the rollup as well (3 rows rolled up > 1 raw row
    # left: 30), then raw rows (1 + 7000). 31 July is in `all` only.
    assert month.input_tokens == 200 + 30 + 1 + 7000
    assert month.cost_usd == pytest.approx(2.0 + 0.3 + 0.01 + 7.0)
    assert month.tool_calls == 1
    assert month.messages == 2 + 2 + 1 + 1
    assert month.sessions == 1  # raw rows alone carry sessions: c0 and d0, both s1
    assert usage.totals[Window.ALL].input_tokens == 5000 + 200 + 30 + 1 + 7000
    # Monday 17 August's week starts after day B: raw rows alone.
    assert week.input_tokens == 7000
    # The rollup has no agents: the month's agents are the raw rows' (cursor's rows were pruned).
    assert set(usage.breakdowns[Breakdown.AGENT]) == {"claude_code"}
    # ...and day B's raw row (b1, 20 tokens) left the month with day B, under its agent too.
    assert usage.breakdowns[Breakdown.AGENT]["claude_code"][Window.MONTH].input_tokens == 1 + 7000
    assert usage.breakdowns[Breakdown.PROVIDER]["claude_code"][Window.MONTH].input_tokens == 7231


async def test_a_whole_oldest_raw_day_comes_from_raw_rows_in_the_month_too(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        _history(w)
    rollup(db, watermark="2026-08-16", prune_before="2026-08-02T00:00:00Z")  # 1 August gone, 2 August whole
    totals = await _totals(db, "2026-08-17T12:00:00+00:00", UTC)
    assert totals == {Window.WEEK: 7000, Window.MONTH: 200 + 30 + 1 + 7000}


async def test_a_month_that_starts_after_the_oldest_raw_day_takes_raw_rows_alone(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        _history(w)
        message(w, "2026-09-01T00:00:00Z", message_id="september", input_tokens=3)
    rollup(db, watermark="2026-08-16", prune_before="2026-08-02T12:00:00Z")
    # Wednesday 2 September: the month and the week (from Monday 31 August) hold the raw rows since.
    assert await _totals(db, "2026-09-02T12:00:00+00:00", UTC) == {Window.WEEK: 3, Window.MONTH: 3}


async def test_kept_figures_move_to_a_new_month_and_week_without_a_rebuild(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        for day, tokens in (("07-31", 1), ("08-20", 10), ("08-31", 100), ("09-01", 1000), ("09-02", 10000)):
            message(w, f"2026-{day}T10:00:00Z", message_id=day, input_tokens=tokens)
    rollup(db, watermark="2026-08-19", prune_before="2026-08-01T00:00:00Z")  # 31 July in the rollup only
    reader = StoreReader(db)  # the kept sums move; nothing is rebuilt
    try:
        for now, week, month in (
            # Monday 31 August (rows stamped later count, as in every window)
            ("2026-08-31T12:00:00+00:00", 100 + 1000 + 10000, 10 + 100 + 1000 + 10000),
            ("2026-09-02T12:00:00+00:00", 100 + 1000 + 10000, 1000 + 10000),  # Wednesday 2 September
            ("2026-09-08T12:00:00+00:00", 0, 1000 + 10000),  # the next Tuesday
        ):
            at = datetime.fromisoformat(now)
            kept = (await reader.refresh(at, UTC)).usage
            fresh = (await read_store(db, at, UTC)).usage
            assert (kept.totals[Window.WEEK].input_tokens, kept.totals[Window.MONTH].input_tokens) == (week, month)
            assert kept == fresh
    finally:
        await reader.close()
