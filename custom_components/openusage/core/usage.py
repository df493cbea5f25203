"""Usage figures: read-time deduplication, windows, rollup and breakdowns (metrics.md §1–§3).

One SQL pass deduplicates every usage row of the store (openusage-store.md §4.3) and folds the
winners into a small cube: one row per combination of window membership and breakdown keys.
Python then adds the cube up per window and key. Sessions stay in the cube because distinct counts
cannot be added up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .clock import SORT_KEY_SQL, WindowBounds
from .models import (
    ALL_WINDOWS,
    BREAKDOWN_WINDOWS,
    RECENT_WINDOWS,
    Breakdown,
    Measures,
    UsageFigures,
    Window,
    WindowedMeasures,
)

DEFAULT_PROVIDER_LINKS: Mapping[str, str] = {
    "anthropic": "claude_code",
    "google": "gemini_api",
    "github-copilot": "copilot",
}

NANO_USD = 1_000_000_000
# Costs are added up as whole nano-dollars, so every way of adding them (SQL, Python, incremental)
# gives the same figure to the last digit.
COST_NANO_SQL = "CAST(ROUND(coalesce({col}, 0) * 1e9) AS INTEGER)"

# Deduplicated usage rows (openusage-store.md §4.3), over the whole table.
DEDUPED_USAGE_SQL = """
WITH scoped AS (
  SELECT e.*, r.source_system AS src, r.source_channel AS chan
  FROM usage_events e JOIN usage_raw_events r ON r.raw_event_id = e.raw_event_id
  WHERE e.event_type IN ('message_usage', 'tool_usage')
),
keyed AS (
  SELECT *, CASE
      WHEN trim(coalesce(tool_call_id, '')) <> '' THEN 'tool:' || lower(trim(tool_call_id))
      WHEN event_type = 'message_usage' AND lower(trim(src)) = 'codex' AND trim(coalesce(turn_id, '')) <> ''
        THEN 'message_turn:' || lower(trim(turn_id))
      WHEN trim(coalesce(message_id, '')) <> '' THEN 'message:' || lower(trim(message_id))
      WHEN trim(coalesce(turn_id, '')) <> '' THEN 'turn:' || lower(trim(turn_id))
      ELSE 'fallback:' || dedup_key END AS logical_id
  FROM scoped
),
ranked AS (
  SELECT *, ROW_NUMBER() OVER (
      PARTITION BY lower(trim(src)), lower(trim(event_type)), lower(trim(coalesce(session_id, ''))), logical_id
      ORDER BY CASE lower(trim(chan)) WHEN 'hook' THEN 4 WHEN 'sse' THEN 3 WHEN 'sqlite' THEN 2
                                      WHEN 'jsonl' THEN 2 WHEN 'api' THEN 1 ELSE 0 END DESC,
               (4 * (coalesce(total_tokens, 0) > 0) + 2 * (coalesce(cost_usd, 0) > 0)
                + (trim(coalesce(model_canonical, model_raw, '')) <> '')
                + (trim(coalesce(provider_id, '')) <> ''
                   AND lower(trim(provider_id)) NOT IN ('unknown', 'opencode'))) DESC,
               occurred_at DESC, event_id DESC) AS rn
  FROM keyed
)
SELECT * FROM ranked WHERE rn = 1
"""

_PARTS = ("input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens")
_SUM_PARTS = " + ".join(f"coalesce({p}, 0)" for p in _PARTS)

_BIT = {Window.TODAY: 1, Window.H24: 2, Window.D7: 4, Window.D30: 8}
_ACTIVE_BIT = 16
_RECENT_MASK = 15

_CUBE_SQL = f"""
WITH winners AS ({DEDUPED_USAGE_SQL}),
marked AS (
  SELECT *, {SORT_KEY_SQL.format(col="occurred_at")} AS okey FROM winners
),
masked AS (
  SELECT *, (okey >= :today) | ((okey >= :h24) << 1) | ((okey >= :d7) << 2) | ((okey >= :d30) << 3)
            | ((okey >= :active) << 4) AS mask,
         event_type = 'message_usage' AND status <> 'error' AS is_message
  FROM marked
)
SELECT mask,
       substr(occurred_at, 1, 10) = :day_b AS on_b,
       lower(trim(coalesce(provider_id, ''))) AS provider,
       trim(coalesce(account_id, '')) AS account,
       coalesce(nullif(trim(model_canonical), ''), nullif(trim(model_raw), ''), 'unknown') AS model,
       CASE WHEN mask & {_RECENT_MASK}
            THEN coalesce(nullif(trim(agent_name), ''), nullif(trim(src), ''), 'unknown') END AS agent,
       CASE WHEN event_type = 'tool_usage' AND mask & {_RECENT_MASK}
            THEN coalesce(nullif(lower(trim(tool_name)), ''), 'unknown') END AS tool,
       CASE WHEN is_message AND mask & {_RECENT_MASK} THEN nullif(trim(workspace_id), '') END AS project,
       event_type = 'tool_usage' AS is_tool,
       status = 'error' AS is_error,
       CASE WHEN is_message OR mask & {_ACTIVE_BIT} THEN nullif(trim(session_id), '') END AS session,
       COUNT(*),
       {", ".join(f"SUM(coalesce({p}, 0))" for p in _PARTS)},
       SUM(coalesce(total_tokens, {_SUM_PARTS})),
       SUM({COST_NANO_SQL.format(col="cost_usd")}),
       SUM(coalesce(requests, 1)),
       MAX(okey), occurred_at
