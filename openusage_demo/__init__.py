"""A realistic openusage store for demos, tests and benchmarks (`openusage-ha demo-store`).

It writes what the openusage daemon v0.24.4 would have written after weeks of use: several agents
and providers, the same message arriving through JSONL and hooks, errors, tool calls, limit
snapshots with resets (older payloads blanked), balance observations, a daily rollup with raw rows
pruned behind it (one day partly), and a backlog in both spool folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from openusage_ha.clock import format_utc
from openusage_ha.schema import LATEST_RELEASE, create_indexes, create_schema
from openusage_ha.spool import HOOK_SPOOL_DIR, TELEMETRY_SPOOL_DIR
from openusage_ha.usage import DEDUPED_USAGE_SQL

RETENTION_DAYS = 90

EVENT_COLUMNS = (
    "event_id", "occurred_at", "provider_id", "agent_name", "account_id", "workspace_id", "session_id",
    "turn_id", "message_id", "tool_call_id", "event_type", "model_raw", "model_canonical", "model_lineage_id",
    "input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens",
    "total_tokens", "cost_usd", "requests", "tool_name", "status", "dedup_key", "raw_event_id",
    "normalization_version",
)  # fmt: skip
RAW_COLUMNS = (
    "raw_event_id", "ingested_at", "source_system", "source_channel", "source_schema_version",
    "source_payload", "source_payload_hash", "workspace_id", "agent_session_id",
)  # fmt: skip
_INSERT_EVENT = f"INSERT INTO usage_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"
_INSERT_RAW = f"INSERT INTO usage_raw_events ({', '.join(RAW_COLUMNS)}) VALUES ({', '.join('?' * len(RAW_COLUMNS))})"
_TOKEN_PARTS = ("input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens")


def dedup_key(event: Mapping[str, Any], source_system: str) -> str:
    """Openusage's dedup_key for an event with a stable id (openusage-store.md §2.5)."""
    for prefix, column in (("tool", "tool_call_id"), ("message", "message_id"), ("turn", "turn_id")):
        if event.get(column):
            stable = f"{prefix}:{event[column]}"
            break
    else:
        stable = "fp:" + hashlib.sha256(repr(sorted(event.items())).encode()).hexdigest()
    parts = (source_system, event["event_type"], event.get("session_id") or "", event.get("workspace_id") or "", stable)
    return hashlib.sha256("|".join(str(p).strip().lower() for p in parts).encode()).hexdigest()


class EventWriter:
    """Writes usage_events rows with their usage_raw_events partners, as the daemon's ingest does."""

    def __init__(self, conn: sqlite3.Connection, rng: random.Random | None = None) -> None:
        """Write through `conn`, with `rng` for the random parts."""
        self.conn = conn
        self.rng = rng or random.Random()
        self._events: list[tuple[Any, ...]] = []
        self._raws: list[tuple[Any, ...]] = []

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(
        self,
        *,
        source_system: str,
        source_channel: str = "jsonl",
        source_schema_version: str = "v1",
        payload: str | None = None,
        ingested_at: str | None = None,
        **event: Any,
    ) -> str:
        """Queue one event; missing columns get the daemon's defaults. Returns the event id."""
        row: dict[str, Any] = {"event_type": "message_usage", "status": "ok", "normalization_version": "v1"}
        row.update(event)
        row.setdefault("agent_name", source_system)
        if row.get("total_tokens") is None and any(row.get(p) is not None for p in _TOKEN_PARTS):
            row["total_tokens"] = sum(row.get(p) or 0 for p in _TOKEN_PARTS)
        row.setdefault("event_id", self._uuid())
        row.setdefault("dedup_key", dedup_key(row, source_system))
        raw_id = row.setdefault("raw_event_id", self._uuid())
        body = payload if payload is not None else json.dumps({"source": source_system}, separators=(",", ":"))
        self._events.append(tuple(row.get(c) for c in EVENT_COLUMNS))
        self._raws.append(
            (
                raw_id,
                ingested_at or row["occurred_at"],
                source_system,
                source_channel,
                source_schema_version,
                body,
                hashlib.sha256(body.encode()).hexdigest(),
                row.get("workspace_id"),
                row.get("session_id"),
            )
        )
        if len(self._events) >= 20_000:
            self.flush()
        return str(row["event_id"])

    def flush(self) -> None:
        """Write the buffered rows and commit."""
        self.conn.executemany(_INSERT_RAW, self._raws)
        self.conn.executemany(_INSERT_EVENT, self._events)
        self._events.clear()
        self._raws.clear()


