"""A plain-Python reading of metrics.md, used as the oracle of the property-based tests.

It loads every row with plain SELECTs and applies the rules one by one, with datetimes instead of
text keys and Python sets and sums instead of SQL: an independent second implementation.
"""

from __future__ import annotations

import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

LINKS = {"anthropic": "claude_code", "google": "gemini_api", "github-copilot": "copilot"}
PRIORITY = {"hook": 4, "sse": 3, "sqlite": 2, "jsonl": 2, "api": 1}
MEASURES = (
    "input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens",
    "total_tokens", "cost_usd", "requests", "messages", "errors", "tool_calls", "tool_errors", "sessions",
)  # fmt: skip
PARTS = ("input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens")


def instant(text: str) -> tuple[datetime, int]:
    """Return a stored time as (second, nanoseconds) so that nine-digit fractions compare exactly."""
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head).replace(tzinfo=UTC), int((frac + "000000000")[:9])


def bound(at: datetime) -> tuple[datetime, int]:
    """Return an instant as (second, nanoseconds), to compare bounds exactly."""
    return at.replace(microsecond=0), at.microsecond * 1000


def nano(cost: float | None) -> int:
    """Cost in nano-dollars, rounded half away from zero like SQLite's ROUND."""
    return int((Decimal(cost or 0.0) * Decimal(10**9)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def blank(value: Any) -> bool:
    """Tell whether a stored value counts as absent."""
    return value is None or str(value).strip() == ""


def logical_id(row: dict[str, Any]) -> str:
    """Return the logical id that deduplicates a row."""
    if not blank(row["tool_call_id"]):
        return "tool:" + row["tool_call_id"].strip().lower()
    if row["event_type"] == "message_usage" and row["src"].strip().lower() == "codex" and not blank(row["turn_id"]):
        return "message_turn:" + row["turn_id"].strip().lower()
    if not blank(row["message_id"]):
        return "message:" + row["message_id"].strip().lower()
    if not blank(row["turn_id"]):
        return "turn:" + row["turn_id"].strip().lower()
    return "fallback:" + row["dedup_key"]


def rank(row: dict[str, Any]) -> tuple[Any, ...]:
    """Return the rank of a row among its duplicates: the lowest wins."""
    model = row["model_canonical"] if row["model_canonical"] is not None else (row["model_raw"] or "")
    provider = (row["provider_id"] or "").strip()
    quality = (
        4 * ((row["total_tokens"] or 0) > 0)
        + 2 * ((row["cost_usd"] or 0) > 0)
        + (model.strip() != "")
        + (provider != "" and provider.lower() not in ("unknown", "opencode"))
    )
    return (PRIORITY.get(row["chan"].strip().lower(), 0), quality, row["occurred_at"], row["event_id"])


_STORED_TIME = re.compile(r"^\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-6]\d")
_COUNTS = ("input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens",
           "total_tokens", "requests")  # fmt: skip


def placeable(row: dict[str, Any]) -> bool:
    """metrics.md §2.9: a stored time, and figures that are numbers in range."""

    def in_range(value: Any, top: float) -> bool:
        return value is None or (isinstance(value, int | float) and 0 <= value <= top)

    return (
        isinstance(row["occurred_at"], str)
        and _STORED_TIME.match(row["occurred_at"]) is not None
        and all(in_range(row[c], 2**40) for c in _COUNTS)
        and in_range(row["cost_usd"], 10_000)
    )


def winners(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the winning row of each logical id."""
    best: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in rows:
        key = (
            row["src"].strip().lower(),
            row["event_type"].strip().lower(),
            (row["session_id"] or "").strip().lower(),
            logical_id(row),
        )
        if key not in best or rank(row) > rank(best[key]):
            best[key] = row
    return list(best.values())


@dataclass
class Acc:
    """The sums of the reference computation."""

    values: dict[str, int]
    sessions: set[str]
    message_ids: set[str]

    @classmethod
    def new(cls) -> Acc:
        """Return empty sums."""
        return cls(defaultdict(int), set(), set())


def model_of(row: dict[str, Any]) -> str:
    """Return the model a row counts under."""
    for value in (row["model_canonical"], row["model_raw"]):
        if not blank(value):
            return str(value).strip()
    return "unknown"


def message_identity(row: dict[str, Any]) -> str:
    """COALESCE(NULLIF(TRIM(message_id),''), NULLIF(TRIM(turn_id),''), dedup_key)."""
    for value in (row["message_id"], row["turn_id"]):
        if not blank(value):
            return str(value).strip()
    return str(row["dedup_key"])


def add_raw(acc: Acc, row: dict[str, Any]) -> None:
    """Add one raw usage row to the sums."""
    if row["event_type"] == "tool_usage":
        calls = row["requests"] if row["requests"] is not None else 1
        acc.values["tool_calls"] += calls
        acc.values["tool_errors"] += calls if row["status"] == "error" else 0
    elif row["status"] == "error":
        acc.values["errors"] += 1
    else:
        for part in PARTS:
            acc.values[part] += row[part] or 0
        total = row["total_tokens"]
        acc.values["total_tokens"] += total if total is not None else sum(row[p] or 0 for p in PARTS)
        acc.values["cost_nano"] += nano(row["cost_usd"])
        acc.values["requests"] += row["requests"] if row["requests"] is not None else 1
        acc.message_ids.add(message_identity(row))
        if not blank(row["session_id"]):
            acc.sessions.add(row["session_id"].strip())


def add_rollup(acc: Acc, row: dict[str, Any]) -> None:
    """Add one rollup row to the sums."""
    if row["tool_name"] != "":
        acc.values["tool_calls"] += row["event_count"]
        acc.values["tool_errors"] += row["event_count"] if row["status"] == "error" else 0
    elif row["status"] == "error":
        acc.values["errors"] += row["event_count"]
    else:
        for part in (*PARTS, "total_tokens"):
            acc.values[part] += row[part]
        acc.values["cost_nano"] += nano(row["cost_usd"])
        acc.values["requests"] += row["event_count"]
        acc.values["messages"] += row["event_count"]


def freeze(acc: Acc) -> dict[str, Any]:
    """Return the sums as plain dictionaries."""
    out: dict[str, Any] = {m: acc.values.get(m, 0) for m in MEASURES}
    out["cost_usd"] = acc.values.get("cost_nano", 0) / 10**9
    out["sessions"] = len(acc.sessions)
    out["messages"] = acc.values.get("messages", 0) + len(acc.message_ids)
    return out


def compute(path: Path, now: datetime, zone: ZoneInfo, active_minutes: float = 15) -> dict[str, Any]:
    """totals, the six breakdowns and active_sessions, shaped like the snapshot JSON."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    rows = [
        dict(r)
        for r in conn.execute(
            "SELECT e.*, r.source_system AS src, r.source_channel AS chan FROM usage_events e, usage_raw_events r "
            "WHERE r.raw_event_id = e.raw_event_id AND e.event_type IN ('message_usage', 'tool_usage')"
        )
    ]
    rows = [r for r in rows if placeable(r)]
    watermark = None
    if "daemon_meta" in tables:
        found = conn.execute("SELECT value FROM daemon_meta WHERE key = 'rollup_daily_watermark'").fetchone()
        watermark = found[0] if found else None
    rollup_rows = (
        [dict(r) for r in conn.execute("SELECT * FROM usage_rollup_daily")]
        if watermark and "usage_rollup_daily" in tables
        else []
    )
    conn.close()

    local_today = now.astimezone(zone).date()
    first_day = {"week": local_today - timedelta(days=local_today.weekday()), "month": local_today.replace(day=1)}

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)

    lower = {
        "today": bound(midnight(local_today)),
        "24h": bound(now - timedelta(hours=24)),
        "7d": bound(now - timedelta(days=7)),
        "30d": bound(now - timedelta(days=30)),
        "week": bound(midnight(first_day["week"])),
        "month": bound(midnight(first_day["month"])),
    }
    active_bound = bound(now - timedelta(minutes=active_minutes))

    day_b = min((r["occurred_at"][:10] for r in rows), default=None)
    won = winners(rows)
    raw_on_b = sum(1 for r in won if r["occurred_at"][:10] == day_b)
    rollup_on_b = sum(r["event_count"] for r in rollup_rows if r["day"] == day_b)
    b_from_rollup = bool(day_b and watermark and day_b <= watermark and rollup_on_b > raw_on_b)
    # A week or month that starts before day B takes rollup days from its first date, as `all` does.
    reaching_back = [p for p, first in first_day.items() if rollup_rows and (day_b is None or str(first) < day_b)]

    totals: dict[str, Acc] = defaultdict(Acc.new)
    split: dict[str, dict[str, dict[str, Acc]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(Acc.new)))
    active: set[str] = set()
    for row in won:
        at = instant(row["occurred_at"])
        if at >= active_bound and not blank(row["session_id"]):
            active.add(row["session_id"].strip())
        windows = [w for w, b in lower.items() if at >= b]
        if b_from_rollup and row["occurred_at"][:10] == day_b:
            windows = [w for w in windows if w not in reaching_back]
        else:
            windows.append("all")
        provider = (row["provider_id"] or "").strip().lower()
        provider = LINKS.get(provider, provider) or "unknown"
        account = f"{provider}/{(row['account_id'] or '').strip() or 'default'}"
        agent = (row["agent_name"] or "").strip() or row["src"].strip() or "unknown"
        is_message = row["event_type"] == "message_usage" and row["status"] != "error"
        for window in windows:
            add_raw(totals[window], row)
            add_raw(split["by_provider"][provider][window], row)
            add_raw(split["by_account"][account][window], row)
            add_raw(split["by_model"][model_of(row)][window], row)
            if window == "all":
                continue
            add_raw(split["by_agent"][agent][window], row)
            if row["event_type"] == "tool_usage":
                add_raw(split["by_tool"][(row["tool_name"] or "").strip().lower() or "unknown"][window], row)
            if is_message and not blank(row["workspace_id"]):
                add_raw(split["by_project"][row["workspace_id"].strip()][window], row)

    for row in rollup_rows:
        if day_b is not None and (row["day"] > day_b or (row["day"] == day_b and not b_from_rollup)):
            continue
        provider = row["provider_id"].strip().lower()
        provider = LINKS.get(provider, provider) or "unknown"
        model = row["model_canonical"].strip() or "unknown"
        account = f"{provider}/{row['account_id'].strip() or 'default'}"
        for window in ["all", *(p for p in reaching_back if row["day"] >= str(first_day[p]))]:
            add_rollup(totals[window], row)
            add_rollup(split["by_provider"][provider][window], row)
            add_rollup(split["by_account"][account][window], row)
            add_rollup(split["by_model"][model][window], row)

    seven = ("today", "24h", "7d", "30d", "all", "week", "month")
    fields = {"by_tool": ("tool_calls", "tool_errors"), "by_project": ("requests", "cost_usd", "total_tokens")}
    result: dict[str, Any] = {"totals": {w: freeze(totals[w]) for w in seven}, "active_sessions": len(active)}
    for name in ("by_provider", "by_account", "by_model", "by_agent", "by_tool", "by_project"):
        windows = seven if name in ("by_provider", "by_account", "by_model") else tuple(w for w in seven if w != "all")
        keep = fields.get(name, MEASURES)
        result[name] = {
            key: {w: {m: v for m, v in freeze(per[w]).items() if m in keep} for w in windows}
            for key, per in sorted(split[name].items())
        }
    return result
