"""Quotas from the newest readable limit snapshot of each provider account (metrics.md §4)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sqlite3
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from .clock import parse_time, sort_key
from .db import Database, stream
from .models import QuotaMetric, QuotaSnapshot, QuotaStatus
from .providers import KNOWN_QUOTA_METRICS
from .usage import STORED_TIME_SQL

# Each account with its newest snapshot's time.
_ACCOUNTS_SQL = f"""
SELECT provider_id, account_id, MAX(occurred_at) FILTER (WHERE {STORED_TIME_SQL.format(col="occurred_at")})
FROM usage_events WHERE event_type = 'limit_snapshot'
GROUP BY provider_id, account_id
"""
# Newest first; blanked payloads are skipped inside SQLite so they never cross into Python.
_ROWS_SQL = f"""
SELECT e.occurred_at, r.source_payload FROM usage_events e
JOIN usage_raw_events r ON r.raw_event_id = e.raw_event_id
WHERE e.event_type = 'limit_snapshot' AND e.provider_id IS :provider{{n}} AND e.account_id IS :account{{n}}
  AND {STORED_TIME_SQL.format(col="e.occurred_at")}
ORDER BY e.occurred_at DESC
"""
# The newest rows of several accounts in one statement, each row with its account's place in the list.
_FIRST_ROWS_SQL = f"SELECT {{n}}, * FROM ({_ROWS_SQL} LIMIT {{limit}})"
_ACCOUNTS_A_STATEMENT = 100  # well inside SQLite's limit of 500 parts of a compound statement
# Stop looking for a readable payload after this many blanked or broken ones: at openusage ≤ 0.24.4
# every older payload is blanked too, and walking months of polls would make a refresh slow.
_MAX_SKIPPED = 500
# Each metric is two entities; a provider that sends thousands would bury Home Assistant (and one MQTT
# discovery document would grow to tens of MB). openusage's providers write at most a few dozen.
MAX_METRICS_PER_ACCOUNT = 100
# The recent rate of a percent quota comes from the snapshots of the last hour (at most this many), and
# needs two of them at least five minutes apart (metrics.md §4).
RATE_SPAN = timedelta(hours=1)
RATE_MIN_SPAN = timedelta(minutes=5)
_MAX_RATE_SAMPLES = 60
_SCAN_ROWS = 64  # snapshot rows read at once: the newest and the last half hour's, most often
_LOGGER = logging.getLogger(__name__)
_told_left_out: set[tuple[str, str, int]] = set()  # said once per process, not at every refresh


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def used_percent(used: float | None, limit: float | None, remaining: float | None, unit: str | None) -> float | None:
    """Percent used, as openusage's display computes it (metrics.md §4); None where it is not a finite number."""
    percent = _percent(used, limit, remaining, unit)
    return percent if percent is not None and math.isfinite(percent) else None


def _percent(used: float | None, limit: float | None, remaining: float | None, unit: str | None) -> float | None:
    if unit == "%":
        if used is None and remaining is not None:
            return 100 - remaining  # a provider that reports only what is left
        return used
    if limit is not None and limit > 0:
        if remaining is not None:
            return (limit - remaining) / limit * 100
        if used is not None:
            return used / limit * 100
    return None


def _percents(snapshot: dict[str, Any]) -> dict[str, float]:
    """Percent used of each metric of a parsed snapshot that has one."""
    raw_metrics = snapshot.get("metrics")
    found: dict[str, float] = {}
    if isinstance(raw_metrics, dict):
        for key, raw in raw_metrics.items():
            if isinstance(raw, dict):
                number = {name: _number(raw.get(name)) for name in ("used", "limit", "remaining")}
                percent = used_percent(number["used"], number["limit"], number["remaining"], _text(raw.get("unit")))
                if percent is not None:
                    found[str(key)] = percent
    return found