def build_rollup(conn: sqlite3.Connection, watermark: str) -> None:
    """Recompute usage_rollup_daily from the deduplicated rows, as the daemon's rollup pass does."""
    conn.execute("DELETE FROM usage_rollup_daily")
    conn.execute(
        f"""
        INSERT INTO usage_rollup_daily
        SELECT date(occurred_at), coalesce(provider_id, ''), coalesce(account_id, ''),
               coalesce(nullif(trim(model_canonical), ''), nullif(trim(model_raw), ''), ''),
               coalesce(tool_name, ''), coalesce(workspace_id, ''), status,
               {", ".join(f"SUM(coalesce({p}, 0))" for p in _TOKEN_PARTS)}, SUM(coalesce(total_tokens, 0)),
               SUM(coalesce(cost_usd, 0)), SUM(coalesce(requests, 0)), COUNT(*)
        FROM ({DEDUPED_USAGE_SQL}) GROUP BY 1, 2, 3, 4, 5, 6, 7
        """
    )
    conn.execute("INSERT OR REPLACE INTO daemon_meta (key, value) VALUES ('rollup_daily_watermark', ?)", (watermark,))


@dataclass(frozen=True, slots=True)
class _Model:
    name: str
    input_price: float  # USD per token
    output_price: float


@dataclass(frozen=True, slots=True)
class _Agent:
    source: str
    providers: tuple[str, ...]
    account: str
    channel: str
    schema: str
    models: tuple[_Model, ...]
    weight: int
    duplicate_rate: float = 0.0  # share of messages that also arrive through the hook
    duplicate_schema: str = ""
    null_requests: bool = False


_SONNET = _Model("claude-sonnet-4-5", 3e-6, 15e-6)
_OPUS = _Model("claude-opus-4-1", 15e-6, 75e-6)
_HAIKU = _Model("claude-haiku-4-5", 1e-6, 5e-6)
_GPT5 = _Model("gpt-5", 1.25e-6, 10e-6)
_CODEX = _Model("gpt-5-codex", 1.25e-6, 10e-6)
_GEMINI_PRO = _Model("gemini-2.5-pro", 1.25e-6, 10e-6)
_GEMINI_FLASH = _Model("gemini-2.5-flash", 0.3e-6, 2.5e-6)
_AGENTS = (
    _Agent("claude_code", ("anthropic",), "claude-code", "jsonl", "claude_jsonl_v1", (_SONNET, _OPUS, _HAIKU), 45,
           duplicate_rate=0.2, duplicate_schema="claude_hook_v1", null_requests=True),
    _Agent("codex", ("codex",), "codex-cli", "jsonl", "codex_session_v1", (_CODEX, _GPT5), 20),
    _Agent("opencode", ("anthropic", "openrouter", "openai"), "opencode", "sqlite", "opencode_sqlite_v1",
           (_SONNET, _GPT5), 10, duplicate_rate=0.1, duplicate_schema="opencode_hook_v1"),
    _Agent("cursor", ("cursor",), "cursor-ide", "sqlite", "cursor_sqlite_v1", (_SONNET, _GPT5), 12),
    _Agent("copilot", ("copilot",), "copilot", "jsonl", "copilot_v2", (_GPT5, _SONNET), 8),
    _Agent("gemini_cli", ("gemini_cli",), "gemini-cli", "jsonl", "gemini_cli_v2", (_GEMINI_PRO, _GEMINI_FLASH), 5),
)  # fmt: skip
_PROJECTS = ("api-server", "web-app", "infra", "data-pipeline", "docs", "mobile")
_TOOLS = ("read", "edit", "bash", "grep", "glob", "write", "webfetch", "todowrite", "mcp__github__create_pull_request")


