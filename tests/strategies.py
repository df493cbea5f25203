"""Random usage rows for property tests: times on and around every window bound, every dedup case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from openusage_demo import EventWriter

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


def stamp(offset: timedelta, fraction: str, now: datetime = NOW) -> str:
    """Return the stored text of `now - offset`, with the given fraction (or the instant's own)."""
    at = now - offset
    text = f"{at:%Y-%m-%dT%H:%M:%S}"
    if at.microsecond and not fraction:
        text += f".{at.microsecond:06d}".rstrip("0")
    elif fraction:
        text += fraction
    return text + "Z"


_maybe_int = st.one_of(st.none(), st.integers(0, 500))
row = st.fixed_dictionaries(
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


def add_row(writer: EventWriter, spec: dict[str, Any], dedup_key: str, now: datetime = NOW) -> str:
    """Queue one drawn row (times relative to `now`); returns its event id."""
    fields = {k: v for k, v in spec.items() if k not in ("offset", "fraction", "source_system", "source_channel")}
    return writer.add(
        source_system=spec["source_system"],
        source_channel=spec["source_channel"],
        occurred_at=stamp(spec["offset"], spec["fraction"], now),
        dedup_key=dedup_key,
        **fields,
    )
