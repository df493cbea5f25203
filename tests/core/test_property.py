"""The SQL implementation against the plain-Python reference (tests/reference.py) on random stores."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.openusage.core.demo import EventWriter, build_rollup
from custom_components.openusage.core.reader import ReadOptions, read_store
from custom_components.openusage.core.schema import create_schema
from custom_components.openusage.core.snapshot_json import snapshot_to_json
from tests import reference

NOW = datetime(2026, 8, 17, 12, 0, 0, 250000, tzinfo=UTC)
ZONES = ["UTC", "Europe/Warsaw", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Apia"]

# Offsets that land on and around every window bound, plus older days for the rollup.
_bound_offsets = [timedelta(hours=24), timedelta(days=7), timedelta(days=30), timedelta(minutes=15)]
_near = st.sampled_from(_bound_offsets).flatmap(
    lambda b: st.integers(-3, 3).map(lambda ns100: b + timedelta(microseconds=ns100 * 50))
)
_any_time = st.integers(0, 60 * 24 * 3600 * 1000).map(lambda ms: timedelta(milliseconds=ms))
_offset = st.one_of(_near, _any_time)
_fraction = st.sampled_from(["", ".5", ".25", ".123456789", ".1"])


def _stamp(offset: timedelta, fraction: str) -> str:
    at = NOW - offset
    text = f"{at:%Y-%m-%dT%H:%M:%S}"
    if at.microsecond and not fraction:
        text += f".{at.microsecond:06d}".rstrip("0")
    elif fraction:
        text += fraction
    return text + "Z"


_maybe_int = st.one_of(st.none(), st.integers(0, 500))
_row = st.fixed_dictionaries(
    {
        "offset": _offset,
        "fraction": _fraction,
        "source_system": st.sampled_from(["claude_code", "codex"]),
        "source_channel": st.sampled_from(["hook", "sse", "jsonl", "sqlite", "api", "weird"]),
        "event_type": st.sampled_from(["message_usage", "message_usage", "tool_usage", "turn_completed"]),
        "provider_id": st.sampled_from([None, "", "anthropic", "codex", "opencode", "unknown", "Google"]),
        "account_id": st.sampled_from([None, "", "a1", "a2"]),
        "agent_name": st.sampled_from(["", "claude_code", "cursor-agent"]),
        "workspace_id": st.sampled_from([None, "", "api", "web", " api "]),
        "session_id": st.sampled_from([None, "", "s1", "s2", "S1"]),
        "message_id": st.sampled_from([None, "", "m1", "m2", "M1"]),
        "turn_id": st.sampled_from([None, "t1", "t2"]),
        "tool_call_id": st.sampled_from([None, "", "c1", "c2"]),
        "model_raw": st.sampled_from([None, "", "sonnet", " opus "]),
        "model_canonical": st.sampled_from([None, None, "", "canon"]),
        "tool_name": st.sampled_from([None, "", "Read", "bash"]),
        "status": st.sampled_from(["ok", "ok", "error", "aborted", "unknown"]),
        "input_tokens": _maybe_int,
        "output_tokens": _maybe_int,
        "cache_read_tokens": _maybe_int,
        "total_tokens": _maybe_int,
        "cost_usd": st.one_of(st.none(), st.floats(0, 3, allow_nan=False).map(lambda c: round(c, 7))),
        "requests": st.one_of(st.none(), st.integers(0, 3)),
    }
)
_store = st.fixed_dictionaries(
    {
        "rows": st.lists(_row, max_size=60),
        "rollup": st.sampled_from(["none", "no_watermark", "pruned"]),
        "prune_days": st.integers(1, 50),
        "zone": st.sampled_from(ZONES),
        "active_minutes": st.sampled_from([5.0, 15.0, 90.0]),
    }
)


def _write(path: Path, spec: dict) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    create_schema(conn)
    conn.execute("BEGIN")
    writer = EventWriter(conn)
    for i, row in enumerate(spec["rows"]):
        fields = {k: v for k, v in row.items() if k not in ("offset", "fraction", "source_system", "source_channel")}
        fields["dedup_key"] = f"key{i}"  # unique per row, as the UNIQUE constraint demands
        writer.add(
            source_system=row["source_system"],
            source_channel=row["source_channel"],
            occurred_at=_stamp(row["offset"], row["fraction"]),
            **fields,
        )
    writer.flush()
    if spec["rollup"] != "none":
        build_rollup(conn, f"{NOW - timedelta(days=1):%Y-%m-%d}")
        cutoff = _stamp(timedelta(days=spec["prune_days"]), "")
        conn.execute("DELETE FROM usage_events WHERE occurred_at < ?", (cutoff,))
        if spec["rollup"] == "no_watermark":
            conn.execute("DELETE FROM daemon_meta")
    conn.execute("COMMIT")
    conn.close()


def _approx_equal(ours: object, theirs: object, where: str = "") -> None:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        assert ours.keys() == theirs.keys(), where
        for key in ours:
            _approx_equal(ours[key], theirs[key], f"{where}/{key}")
    elif isinstance(ours, float) or isinstance(theirs, float):
        assert abs(float(ours) - float(theirs)) < 1e-9, where  # type: ignore[arg-type]
    else:
        assert ours == theirs, where


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=_store)
def test_sql_matches_the_reference(spec: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "telemetry.db"
        _write(path, spec)
        zone = ZoneInfo(spec["zone"])
        options = ReadOptions(active_minutes=spec["active_minutes"])
        loop = asyncio.new_event_loop()  # not asyncio.run: that would unset the main thread's loop
        try:
            snapshot = loop.run_until_complete(read_store(path, NOW, zone, options))
        finally:
            loop.close()
        ours = snapshot_to_json(snapshot)
        theirs = reference.compute(path, NOW, zone, spec["active_minutes"])
    for name, expected in theirs.items():
        _approx_equal(ours[name], expected, name)