def _stamp(instant: datetime) -> str:
    """RFC3339Nano as Go writes it: trailing zeros of the fraction trimmed, none when zero."""
    return format_utc(instant)


def _session_starts(rng: random.Random, now: datetime, days: int) -> Iterator[tuple[datetime, bool]]:
    """Session start times: a few live ones first, then spread over working hours of past days."""
    for minutes in (9, 6, 3):
        yield now - timedelta(minutes=minutes, seconds=rng.random() * 50), True
    while True:
        day = rng.random() ** 1.3 * days  # busier lately
        start = now - timedelta(days=day)
        start = start.replace(hour=rng.choice((9, 10, 11, 13, 14, 15, 16, 17, 20, 22)), minute=rng.randrange(60))
        if start < now - timedelta(hours=1):
            yield start, False


@dataclass(frozen=True, slots=True)
class _Session:
    """One agent session: who works, in which project, with which model."""

    agent: _Agent
    id: str
    project: str
    model: _Model


def _write_sessions(writer: EventWriter, rng: random.Random, now: datetime, days: int, events: int) -> None:
    written = 0
    weights = [a.weight for a in _AGENTS]
    starts = _session_starts(rng, now, days)
    while written < events:
        start, live = next(starts)
        agent = rng.choices(_AGENTS, weights)[0]
        session_id, project = writer._uuid(), rng.choice(_PROJECTS)
        session = _Session(agent, session_id, project, rng.choice(agent.models))
        turns = rng.randint(3, 12) if live else rng.randint(5, 60)
        at = start
        for turn in range(turns):
            if written >= events:
                break
            at += timedelta(seconds=rng.randint(4, 90), microseconds=rng.randrange(1_000_000))
            if at > now:
                break
            provider, rows = _write_message(writer, rng, session, turn=turn, at=at, now=now, room=events - written)
            written += rows
            rows, at = _write_tool_calls(writer, rng, session, provider=provider, at=at, now=now, room=events - written)
            written += rows
            if turn % 4 == 3:  # turn markers and unnormalised envelopes never count as usage
                writer.add(
                    source_system=agent.source,
                    event_type=rng.choice(("turn_completed", "raw_envelope")),
                    occurred_at=_stamp(at),
                    provider_id=provider,
                    account_id=agent.account,
                    session_id=session.id,
                    turn_id=f"turn-{turn}-done",
                    requests=1,
                )