FROM masked
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
"""

_OLDEST_DAY_SQL = """
SELECT substr(e.occurred_at, 1, 10) FROM usage_events e
WHERE e.event_type IN ('message_usage', 'tool_usage')
  AND EXISTS (SELECT 1 FROM usage_raw_events r WHERE r.raw_event_id = e.raw_event_id)
ORDER BY e.occurred_at LIMIT 1
"""

_ROLLUP_SQL = f"""
SELECT day = :day_b AS on_b,
       lower(trim(provider_id)), trim(account_id), coalesce(nullif(trim(model_canonical), ''), 'unknown'),
       tool_name <> '' AS is_tool, status = 'error' AS is_error,
       SUM(event_count),
       {", ".join(f"SUM({p})" for p in _PARTS)}, SUM(total_tokens),
       SUM({COST_NANO_SQL.format(col="cost_usd")})
FROM usage_rollup_daily WHERE day <= :day_b
GROUP BY 1, 2, 3, 4, 5, 6
"""

# Accumulator slots: the integer measures, in Measures field order, cost kept in nano-dollars.
_N_SLOTS = 12
(_IN, _OUT, _REASON, _CREAD, _CWRITE, _TOTAL, _COST, _REQ, _MSG, _ERR, _TOOLS, _TOOL_ERR) = range(_N_SLOTS)


@dataclass(slots=True)
class _Acc:
    slots: list[int] = field(default_factory=lambda: [0] * _N_SLOTS)
    sessions: set[str] = field(default_factory=set)

    def freeze(self) -> Measures:
        s = self.slots
        return Measures(
            input_tokens=s[_IN],
            output_tokens=s[_OUT],
            reasoning_tokens=s[_REASON],
            cache_read_tokens=s[_CREAD],
            cache_write_tokens=s[_CWRITE],
            total_tokens=s[_TOTAL],
            cost_usd=s[_COST] / NANO_USD,
            requests=s[_REQ],
            messages=s[_MSG],
            errors=s[_ERR],
            tool_calls=s[_TOOLS],
            tool_errors=s[_TOOL_ERR],
            sessions=len(self.sessions),
        )


@dataclass(frozen=True, slots=True)
class UsageRead:
    """What the usage queries found, beside the figures."""

    figures: UsageFigures
    last_event_at: str | None
    oldest_raw_day: str | None


def map_provider(provider: str, links: Mapping[str, str]) -> str:
    """The provider key of metrics.md §3: links applied, blank → `unknown`."""
    provider = provider.strip().lower()
    return links.get(provider, provider) or "unknown"


class _Folder:
    """Adds cube rows up per breakdown key and window."""

    def __init__(self, links: Mapping[str, str]) -> None:
        self._links = links
        self.totals: dict[Window, _Acc] = {}
        self.keyed: dict[Breakdown, dict[str, dict[Window, _Acc]]] = {b: {} for b in Breakdown}

    def _target(self, breakdown: Breakdown, key: str) -> dict[Window, _Acc]:
        per_key = self.keyed[breakdown]
        target = per_key.get(key)
        if target is None:
            target = per_key[key] = {}
        return target

    def add(
        self,
        windows: Sequence[Window],
        keys: Iterable[tuple[Breakdown, str]],
        contribution: Sequence[int],
        session: str | None,
    ) -> None:
        targets: list[tuple[dict[Window, _Acc], tuple[Window, ...]]] = [(self.totals, ALL_WINDOWS)]
        targets.extend((self._target(b, k), BREAKDOWN_WINDOWS[b]) for b, k in keys)
        for per_window, allowed in targets:
            for window in windows:
                if window not in allowed:
                    continue
                acc = per_window.get(window)
                if acc is None:
                    acc = per_window[window] = _Acc()
                slots = acc.slots
                for i, value in enumerate(contribution):
                    if value:
                        slots[i] += value
                if session is not None:
                    acc.sessions.add(session)

    def figures(self, active_sessions: int) -> UsageFigures:
        def freeze(per_window: dict[Window, _Acc], windows: tuple[Window, ...]) -> WindowedMeasures:
            return {w: (per_window[w].freeze() if w in per_window else Measures()) for w in windows}

        breakdowns = {
            b: {
                key: freeze(per_window, BREAKDOWN_WINDOWS[b])
                for key, per_window in sorted(self.keyed[b].items())
                if per_window  # a key exists once one of its windows holds a row
            }
            for b in Breakdown
        }
        return UsageFigures(
            totals=freeze(self.totals, ALL_WINDOWS),
            breakdowns=breakdowns,
            active_sessions=active_sessions,
        )

    def account_key(self, provider: str, account: str) -> tuple[str, str]:
        mapped = map_provider(provider, self._links)
        return mapped, f"{mapped}/{account.strip() or 'default'}"


def _contribution(is_tool: bool, is_error: bool, count: int, sums: Sequence[int]) -> list[int]:
    """What one group of rows adds to each slot (metrics.md §2.3–§2.5)."""
    slots = [0] * _N_SLOTS
    if is_tool:
        slots[_TOOLS] = count
        slots[_TOOL_ERR] = count if is_error else 0
    elif is_error:
        slots[_ERR] = count
    else:
        slots[_IN : _COST + 1] = sums[:7]
        slots[_REQ] = sums[7]
        slots[_MSG] = count
    return slots


async def read_usage_cube(
    db: Any, bounds: WindowBounds, rollup_watermark: str | None, has_rollup: bool
) -> tuple[list[Any], list[Any], str | None]:
    """Run the usage queries inside the caller's read transaction: the cube, the rollup rows that may
    count, and day B (the UTC day of the oldest raw usage row)."""
    async with db.execute(_OLDEST_DAY_SQL) as cursor:
        row = await cursor.fetchone()
    oldest_day: str | None = row[0] if row else None

    params = {
        "today": bounds.keys[Window.TODAY],
        "h24": bounds.keys[Window.H24],
        "d7": bounds.keys[Window.D7],
        "d30": bounds.keys[Window.D30],
        "active": bounds.active_key,
        "day_b": oldest_day or "",
    }
    async with db.execute(_CUBE_SQL, params) as cursor:
        cube = list(await cursor.fetchall())

    rollup: list[Any] = []
    if has_rollup and rollup_watermark:
        async with db.execute(_ROLLUP_SQL, {"day_b": oldest_day or "9999-12-31"}) as cursor:
            rollup = list(await cursor.fetchall())
    return cube, rollup, oldest_day


def fold_usage(
    cube: Sequence[Sequence[Any]],
    rollup: Sequence[Sequence[Any]],
    links: Mapping[str, str],
    oldest_day: str | None,
    rollup_watermark: str | None,
) -> UsageRead:
    """Add up the cube and the rollup rows into the figures (pure Python, no I/O)."""
    folder = _Folder(links)

    # metrics.md §1: day B comes from the rollup when it was partly pruned, else from raw rows.
    raw_on_b = sum(r[11] for r in cube if r[1])
    rollup_on_b = sum(r[6] or 0 for r in rollup if r[0])
    b_from_rollup = (
        oldest_day is not None
        and rollup_watermark is not None
        and oldest_day <= rollup_watermark
        and rollup_on_b > raw_on_b
    )

    active: set[str] = set()
    last_key: str | None = None
    last_event_at: str | None = None
    for row in cube:
        (mask, on_b, provider, account, model, agent, tool, project, is_tool, is_error, session, count) = row[:12]
        sums = row[12:20]
        if row[20] is not None and (last_key is None or row[20] > last_key):
            last_key, last_event_at = row[20], row[21]
        if mask & _ACTIVE_BIT and session is not None:
            active.add(session)
        windows = [w for w in RECENT_WINDOWS if mask & _BIT[w]]
        if not (on_b and b_from_rollup):
            windows.append(Window.ALL)
        if not windows:
            continue
        mapped, account_key = folder.account_key(provider, account)
        keys: list[tuple[Breakdown, str]] = [
            (Breakdown.PROVIDER, mapped),
            (Breakdown.ACCOUNT, account_key),
            (Breakdown.MODEL, model),
        ]
        if agent is not None:
            keys.append((Breakdown.AGENT, agent))
        if tool is not None:
            keys.append((Breakdown.TOOL, tool))
        if project is not None:
            keys.append((Breakdown.PROJECT, project))
        counted_session = session if not is_tool and not is_error else None
        folder.add(windows, keys, _contribution(bool(is_tool), bool(is_error), count, sums), counted_session)

    for row in rollup:
        on_b, provider, account, model, is_tool, is_error, count = row[:7]
        if on_b and not b_from_rollup:
            continue
        mapped, account_key = folder.account_key(provider, account)
        tokens_and_cost = [int(v or 0) for v in row[7:14]]
        # The rollup counts NULL requests as 0; messages stand in for requests (metrics.md §2.8).
        sums = [*tokens_and_cost, int(count or 0)]
        folder.add(
            (Window.ALL,),
            ((Breakdown.PROVIDER, mapped), (Breakdown.ACCOUNT, account_key), (Breakdown.MODEL, model)),
            _contribution(bool(is_tool), bool(is_error), int(count or 0), sums),
            None,
        )

    return UsageRead(
        figures=folder.figures(len(active)),
        last_event_at=last_event_at,
        oldest_raw_day=oldest_day,
    )