def exhaustion(
    samples: Sequence[tuple[datetime, float]], resets_at: datetime | None
) -> tuple[float | None, datetime | None]:
    """Return the rate (percent an hour) of a quota's samples since its last reset, and when it reaches 100 %.

    The samples are oldest first. The time is None where the quota does not rise, is full, or resets first.
    """
    since_reset = list(samples)
    for index in range(len(samples) - 1, 0, -1):
        if samples[index][1] < samples[index - 1][1]:  # a drop: the window reset between the two
            since_reset = list(samples[index:])
            break
    if len(since_reset) < 2 or since_reset[-1][0] - since_reset[0][0] < RATE_MIN_SPAN:
        return None, None
    origin = since_reset[0][0]
    hours = [(at - origin).total_seconds() / 3600 for at, _ in since_reset]
    percents = [percent for _, percent in since_reset]
    mean_h, mean_p = sum(hours) / len(hours), sum(percents) / len(percents)
    spread = sum((h - mean_h) ** 2 for h in hours)
    rate = sum((h - mean_h) * (p - mean_p) for h, p in zip(hours, percents, strict=True)) / spread
    last_at, last = since_reset[-1]
    if rate <= 0 or last >= 100:
        return (rate if rate > 0 else 0.0), None
    at = last_at + timedelta(hours=(100 - last) / rate)
    return rate, (None if resets_at is not None and at >= resets_at else at)


def _with_exhaustion(quota: QuotaSnapshot, history: Sequence[_Parsed]) -> QuotaSnapshot:
    """Return the quota with each percent metric's rate and exhaustion time, from `history`.

    The history is newest first, the quota's own snapshot among them.
    """
    metrics = dict(quota.metrics)
    for key, metric in quota.metrics.items():
        if metric.unit != "%" or metric.resets_at is None:
            continue
        samples = [
            (row.at, row.percents[key]) for row in reversed(history) if row.at is not None and key in row.percents
        ]
        rate, at = exhaustion(samples, metric.resets_at)
        metrics[key] = replace(metric, rate_percent_per_hour=None if rate is None else round(rate, 3), exhausted_at=at)
    return replace(quota, metrics=metrics)