def _write_message(
    writer: EventWriter, rng: random.Random, session: _Session, *, turn: int, at: datetime, now: datetime, room: int
) -> tuple[str, int]:
    """Write one message of a turn (and at times its hook duplicate); return its provider and the rows written."""
    agent, model = session.agent, session.model
    provider = rng.choice(agent.providers)
    inp, out = rng.randint(200, 6000), rng.randint(50, 2500)
    cache_read, cache_write = rng.randint(0, 40_000), rng.randint(0, 3_000)
    reasoning = rng.randint(0, 800) if model in (_GPT5, _CODEX) else 0
    cost = inp * model.input_price + out * model.output_price + cache_read * model.input_price / 10
    status = rng.choices(("ok", "error", "aborted", "unknown"), (960, 25, 10, 5))[0]
    message_id = f"msg_{writer._uuid()[:18]}"
    ingested = _stamp(at + timedelta(seconds=rng.randint(1, 20)))
    recent = now - at < timedelta(hours=20)
    message = {
        "occurred_at": _stamp(at), "provider_id": provider, "agent_name": agent.source, "account_id": agent.account,
        "workspace_id": session.project, "session_id": session.id, "turn_id": f"turn-{turn}",
        "message_id": message_id, "event_type": "message_usage", "model_raw": model.name,
        "input_tokens": inp, "output_tokens": out, "reasoning_tokens": reasoning,
        "cache_read_tokens": cache_read, "cache_write_tokens": cache_write,
        "cost_usd": round(cost, 6) if status != "error" else None,
        "requests": None if agent.null_requests else 1, "status": status,
    }  # fmt: skip
    payload = json.dumps({"cwd": f"/home/dev/src/{session.project}", "model": model.name}) if recent else "{}"
    writer.add(
        source_system=agent.source,
        source_channel=agent.channel,
        source_schema_version=agent.schema,
        payload=payload,
        ingested_at=ingested,
        **message,
    )
    if agent.duplicate_rate and rng.random() < agent.duplicate_rate and room > 1:
        # The hook reports the same message without the project: a second row openusage
        # only collapses at read time (openusage-store.md §2.5).
        writer.add(
            source_system=agent.source,
            source_channel="hook",
            source_schema_version=agent.duplicate_schema,
            payload=payload,
            ingested_at=ingested,
            **{**message, "workspace_id": None, "requests": 1},
        )
        return provider, 2
    return provider, 1


def _write_tool_calls(
    writer: EventWriter, rng: random.Random, session: _Session, *, provider: str, at: datetime, now: datetime, room: int
) -> tuple[int, datetime]:
    """Write the tool calls after a message; return how many, and the time of the last."""
    written = 0
    agent = session.agent
    for _ in range(rng.choices((0, 1, 2, 3), (30, 35, 20, 15))[0]):
        if written >= room:
            break
        at += timedelta(seconds=rng.randint(1, 30), microseconds=rng.randrange(1_000_000))
        if at > now:
            break
        writer.add(
            source_system=agent.source,
            source_channel=agent.channel,
            source_schema_version=agent.schema,
            payload="{}",
            event_type="tool_usage",
            occurred_at=_stamp(at),
            provider_id=provider,
            agent_name=agent.source,
            account_id=agent.account,
            workspace_id=session.project,
            session_id=session.id,
            tool_call_id=f"toolu_{writer._uuid()[:20]}",
            tool_name=rng.choice(_TOOLS),
            requests=1,
            status=rng.choices(("ok", "error", "aborted"), (92, 6, 2))[0],
        )
        written += 1
    return written, at


def _metric(used: float | None, limit: float | None, remaining: float | None, unit: str, window: str) -> dict[str, Any]:
    return {"limit": limit, "remaining": remaining, "unit": unit, "used": used, "window": window}


