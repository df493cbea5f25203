"""Every usage rule of metrics.md §1–§3 on small hand-made stores; expected figures by hand."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from custom_components.openusage.core.models import Breakdown, Window
from custom_components.openusage.core.reader import ReadOptions, merge_links, read_store
from tests.constants import NOW, WARSAW
from tests.constants import UTC_ZONE as UTC
from tests.storebuilder import message, rollup, store, tool


async def figures(path: Path, now: datetime = NOW, zone: ZoneInfo = UTC, **options):
    """Return the usage figures of the store at `path` at `now` in `zone`."""
    return (await read_store(path, now, zone, ReadOptions(**options))).usage


async def test_same_message_through_hook_and_jsonl_counts_once_and_the_hook_row_wins(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="m1", workspace_id="api", input_tokens=100, output_tokens=10)
        message(w, "2026-08-17T10:00:01Z", message_id="m1", workspace_id=None, source_channel="hook",
                input_tokens=120, output_tokens=12, requests=1)  # fmt: skip
        message(w, "2026-08-17T10:05:00Z", message_id="m2", input_tokens=7)
    usage = await figures(db)
    today = usage.totals[Window.TODAY]
    assert today.messages == 2
    assert today.input_tokens == 127  # 120 from the hook row, 7 from m2; a plain SUM would say 227
    assert today.output_tokens == 12
    assert today.requests == 2


async def test_codex_messages_deduplicate_by_turn_id(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        for msg_id in ("a", "b"):  # two rows, different message ids, same codex turn
            message(w, "2026-08-17T11:00:00Z", source_system="codex", provider_id="codex", account_id="codex-cli",
                    turn_id="T1", message_id=msg_id, input_tokens=50)  # fmt: skip
        message(w, "2026-08-17T11:00:00Z", turn_id="T1", message_id="c", input_tokens=5)  # claude: by message id
        message(w, "2026-08-17T11:00:00Z", turn_id="T1", message_id="d", input_tokens=5)
    usage = await figures(db)
    assert usage.totals[Window.ALL].messages == 3
    assert usage.breakdowns[Breakdown.PROVIDER]["codex"][Window.ALL].input_tokens == 50


async def test_status_requests_and_token_rules(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T09:00:00Z", message_id="ok", input_tokens=10, cost_usd=0.5, requests=None)
        message(w, "2026-08-17T09:01:00Z", message_id="err", input_tokens=1000, cost_usd=9.0, status="error")
        message(w, "2026-08-17T09:02:00Z", message_id="abort", input_tokens=1, cost_usd=0.25, status="aborted",
                requests=3)  # fmt: skip
        message(w, "2026-08-17T09:03:00Z", message_id="unk", output_tokens=2, status="unknown", requests=0)
        tool(w, "2026-08-17T09:04:00Z", "Bash", tool_call_id="t1")
        tool(w, "2026-08-17T09:05:00Z", "bash", tool_call_id="t2", status="error")
        w.add(source_system="claude_code", occurred_at="2026-08-17T09:06:00Z", event_type="turn_completed",
              turn_id="x", requests=1, input_tokens=999)  # fmt: skip
        w.add(source_system="claude_code", occurred_at="2026-08-17T09:06:00Z", event_type="raw_envelope",
              turn_id="y", requests=1, cost_usd=5.0)  # fmt: skip
    # A row whose total is NULL although parts are present: total = sum of the parts.
    conn = sqlite3.connect(db)
    conn.execute("UPDATE usage_events SET total_tokens = NULL, cache_read_tokens = 4 WHERE message_id = 'ok'")
    conn.commit()
    conn.close()
    today = (await figures(db)).totals[Window.TODAY]
    assert today.messages == 3  # ok, aborted, unknown
    assert today.errors == 1
    assert today.input_tokens == 11
    assert today.output_tokens == 2
    assert today.total_tokens == 14 + 1 + 2  # 10+4 (NULL total), 1, 2
    assert today.cost_usd == pytest.approx(0.75)
    assert today.requests == 1 + 3 + 0  # NULL counts as one request
    assert today.tool_calls == 2
    assert today.tool_errors == 1


async def test_window_bounds_are_exact_on_the_stored_text(tmp_path: Path) -> None:
    # now = 12:00:00.25; the 24 h bound is 2026-08-16T12:00:00.25.
    now = datetime.fromisoformat("2026-08-17T12:00:00.250000+00:00")
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-16T12:00:00.25Z", message_id="at-bound", input_tokens=1)
        message(w, "2026-08-16T12:00:00.249999999Z", message_id="just-before", input_tokens=10)
        message(w, "2026-08-16T12:00:00.3Z", message_id="after", input_tokens=100)
        message(w, "2026-08-16T12:00:00Z", message_id="whole-second-before", input_tokens=1000)
        message(w, "2026-08-16T12:00:01Z", message_id="whole-second-after", input_tokens=10000)
    usage = await figures(db, now=now)
    assert usage.totals[Window.H24].input_tokens == 1 + 100 + 10000
    assert usage.totals[Window.ALL].input_tokens == 11111


async def test_today_starts_at_local_midnight_of_the_time_zone(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-16T21:59:59.9Z", message_id="a", input_tokens=1)  # 23:59:59.9 in Warsaw (UTC+2)
        message(w, "2026-08-16T22:00:00Z", message_id="b", input_tokens=10)  # 00:00 in Warsaw
        message(w, "2026-08-17T03:59:59Z", message_id="c", input_tokens=100)  # 23:59 in New York (UTC-4)
        message(w, "2026-08-17T04:00:00Z", message_id="d", input_tokens=1000)
        message(w, "2026-08-18T00:00:00Z", message_id="future", input_tokens=10000)  # future still counts
    warsaw = await figures(db, zone=WARSAW)
    new_york = await figures(db, zone=ZoneInfo("America/New_York"))
    utc = await figures(db)
    assert warsaw.totals[Window.TODAY].input_tokens == 11110
    assert new_york.totals[Window.TODAY].input_tokens == 11000
    assert utc.totals[Window.TODAY].input_tokens == 11100


async def test_rolling_windows_and_sessions(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T11:50:00Z", message_id="1", session_id="live", input_tokens=1)
        tool(w, "2026-08-17T11:55:00Z", "read", tool_call_id="t", session_id="live-tool-only")
        message(w, "2026-08-17T11:40:00Z", message_id="2", session_id="s-old", input_tokens=1)
        message(w, "2026-08-17T11:40:00Z", message_id="2b", session_id="  ", input_tokens=1)  # blank: no session
        message(w, "2026-08-16T11:00:00Z", message_id="3", session_id="s-yesterday", input_tokens=1)
        message(w, "2026-08-12T11:00:00Z", message_id="4", session_id="s-week", input_tokens=1)
        message(w, "2026-07-20T11:00:00Z", message_id="5", session_id="s-month", input_tokens=1)
        message(w, "2026-07-01T11:00:00Z", message_id="6", session_id="s-old2", input_tokens=1)
        message(w, "2026-08-17T11:58:00Z", message_id="7", session_id="err-only", status="error")
    usage = await figures(db)
    tokens = {w: usage.totals[w].input_tokens for w in Window}
    # Monday 17 August: the week began at its midnight, the month on the 1st.
    expected = {
        Window.TODAY: 3,
        Window.H24: 3,
        Window.D7: 5,
        Window.D30: 6,
        Window.ALL: 7,
        Window.WEEK: 3,
        Window.MONTH: 5,
    }
    assert tokens == expected
    assert usage.totals[Window.TODAY].sessions == 2  # live, s-old (tool-only and error-only sessions do not count)
    assert usage.totals[Window.ALL].sessions == 6
    # Active in the last 15 minutes, any usage row: live, live-tool-only, err-only.
    assert usage.active_sessions == 3
    assert (await figures(db, active_minutes=30)).active_sessions == 4


async def test_breakdown_keys(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="1", provider_id="anthropic", account_id="claude-code",
                agent_name="claude_code", workspace_id="api", model_raw=" claude-opus ", input_tokens=1)  # fmt: skip
        message(w, "2026-08-17T10:00:00Z", message_id="2", source_system="opencode", provider_id="openrouter",
                account_id=None, agent_name="", workspace_id="  ", model_raw=None, input_tokens=2,
                cost_usd=0.1)  # fmt: skip
        message(w, "2026-08-17T10:00:00Z", message_id="3", source_system="gemini_cli", provider_id=None,
                account_id="gemini-cli", model_canonical="gemini-pro", model_raw="g-raw", input_tokens=4,
                workspace_id="web")  # fmt: skip
        tool(w, "2026-08-17T10:00:00Z", "  Read ", tool_call_id="a", workspace_id="api")
        tool(w, "2026-08-17T10:00:00Z", "", tool_call_id="b")
        tool(w, "2026-08-17T10:00:00Z", "read", tool_call_id="c", status="error")
    usage = await figures(db, provider_links=merge_links({"openrouter": "opencode"}))
    b = usage.breakdowns
    assert set(b[Breakdown.PROVIDER]) == {"claude_code", "opencode", "unknown"}
    assert set(b[Breakdown.ACCOUNT]) == {"claude_code/claude-code", "opencode/default", "unknown/gemini-cli"}
    assert set(b[Breakdown.MODEL]) == {"claude-opus", "unknown", "gemini-pro"}
    assert b[Breakdown.MODEL]["unknown"][Window.TODAY].input_tokens == 2
    assert b[Breakdown.MODEL]["unknown"][Window.TODAY].tool_calls == 3  # tool rows carry no model here
    assert set(b[Breakdown.AGENT]) == {"claude_code", "opencode", "gemini_cli"}
    assert {k: v[Window.TODAY].tool_calls for k, v in b[Breakdown.TOOL].items()} == {"read": 2, "unknown": 1}
    assert b[Breakdown.TOOL]["read"][Window.TODAY].tool_errors == 1
    assert set(b[Breakdown.PROJECT]) == {"api", "web"}  # blank workspace left out; tool rows do not make projects
    assert b[Breakdown.PROJECT]["api"][Window.TODAY].requests == 1
    assert Window.ALL not in b[Breakdown.AGENT]["opencode"]
    # The default links still apply next to the user's own.
    assert b[Breakdown.PROVIDER]["claude_code"][Window.ALL].messages == 1


def _old_history(w) -> None:
    """Three UTC days: 08-01 (will be pruned), 08-02 (partly pruned), 08-03 (kept)."""
    for i, at in enumerate(("2026-08-01T10:00:00Z", "2026-08-01T11:00:00Z")):
        message(w, at, message_id=f"a{i}", input_tokens=100, cost_usd=1.0, requests=None)
    message(w, "2026-08-01T12:00:00Z", message_id="a-err", status="error", input_tokens=5)
    tool(w, "2026-08-01T12:00:00Z", "bash", tool_call_id="a-t")
    message(w, "2026-08-02T01:00:00Z", message_id="b0", input_tokens=10, cost_usd=0.1)
    message(w, "2026-08-02T23:00:00Z", message_id="b1", input_tokens=20, cost_usd=0.2)
    message(w, "2026-08-03T10:00:00Z", message_id="c0", input_tokens=1, cost_usd=0.01)


async def test_all_time_takes_pruned_days_from_the_rollup(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        _old_history(w)
    rollup(db, watermark="2026-08-16", prune_before="2026-08-02T12:00:00Z")  # 08-02 partly pruned
    all_time = (await figures(db)).totals[Window.ALL]
    # 08-01 from the rollup: 200 tokens, $2, 2 messages (event_count; NULL requests count 0 in the rollup
    # but messages stand in), 1 error, 1 tool call. 08-02 from the rollup (3 > 1 raw row): 30 tokens.
    # 08-03 from raw rows: 1 token.
    assert all_time.input_tokens == 200 + 30 + 1
    assert all_time.cost_usd == pytest.approx(2.31)
    assert all_time.messages == 2 + 2 + 1
    assert all_time.requests == 2 + 2 + 1
    assert all_time.errors == 1
    assert all_time.tool_calls == 1
    assert all_time.sessions == 1  # only the raw rows of 08-03 carry sessions


async def test_a_partly_pruned_oldest_day_of_tool_calls_alone_comes_from_the_rollup(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        tool(w, "2026-08-02T01:00:00Z", "bash", tool_call_id="t1")
        tool(w, "2026-08-02T23:00:00Z", "bash", tool_call_id="t2")
        message(w, "2026-08-03T10:00:00Z", message_id="c0", input_tokens=1)
    rollup(db, watermark="2026-08-16", prune_before="2026-08-02T12:00:00Z")  # t1 pruned
    all_time = (await figures(db)).totals[Window.ALL]
    # 08-02 from the rollup (2 tool calls > 1 raw row). Its one rollup group stands for as many records
    # as the raw row it replaces: the two tool calls must not go with that row.
    assert all_time.tool_calls == 2
    assert all_time.messages == 1
    assert all_time.input_tokens == 1


async def test_all_time_takes_a_complete_oldest_day_from_raw_rows(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        _old_history(w)
    rollup(db, watermark="2026-08-16", prune_before="2026-08-02T00:00:00Z")  # 08-01 gone, 08-02 whole
    all_time = (await figures(db)).totals[Window.ALL]
    assert all_time.input_tokens == 200 + 30 + 1
    assert all_time.requests == 2 + 2 + 1


async def test_all_time_ignores_the_rollup_without_a_watermark(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        _old_history(w)
    rollup(db, watermark="2026-08-16", prune_before="2026-08-02T12:00:00Z")
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM daemon_meta")
    conn.commit()
    conn.close()
    all_time = (await figures(db)).totals[Window.ALL]
    assert all_time.input_tokens == 20 + 1  # raw rows alone
    # ...and the rollup's days never leak into the bounded windows.
    assert (await figures(db)).totals[Window.D30].input_tokens == 20 + 1


async def test_all_time_of_a_rollup_only_store(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        _old_history(w)
    rollup(db, watermark="2026-08-16", prune_before="2026-08-10T00:00:00Z")  # every raw row pruned
    usage = await figures(db)
    assert usage.totals[Window.ALL].input_tokens == 231
    assert usage.breakdowns[Breakdown.PROVIDER]["claude_code"][Window.ALL].input_tokens == 231
    assert usage.breakdowns[Breakdown.ACCOUNT]["claude_code/claude-code"][Window.ALL].errors == 1
    assert usage.breakdowns[Breakdown.MODEL]["claude-sonnet-4-5"][Window.ALL].tool_calls == 0
    assert usage.totals[Window.D30].input_tokens == 0


async def test_copilot_workspace_file_rows_are_no_tool_calls(tmp_path: Path) -> None:
    # openusage's Copilot collector stores workspace-file reads as tool rows with requests = 0; its
    # activity query counts SUM(requests), so they are no calls: 3 such rows and 1 real call make 1.
    db = tmp_path / "telemetry.db"
    copilot = {"source_system": "copilot", "provider_id": "github-copilot", "account_id": "octocat"}
    with store(db) as w:
        for i, name in enumerate(("workspace_file_read", "workspace_file_read", "workspace_file_list")):
            tool(w, f"2026-08-17T10:0{i}:00Z", name, tool_call_id=f"w{i}", requests=0, **copilot)
        tool(w, "2026-08-17T10:05:00Z", "run_in_terminal", tool_call_id="t1", **copilot)
        tool(w, "2026-08-17T10:06:00Z", "Bash", tool_call_id="t2", requests=3)  # a row standing for 3 calls
        tool(w, "2026-08-17T10:07:00Z", "Bash", tool_call_id="t3", requests=2, status="error")
        tool(w, "2026-08-17T10:08:00Z", "Bash", tool_call_id="t4", requests=None)  # NULL is one call
    usage = await figures(db)
    today = usage.totals[Window.TODAY]
    assert today.tool_calls == 0 + 1 + 3 + 2 + 1
    assert today.tool_errors == 2
    by_tool = usage.breakdowns[Breakdown.TOOL]
    assert by_tool["workspace_file_read"][Window.TODAY].tool_calls == 0  # listed, with no calls
    assert by_tool["run_in_terminal"][Window.TODAY].tool_calls == 1
    assert by_tool["bash"][Window.D7].tool_calls == 6
    assert usage.breakdowns[Breakdown.PROVIDER]["copilot"][Window.TODAY].tool_calls == 1


async def test_one_message_kept_under_two_sessions_is_one_message(tmp_path: Path) -> None:
    # Deduplication partitions by session, so one message id seen under two sessions survives twice:
    # its tokens count twice (as in openusage), but it is one message, as openusage's activity counts.
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="m1", session_id="s1", input_tokens=10)
        message(w, "2026-08-17T10:00:02Z", message_id=" m1 ", session_id="s2", input_tokens=10,
                model_raw="claude-opus-4-1")  # fmt: skip
        message(w, "2026-08-16T10:00:00Z", message_id="m1", session_id="s3", input_tokens=10)  # yesterday
        message(w, "2026-08-17T10:01:00Z", message_id=None, turn_id="t1", session_id="s1", input_tokens=1)
        message(w, "2026-08-17T10:01:00Z", message_id="", turn_id="t1", session_id="s2", input_tokens=1)
        message(w, "2026-08-17T10:02:00Z", message_id=None, turn_id=None, session_id="s1", input_tokens=1)
        message(w, "2026-08-17T10:03:00Z", message_id="m1", session_id="s4", status="error")  # an error: no message
    usage = await figures(db)
    today, week = usage.totals[Window.TODAY], usage.totals[Window.D7]
    assert today.input_tokens == 23
    assert today.messages == 3  # m1, t1 and the row known by its dedup key alone
    assert today.sessions == 2
    assert week.messages == 3  # yesterday's m1 is the same message
    assert week.input_tokens == 33
    by_model = usage.breakdowns[Breakdown.MODEL]
    assert by_model["claude-sonnet-4-5"][Window.TODAY].messages == 3  # each key counts its own once
    assert by_model["claude-opus-4-1"][Window.TODAY].messages == 1
    assert by_model["claude-sonnet-4-5"][Window.D7].messages == 3
    assert usage.breakdowns[Breakdown.PROVIDER]["claude_code"][Window.ALL].messages == 3