def parse_snapshot_payload(payload: str) -> dict[str, Any] | None:
    """Return the `snapshot` object of a limit-snapshot payload, or None when blanked or malformed."""
    try:
        document = json.loads(payload)
    except (ValueError, TypeError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    snapshot = document.get("snapshot")
    return snapshot if isinstance(snapshot, dict) else None


def build_quota(
    provider_id: str,
    account_id: str,
    *,
    observed_at: str,
    snapshot: dict[str, Any] | None,
    stale: bool,
    now: datetime,
) -> QuotaSnapshot:
    """Turn one parsed snapshot (None when no readable one exists) into a QuotaSnapshot."""
    snapshot = snapshot or {}
    status_text = str(snapshot.get("status") or "").strip().upper()
    status = QuotaStatus(status_text) if status_text in QuotaStatus.__members__ else QuotaStatus.UNKNOWN
    resets = snapshot.get("resets")
    resets = resets if isinstance(resets, dict) else {}
    raw_metrics = snapshot.get("metrics")
    raw_metrics = raw_metrics if isinstance(raw_metrics, dict) else {}
    metrics: dict[str, QuotaMetric] = {}
    # The metrics openusage's providers are known to write first, then the others by name.
    keys = sorted(raw_metrics, key=lambda k: (str(k) not in KNOWN_QUOTA_METRICS, str(k)))
    left_out = max(0, len(keys) - MAX_METRICS_PER_ACCOUNT)
    if left_out and (provider_id, account_id, left_out) not in _told_left_out:
        _told_left_out.add((provider_id, account_id, left_out))
        _LOGGER.warning(
            "%s/%s reports %d quota metrics; the first %d are shown, %d left out (%s, ...)",
            provider_id, account_id, len(keys), MAX_METRICS_PER_ACCOUNT, left_out,
            ", ".join(str(k) for k in keys[MAX_METRICS_PER_ACCOUNT : MAX_METRICS_PER_ACCOUNT + 3]),
        )  # fmt: skip
    for key in keys[:MAX_METRICS_PER_ACCOUNT]:
        raw = raw_metrics[key]
        if not isinstance(raw, dict):
            continue
        used, limit, remaining = _number(raw.get("used")), _number(raw.get("limit")), _number(raw.get("remaining"))
        unit = _text(raw.get("unit"))
        reset = parse_time(resets.get(key)) or parse_time(resets.get(f"{key}_reset"))
        metrics[str(key)] = QuotaMetric(
            used=used,
            limit=limit,
            remaining=remaining,
            unit=unit,
            window=_text(raw.get("window")),
            used_percent=used_percent(used, limit, remaining, unit),
            resets_at=reset,
        )
    observed = parse_time(observed_at)
    return QuotaSnapshot(
        provider_id=provider_id,
        account_id=account_id,
        status=status,
        message=_text(snapshot.get("message")) or "",
        observed_at=observed,
        age_seconds=(now - observed).total_seconds() if observed else 0.0,
        stale=stale,
        metrics=metrics,
        metrics_left_out=left_out,
    )


@dataclass(frozen=True, slots=True)
class _Parsed:
    """What one snapshot row gives: its time, whether its payload is readable, each percent metric (for the rate)."""

    at: datetime | None
    readable: bool
    percents: dict[str, float]
    snapshot: dict[str, Any] | None  # the parsed payload, kept only for an account's newest readable row


class SnapshotMemo:
    """The snapshot rows parsed at the last refresh, by their time and payload text.

    Every refresh reads each account's last hour of snapshots for the rate: with openusage polling every 30 s that
    is up to 60 rows an account, and a payload may be tens of KB of JSON. Each is parsed once, when it first comes,
    not at every refresh. One refresh at a time: the rows not seen in it are forgotten at its end.
    """

    def __init__(self) -> None:
        """Start with nothing parsed."""
        self._last: dict[tuple[str, int, int], _Parsed] = {}
        self._now: dict[tuple[str, int, int], _Parsed] = {}

    def parsed(self, occurred_at: Any, payload: Any, *, whole: bool) -> _Parsed:
        """Return a row parsed, with its snapshot when `whole` (blocking: a payload may be parsed)."""
        if not isinstance(payload, str):
            return _Parsed(parse_time(occurred_at), False, {}, None)
        # The text's own hash: a key that keeps no copy of a payload.
        key = (str(occurred_at), len(payload), hash(payload))
        row = self._now.get(key) or self._last.get(key)
        if row is None or (whole and row.readable and row.snapshot is None):
            snapshot = parse_snapshot_payload(payload)
            readable = snapshot is not None
            percents = _percents(snapshot) if snapshot is not None else {}
            row = _Parsed(parse_time(occurred_at), readable, percents, snapshot if whole else None)
        elif not whole and row.snapshot is not None:
            row = replace(row, snapshot=None)  # no longer the newest: an hour of parsed payloads would be megabytes
        self._now[key] = row
        return row

    def end_refresh(self) -> None:
        """Forget the rows this refresh did not read."""
        self._last, self._now = self._now, {}


def _older_than_the_span(row: _Parsed, newest: _Parsed) -> bool:
    return row.at is None or newest.at is None or newest.at - row.at > RATE_SPAN


@dataclass(slots=True)
class _Scan:
    """One account's snapshot rows, newest first: the newest readable one, and the last hour's for the rate."""

    found: tuple[str, _Parsed] | None = None
    history: list[_Parsed] = field(default_factory=list)  # readable, newest first
    skipped: int = 0  # unreadable rows before the newest readable one
    done: bool = False
    fed: int = 0  # rows taken

    def feed(self, rows: Sequence[Sequence[Any]], memo: SnapshotMemo) -> bool:
        """Take the next rows and say whether no more are needed (blocking: payloads are parsed)."""
        self.fed += len(rows)
        for occurred_at, payload in rows:
            if self.found is not None:
                row = memo.parsed(occurred_at, payload, whole=False)
                if _older_than_the_span(row, self.found[1]) or len(self.history) >= _MAX_RATE_SAMPLES:
                    self.done = True
                    return True
                if row.readable:
                    self.history.append(row)
                continue
            row = memo.parsed(occurred_at, payload, whole=True)
            if row.readable:
                self.found = (occurred_at, row)
                self.history.append(row)
                continue
            self.skipped += 1
            if self.skipped >= _MAX_SKIPPED:
                self.done = True
                return True
        return False


_Account = tuple[Any, Any, Any, _Scan]  # provider, account (as stored), newest snapshot's time, its scan


def _read_newest(conn: sqlite3.Connection, memo: SnapshotMemo) -> list[_Account]:
    """Return every account with its scan fed its newest rows (on the connection's thread: one trip for them all)."""
    accounts = [(provider, account, newest, _Scan()) for provider, account, newest in conn.execute(_ACCOUNTS_SQL)]
    firsts: list[list[Any]] = [[] for _ in accounts]
    for start in range(0, len(accounts), _ACCOUNTS_A_STATEMENT):
        part = range(start, min(start + _ACCOUNTS_A_STATEMENT, len(accounts)))
        sql = " UNION ALL ".join(_FIRST_ROWS_SQL.format(n=n, limit=_SCAN_ROWS) for n in part)
        params = {}
        for n in part:
            params[f"provider{n}"], params[f"account{n}"] = accounts[n][:2]
        for n, *row in conn.execute(sql, params).fetchall():
            firsts[n].append(row)
    for (*_key, scan), rows in zip(accounts, firsts, strict=True):
        scan.feed(rows, memo)
    return accounts


async def read_quotas(
    db: Database, now: datetime, memo: SnapshotMemo | None = None
) -> tuple[dict[str, QuotaSnapshot], datetime | None]:
    """Read every account's quota, by account key in provider then account order, and the newest snapshot time.

    Payloads are parsed off the event loop (one may hold thousands of metrics). The accounts and their newest rows are
    read (a hundred accounts a statement) and parsed in one trip to the connection's thread; only an account whose
    newest rows hold no readable payload (or the whole last hour) reads on. With a `memo` of earlier refreshes, only
    the rows new since are parsed.
    """
    if memo is None:
        memo = SnapshotMemo()
    accounts = await db.call(lambda conn: _read_newest(conn, memo))
    for provider, account, _newest, scan in accounts:
        if scan.done or scan.fed < _SCAN_ROWS:  # the account has no more rows
            continue
        params = {"provider": provider, "account": account}
        more_sql = _ROWS_SQL.format(n="") + f" LIMIT -1 OFFSET {_SCAN_ROWS}"
        # Its statement ends at a break: aclosing finishes it.
        async with aclosing(stream(db, more_sql, params, _SCAN_ROWS)) as chunks:
            async for more in chunks:
                if await asyncio.to_thread(scan.feed, more, memo):
                    break
    memo.end_refresh()
    quotas: list[QuotaSnapshot] = []
    newest_overall: str | None = None
    for provider, account, newest, scan in accounts:
        if newest is not None and (newest_overall is None or sort_key(newest) > sort_key(newest_overall)):
            newest_overall = newest
        provider_id = str(provider or "").strip().lower() or "unknown"  # text, whatever the column held
        account_id = str(account or "").strip() or "default"
        if scan.found is None:
            quota = build_quota(provider_id, account_id, observed_at=newest or "", snapshot=None, stale=True, now=now)
        else:
            observed_at, parsed = scan.found
            quota = build_quota(
                provider_id,
                account_id,
                observed_at=observed_at,
                snapshot=parsed.snapshot,
                stale=scan.skipped > 0,
                now=now,
            )
            quota = _with_exhaustion(quota, scan.history)
        quotas.append(quota)
    quotas.sort(key=lambda q: (q.provider_id, q.account_id))
    return {q.account: q for q in quotas}, (parse_time(newest_overall) if newest_overall else None)