def _limit_snapshots(now: datetime, rng: random.Random) -> list[tuple[str, str, str, dict[str, Any], dict[str, str]]]:
    """Return (provider, account, status, metrics, resets) of the newest poll of each demo account."""
    five_hour = (now + timedelta(hours=2, minutes=14)).replace(second=0, microsecond=0)
    week = (now + timedelta(days=3, hours=5)).replace(minute=0, second=0, microsecond=0)
    month = (now + timedelta(days=17)).replace(hour=0, minute=0, second=0, microsecond=0)
    used_5h = round(20 + rng.random() * 60, 1)
    return [
        ("claude_code", "claude-code", "OK", {
            "usage_five_hour": _metric(used_5h, 100, None, "%", "5h"),
            "usage_seven_day": _metric(round(30 + rng.random() * 40, 1), 100, None, "%", "7d"),
            "usage_seven_day_opus": _metric(12.0, 100, None, "%", "7d-opus"),
            "burn_rate": _metric(4.21, None, None, "USD/h", "current 5h block"),
        }, {"usage_five_hour": _stamp(five_hour), "usage_seven_day": _stamp(week), "billing_block": _stamp(five_hour)}),
        ("codex", "codex-cli", "NEAR_LIMIT", {
            "rate_limit_primary": _metric(18.0, 100, 82, "%", "5h"),
            "rate_limit_secondary": _metric(91.0, 100, 9, "%", "7d"),
            "credit_balance": _metric(12.5, None, None, "USD", "current"),
        }, {"rate_limit_primary": _stamp(five_hour), "rate_limit_secondary": _stamp(week)}),
        ("cursor", "cursor-ide", "OK", {
            "plan_spend": _metric(13.2, 20, 6.8, "USD", "billing-cycle"),
            "plan_percent_used": _metric(66.0, 100, None, "%", "billing-cycle"),
        }, {"billing_cycle_end": _stamp(month)}),
        ("copilot", "copilot", "OK", {
            "premium_interactions_quota": _metric(212, 300, 88, "requests", "month"),
            "chat_quota": _metric(None, None, None, "%", "month"),
        }, {"quota_reset": _stamp(month), "premium_interactions_quota_reset": _stamp(month)}),
        ("openrouter", "openrouter", "OK", {
            "credit_balance": _metric(37.9, 50, 12.1, "USD", "lifetime"),
        }, {}),
        ("gemini_cli", "gemini-cli", "OK", {
            "quota_pro": _metric(35.0, 100, None, "%", "daily"),
        }, {"quota_pro_reset": _stamp(month)}),
    ]  # fmt: skip


def _write_limit_snapshots(writer: EventWriter, now: datetime, rng: random.Random) -> None:
    for provider, account, status, metrics, resets in _limit_snapshots(now, rng):
        for poll in range(48):  # one poll every 30 minutes over the last day
            at = (now - timedelta(minutes=30 * poll + rng.randint(0, 4))).replace(microsecond=0)
            newest = poll == 0
            # Older payloads are blanked; gemini's newest is too (the #293 case: quota stale, not gone).
            blank = not newest or provider == "gemini_cli"
            snapshot = {"account_id": account, "attributes": {}, "diagnostics": {}, "message": "",
                        "metrics": metrics, "provider_id": provider, "resets": resets, "status": status}  # fmt: skip
            if poll == 1 and provider == "gemini_cli":
                blank = False  # the newest readable one is an hour old
            if poll == 1 and provider == "claude_code":
                # Half an hour earlier the 5-hour window was 20 points lower: it runs out before it resets.
                blank = False
                earlier = dict(metrics, usage_five_hour={**metrics["usage_five_hour"],
                                                         "used": metrics["usage_five_hour"]["used"] - 20})  # fmt: skip
                snapshot = {**snapshot, "metrics": earlier}
            payload = "{}" if blank else json.dumps({"snapshot": snapshot}, sort_keys=True, separators=(",", ":"))
            writer.add(
                source_system="provider_poller",
                source_channel="api",
                source_schema_version="provider_snapshot_v1",
                payload=payload,
                event_type="limit_snapshot",
                occurred_at=_stamp(at),
                provider_id=provider,
                agent_name="provider_poller",
                account_id=account,
                turn_id=f"snapshot:{provider}:{account}:{at:%Y-%m-%dT%H:%M:%SZ}",
                status={"ERROR": "error", "LIMITED": "aborted"}.get(status, "ok"),
            )


