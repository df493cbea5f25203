"""Hourly usage history for long-term statistics: cost, tokens and requests per hour and provider.

Raw rows give hours. Days before the oldest raw row (pruned by openusage) come from its daily
rollup, as one value at the day's first hour (UTC). Only message rows count (metrics.md §2.3),
deduplicated as everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from .db import one, run
from .reader import ReadOptions, fetch_watermark, open_store
from .usage import COST_NANO_SQL, DEDUPED_USAGE_SQL, NANO_USD, map_provider

# A duplicate that arrives this long after the original still finds it when history starts at a bound.
_DEDUP_MARGIN = timedelta(days=1)
_PARTS = ("input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens")
_SCOPE = "WHERE e.event_type IN ('message_usage', 'tool_usage')"
_TOTAL = f"coalesce(total_tokens, {' + '.join(f'coalesce({p}, 0)' for p in _PARTS)})"

_HOURLY_SQL = f"""
WITH winners AS ({DEDUPED_USAGE_SQL.replace(_SCOPE, _SCOPE + " AND e.occurred_at >= :margin")})
SELECT substr(occurred_at, 1, 13), lower(trim(coalesce(provider_id, ''))),
       SUM({COST_NANO_SQL.format(col="cost_usd")}), SUM({_TOTAL}), SUM(coalesce(requests, 1))
FROM winners
WHERE occurred_at >= :since AND occurred_at < :until AND event_type = 'message_usage' AND status <> 'error'
GROUP BY 1, 2
"""
_ROLLUP_SQL = f"""
SELECT day, lower(trim(provider_id)), SUM({COST_NANO_SQL.format(col="cost_usd")}), SUM(total_tokens),
       SUM(event_count)
FROM usage_rollup_daily
WHERE day >= :since_day AND day < :before_day AND tool_name = '' AND status <> 'error'
GROUP BY 1, 2
"""
_OLDEST_DAY_SQL = """
SELECT substr(occurred_at, 1, 10) FROM usage_events WHERE +event_type IN ('message_usage', 'tool_usage')
ORDER BY occurred_at LIMIT 1
"""


@dataclass(frozen=True, slots=True)
class HourlyUsage:
    """Usage in one hour (from the rollup: in the whole day that starts at `start`) for one provider."""

    start: datetime
    provider: str
    cost_usd: float
    tokens: int
    requests: int


async def read_hourly_usage(
    path: Path, since: datetime, until: datetime, options: ReadOptions | None = None
) -> list[HourlyUsage]:
    """Usage per hour and provider in [since, until) (whole UTC hours), oldest first.

    Raises StoreError like `read_store`.
    """
    options = options or ReadOptions()
    rows: list[HourlyUsage] = []
    async with open_store(path, options.busy_timeout) as (db, tables):
        found = await one(db, _OLDEST_DAY_SQL)
        first_raw_day = datetime.fromisoformat(found[0]).date() if found else until.date() + timedelta(days=1)
        if await fetch_watermark(db, tables) and "usage_rollup_daily" in tables:
            params = {"since_day": since.date().isoformat(), "before_day": first_raw_day.isoformat()}
            for row in await run(db, _ROLLUP_SQL, params):
                start = datetime.fromisoformat(row[0]).replace(tzinfo=UTC)
                if start < until:
                    rows.append(_usage(start, row, options.provider_links))
        raw_from = max(since, datetime.combine(first_raw_day, time(0), UTC))
        if raw_from < until:
            params = {"margin": _bound(raw_from - _DEDUP_MARGIN), "since": _bound(raw_from), "until": _bound(until)}
            for row in await run(db, _HOURLY_SQL, params):
                start = datetime.fromisoformat(f"{row[0]}:00:00").replace(tzinfo=UTC)
                rows.append(_usage(start, row, options.provider_links))
    rows.sort(key=lambda r: (r.start, r.provider))
    return rows


def _usage(start: datetime, row: Sequence[Any], links: Mapping[str, str]) -> HourlyUsage:
    """One (period, provider, cost in nano-dollars, tokens, requests) row."""
    _, provider, cost, tokens, requests = row
    return HourlyUsage(
        start=start,
        provider=map_provider(provider or "", links),
        cost_usd=int(cost or 0) / NANO_USD,
        tokens=int(tokens or 0),
        requests=int(requests or 0),
    )


def _bound(instant: datetime) -> str:
    """Return a whole-second bound in the stored text's form, without `Z` (openusage-store.md §2.1)."""
    return f"{instant.astimezone(UTC):%Y-%m-%dT%H:%M:%S}"