def _write_balances(conn: sqlite3.Connection, now: datetime) -> None:
    rows: list[tuple[Any, ...]] = []
    for hours in range(0, 72, 6):
        at = (now - timedelta(hours=hours)).replace(second=0, microsecond=0)
        rows.append(("openrouter", "openrouter", "credit_balance", _stamp(at), 37.9 - hours * 0.1, 50.0,
                     12.1 + hours * 0.1, "USD", "cumulative"))  # fmt: skip
        rows.append(("codex", "codex-cli", "credit_balance", _stamp(at), 12.5, None, None, "USD", "balance"))
    conn.executemany("INSERT OR REPLACE INTO balance_observations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _write_spools(state_dir: Path, now: datetime, rng: random.Random) -> None:
    hook = state_dir / HOOK_SPOOL_DIR
    telemetry = state_dir / TELEMETRY_SPOOL_DIR
    hook.mkdir(parents=True, exist_ok=True)
    telemetry.mkdir(parents=True, exist_ok=True)
    for age in (2, 4, 95):  # the oldest has waited long enough to count as stuck
        path = hook / f"{rng.randrange(10_000, 99_999)}{rng.randrange(100, 32_767)}.json"
        body = {"source": "claude_code", "account_id": "", "payload": {"hook_event_name": "PostToolUse"}}
        path.write_text(json.dumps(body) + "\n")
        stamp = now.timestamp() - age
        os.utime(path, (stamp, stamp))
    (hook / f"{int(now.timestamp())}_{rng.getrandbits(32):08x}.json.tmp").write_text("{")

    def record(age: float, attempt: int, error: str | None) -> None:
        created = now - timedelta(seconds=age)
        spool_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        ns = int(created.timestamp()) * 1_000_000_000 + created.microsecond * 1000
        body: dict[str, Any] = {
            "spool_id": spool_id, "created_at": _stamp(created), "source_system": "codex",
            "source_channel": "jsonl", "attempt": attempt,
            "payload": {"source_system": "codex", "source_channel": "jsonl",
                        "source_schema_version": "codex_session_v1", "occurred_at": _stamp(created),
                        "event_type": "message_usage"},
        }  # fmt: skip
        if error:
            body["last_error"] = error
        (telemetry / f"{ns:019d}_{spool_id}.jsonl").write_text(json.dumps(body) + "\n")

    record(3600, 3, "ingest: database is locked")
    record(40, 0, None)
    record(12, 0, None)
    malformed_ns = int((now - timedelta(minutes=5)).timestamp() * 1e9)
    (telemetry / f"{malformed_ns:019d}_broken.jsonl").write_text("{not json\n")


def generate_demo_store(
    state_dir: Path,
    *,
    days: int = 120,
    events: int = 20_000,
    seed: int = 1,
    now: datetime | None = None,
) -> Path:
    """Write a demo state folder (store and spools) into `state_dir`; return the store's path.

    `events` counts usage rows (messages and tool calls, duplicates included). Days older than the
    daemon's 90-day retention survive only in the daily rollup.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    rng = random.Random(seed)
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "telemetry.db"
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")  # bulk load; WAL is switched on at the end
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -65536")
        create_schema(conn, LATEST_RELEASE, indexes=False)
        conn.execute("BEGIN")
        writer = EventWriter(conn, rng)
        _write_sessions(writer, rng, now, days, events)
        _write_limit_snapshots(writer, now, rng)
        writer.flush()
        _write_balances(conn, now)
        conn.executemany(
            "INSERT INTO _migrations VALUES (?, ?)",
            [(name, f"{now - timedelta(days=days):%Y-%m-%d %H:%M:%S}") for name in (
                "repair_codex_provider_id", "repair_codex_account_id", "repair_cursor_provider_id",
                "cleanup_zero_timestamp_events")],
        )  # fmt: skip
        conn.execute("COMMIT")
        create_indexes(conn)
        # The daemon's retention pass: roll every day up, then prune raw rows behind the watermark
        # at an exact-time cutoff, which leaves the oldest raw day partly pruned.
        conn.execute("BEGIN")
        watermark = f"{now - timedelta(days=1):%Y-%m-%d}"
        build_rollup(conn, watermark)
        cutoff = _stamp(now - timedelta(days=RETENTION_DAYS))
        conn.execute(
            "DELETE FROM usage_events WHERE occurred_at < ? AND substr(occurred_at, 1, 10) <= ?", (cutoff, watermark)
        )
        conn.execute("DELETE FROM usage_raw_events WHERE raw_event_id NOT IN (SELECT raw_event_id FROM usage_events)")
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    _write_spools(state_dir, now, rng)
    return path
