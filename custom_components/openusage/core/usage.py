"""Usage figures: read-time deduplication, windows, rollup and breakdowns (metrics.md §1–§3).

Deduplicated rows reach Python as fold rows: winners grouped by breakdown keys, session, UTC day and
window membership, with their count and sums. `KeptUsage` adds fold rows to, and takes them from, the
sums of every window and key, so one piece of code serves a first full read and every incremental change
(mirror.py). Sessions are kept as reference counts because distinct counts cannot be added up. Messages
are distinct message identities (metrics.md §2.3): a winner whose identity no other winner shares counts
as one; the few that share theirs (one message kept under two sessions) come with their identity, kept
as reference counts like sessions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeAlias

from .db import Database, run
from .models import (
    ALL_WINDOWS,
    BREAKDOWN_WINDOWS,
    PERIOD_WINDOWS,
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

# The pieces of openusage's read-time deduplication (openusage-store.md §4.3), over the columns of
# usage_events plus `src` and `chan` (the raw row's source_system and source_channel).
LOGICAL_ID_SQL = """CASE
      WHEN trim(coalesce(tool_call_id, '')) <> '' THEN 'tool:' || lower(trim(tool_call_id))
      WHEN event_type = 'message_usage' AND lower(trim(src)) = 'codex' AND trim(coalesce(turn_id, '')) <> ''
        THEN 'message_turn:' || lower(trim(turn_id))
      WHEN trim(coalesce(message_id, '')) <> '' THEN 'message:' || lower(trim(message_id))
      WHEN trim(coalesce(turn_id, '')) <> '' THEN 'turn:' || lower(trim(turn_id))
      ELSE 'fallback:' || dedup_key END"""
PARTITION_SQL = "lower(trim(src)), lower(trim(event_type)), lower(trim(coalesce(session_id, ''))), logical_id"
# A usage row's dedup partition as one value (the mirror keeps it per row).
PARTITION_KEY_SQL = f"json_array({PARTITION_SQL.replace('logical_id', LOGICAL_ID_SQL)})"
PRIORITY_SQL = """CASE lower(trim(chan)) WHEN 'hook' THEN 4 WHEN 'sse' THEN 3 WHEN 'sqlite' THEN 2
                                      WHEN 'jsonl' THEN 2 WHEN 'api' THEN 1 ELSE 0 END"""
QUALITY_SQL = """(4 * (coalesce(total_tokens, 0) > 0) + 2 * (coalesce(cost_usd, 0) > 0)
                + (trim(coalesce(model_canonical, model_raw, '')) <> '')
                + (trim(coalesce(provider_id, '')) <> ''
                   AND lower(trim(provider_id)) NOT IN ('unknown', 'opencode')))"""
# The largest figures one usage row may carry: tokens and requests below 2^40, cost up to $10,000. A row
# beyond them (or with a negative, non-numeric or infinite figure) is nothing openusage records; left in,
# one such row would blank every figure (SQLite's sums overflow) or print Infinity.
MAX_ROW_COUNT = 2**40
MAX_ROW_COST_USD = 10_000
_COUNTS = ("input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens",
           "total_tokens", "requests")  # fmt: skip
# A usage row the contract can place (metrics.md §2.1): a time in the stored form, figures in range.
# A time in the stored form (openusage-store.md §2.1); anything else (NULL, '', other forms, a BLOB) cannot be placed.
STORED_TIME_SQL = "{col} GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]*'"
_IN_RANGE = "(e.{c} IS NULL OR (typeof(e.{c}) IN ('integer', 'real') AND e.{c} BETWEEN 0 AND {top}))"
PLACEABLE_SQL = " AND ".join(
    [
        STORED_TIME_SQL.format(col="e.occurred_at"),
        *(_IN_RANGE.format(c=c, top=MAX_ROW_COUNT) for c in _COUNTS),
        _IN_RANGE.format(c="cost_usd", top=MAX_ROW_COST_USD),
    ]
)
# Scoped usage rows: message and tool rows that have their raw partner and can be placed, with `rid` (the rowid).
SCOPED_USAGE_SQL = f"""
  SELECT e.rowid AS rid, e.*, r.source_system AS src, r.source_channel AS chan
  FROM usage_events e JOIN usage_raw_events r ON r.raw_event_id = e.raw_event_id
  WHERE e.event_type IN ('message_usage', 'tool_usage') AND {PLACEABLE_SQL}"""
# Usage rows the contract cannot place, with a rowid from `:lo` to `:hi`: left out of every figure, counted
# instead, per block of `:size` rowids (`+e.event_type`: walk the rowids, not the event-type index).
LEFT_OUT_ROWS_SQL = f"""
SELECT e.rowid FROM usage_events e
WHERE e.rowid BETWEEN :lo AND :hi AND +e.event_type IN ('message_usage', 'tool_usage') AND ({PLACEABLE_SQL}) IS NOT 1"""
LEFT_OUT_SQL = f"SELECT rowid / :size, count(*) FROM ({LEFT_OUT_ROWS_SQL}) GROUP BY 1"

# Deduplicated usage rows (openusage-store.md §4.3), over the whole table.
DEDUPED_USAGE_SQL = f"""
WITH scoped AS ({SCOPED_USAGE_SQL}
),
keyed AS (SELECT *, {LOGICAL_ID_SQL} AS logical_id FROM scoped),
ranked AS (
  SELECT *, ROW_NUMBER() OVER (
      PARTITION BY {PARTITION_SQL}
      ORDER BY {PRIORITY_SQL} DESC, {QUALITY_SQL} DESC, occurred_at DESC, event_id DESC) AS rn
  FROM keyed
)
SELECT * FROM ranked WHERE rn = 1
"""

_PARTS = ("input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens")
_SUM_PARTS = " + ".join(f"coalesce({p}, 0)" for p in _PARTS)
# What one usage row measures, in fold-row order: the five token parts, total, cost (nano-dollars), requests.
MEASURE_SQL: tuple[str, ...] = (
    *(f"coalesce({p}, 0)" for p in _PARTS),
    f"coalesce(total_tokens, {_SUM_PARTS})",
    COST_NANO_SQL.format(col="cost_usd"),
    "coalesce(requests, 1)",
)

# Window membership of a fold row, as bits.
WINDOW_BITS: dict[Window, int] = {
    Window.TODAY: 1, Window.H24: 2, Window.D7: 4, Window.D30: 8, Window.WEEK: 64, Window.MONTH: 128,
}  # fmt: skip
ACTIVE_BIT = 16
ALL_BIT = 32
_COUNTED_BITS = ALL_BIT | sum(WINDOW_BITS.values())

# A rollup row: whether it is day B's, whether its day is in this week and this month (metrics.md §1),
# then its group and sums.
_ROLLUP_SQL = f"""
SELECT day = :day_b AS on_b, day >= :week AS in_week, day >= :month AS in_month,
       lower(trim(provider_id)), trim(account_id), coalesce(nullif(trim(model_canonical), ''), 'unknown'),
       tool_name <> '' AS is_tool, status = 'error' AS is_error,
       total(event_count),
       {", ".join(f"total({p})" for p in _PARTS)}, total(total_tokens),
       total({COST_NANO_SQL.format(col="cost_usd")})
FROM usage_rollup_daily WHERE day >= :since AND day <= :day_b
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
"""


class RollupRow(NamedTuple):
    """One group of rollup rows, as `_ROLLUP_SQL` selects it: the group, then its sums."""

    on_b: int  # the group's day is day B
    in_week: int  # its day is in this week, this month
    in_month: int
    provider: str | None
    account: str | None
    model: str
    is_tool: int
    is_error: int
    events: float
    input_tokens: float
    output_tokens: float
    reasoning_tokens: float
    cache_read_tokens: float
    cache_write_tokens: float
    total_tokens: float
    cost_nano: float

    @property
    def group(self) -> tuple[Any, ...]:
        """What names the group: the columns before its sums."""
        return self[:_ROLLUP_GROUP]

    def in_period(self, window: Window) -> bool:
        """Whether the group's day is in the calendar window (this week or this month)."""
        return bool(self.in_week if window is Window.WEEK else self.in_month)


_ROLLUP_GROUP = RollupRow._fields.index("events")

# Accumulator slots: the integer measures in Measures field order (cost in nano-dollars), then how many
# records (rows, or rollup groups) add up to them: a key exists in a window while that is above zero.
_N_SLOTS = 13
(_IN, _OUT, _REASON, _CREAD, _CWRITE, _TOTAL, _COST, _REQ, _MSG, _ERR, _TOOLS, _TOOL_ERR, _RECORDS) = range(_N_SLOTS)

Target: TypeAlias = tuple[Breakdown | None, str]
_TOTALS: Target = (None, "")


@dataclass(slots=True)
class _Acc:
    slots: list[int] = field(default_factory=lambda: [0] * _N_SLOTS)
    sessions: dict[str, int] = field(default_factory=dict)
    shared_messages: dict[str, int] = field(default_factory=dict)  # identities more than one winner has

    def is_empty(self) -> bool:
        """Nothing left, so the target goes.

        Not just its records: an `extra` mixes signs, and taking day B's raw rows away can leave its records at
        zero beside the rollup's tool calls.
        """
        return not any(self.slots) and not self.sessions and not self.shared_messages


_EMPTY = _Acc()
_ZERO = Measures()


def _freeze(slots: Sequence[int], sessions: int, shared_messages: int) -> Measures:
    return Measures(
        input_tokens=slots[_IN],
        output_tokens=slots[_OUT],
        reasoning_tokens=slots[_REASON],
        cache_read_tokens=slots[_CREAD],
        cache_write_tokens=slots[_CWRITE],
        total_tokens=slots[_TOTAL],
        cost_usd=slots[_COST] / NANO_USD,
        requests=slots[_REQ],
        messages=slots[_MSG] + shared_messages,
        errors=slots[_ERR],
        tool_calls=slots[_TOOLS],
        tool_errors=slots[_TOOL_ERR],
        sessions=sessions,
    )


def _bump(counts: dict[str, int], key: str, delta: int) -> None:
    """Change a reference count; a key whose count reaches zero goes."""
    left = counts.get(key, 0) + delta
    if left:
        counts[key] = left
    else:
        del counts[key]


_RECENT_WINDOW_BITS = tuple((window, WINDOW_BITS[window]) for window in RECENT_WINDOWS)


class _Change(NamedTuple):
    """What one group of rows adds to a target's slots."""

    slots: tuple[tuple[int, int], ...]  # (slot, value), the values not zero
    may_empty: bool  # whether it can leave a target with nothing: only with a value below zero, or none at all


def _add_to(
    per_target: dict[Target, _Acc],
    targets: Iterable[Target],
    change: _Change,
    refs: tuple[str, str, int],
) -> None:
    """Add one contribution to each target's sums.

    Also `count` references to its session and shared message identity (each '' when none), given as `refs`
    (session, identity, count). A target left with nothing goes.
    """
    session, identity, count = refs
    changes = change.slots
    may_empty = change.may_empty or count < 0
    for target in targets:
        acc = per_target.get(target)
        if acc is None:
            acc = per_target[target] = _Acc()
        slots = acc.slots
        for slot, value in changes:  # in place: a new list per add would keep the GC busy
            slots[slot] += value
        if session:
            _bump(acc.sessions, session, count)
        if identity:
            _bump(acc.shared_messages, identity, count)
        if may_empty and acc.is_empty():
            del per_target[target]


def _merge(per_target: dict[Target, _Acc], other: Mapping[Target, _Acc], sign: int) -> None:
    """Add (sign 1) or take away (sign -1) other sums, target by target.

    Sums below zero stay (an `extra` takes day B's raw rows away).
    """
    for target, acc in other.items():
        mine = per_target.get(target)
        if mine is None:
            mine = per_target[target] = _Acc()
        slots = mine.slots
        for i, value in enumerate(acc.slots):
            slots[i] += sign * value
        for session, count in acc.sessions.items():
            _bump(mine.sessions, session, sign * count)
        for identity, count in acc.shared_messages.items():
            _bump(mine.shared_messages, identity, sign * count)
        if mine.is_empty():
            del per_target[target]


def _distinct(kept: Mapping[str, int], extra: Mapping[str, int]) -> int:
    """How many keys have references left in both counts together.

    Kept counts are positive; `extra` may take references away (day B from the rollup), so only its keys are looked
    at again.
    """
    return len(kept) + sum((kept.get(k, 0) + c > 0) - (k in kept) for k, c in extra.items())


def _targets_state(sums: Mapping[Target, _Acc]) -> list[list[Any]]:
    return [
        [b.value if b else None, key, acc.slots, acc.sessions, acc.shared_messages] for (b, key), acc in sums.items()
    ]


def _targets_of_state(rows: Iterable[Sequence[Any]]) -> dict[Target, _Acc]:
    sums: dict[Target, _Acc] = {}
    for breakdown, key, slots, sessions, shared in rows:
        if len(slots) != _N_SLOTS:
            raise ValueError("kept sums of another shape")
        target = (Breakdown(breakdown) if breakdown is not None else None, str(key))
        sums[target] = _Acc([int(v) for v in slots], {str(k): int(v) for k, v in sessions.items()},
                            {str(k): int(v) for k, v in shared.items()})  # fmt: skip
    return sums


def map_provider(provider: str, links: Mapping[str, str]) -> str:
    """Return the provider key of metrics.md §3: links applied, blank → `unknown`."""
    provider = provider.strip().lower()
    return links.get(provider, provider) or "unknown"


def _contribution(
    is_tool: bool, is_error: bool, count: int, sums: Sequence[int], *, records: int, messages: int
) -> _Change:
    """Return what one group of rows adds to each slot (metrics.md §2.3–§2.5).

    `sums[7]` is the requests, which are also the tool calls of tool rows (Copilot's workspace-file rows carry 0: no
    call).
    """
    slots = [0] * _N_SLOTS
    if is_tool:
        slots[_TOOLS] = sums[7]
        slots[_TOOL_ERR] = sums[7] if is_error else 0
    elif is_error:
        slots[_ERR] = count
    else:
        slots[_IN : _COST + 1] = sums[:7]
        slots[_REQ] = sums[7]
        slots[_MSG] = messages
    slots[_RECORDS] = records
    changes = tuple((slot, value) for slot, value in enumerate(slots) if value)
    return _Change(changes, not changes or any(value < 0 for _slot, value in changes))


class KeptUsage:
    """The sums of every window and breakdown key, kept up to date by adding and taking fold rows.

    A fold row is (provider, account, model, agent, tool, project, is_tool, is_error, session, identity,
    day, mask, count, five token parts, total, cost in nano-dollars, requests); `tool`, `project`,
    `session` and `identity` are '' when absent (`identity` is given only for a message identity that more
    than one winner has) and `mask` holds WINDOW_BITS, ACTIVE_BIT and ALL_BIT.
    """

    def __init__(self, links: Mapping[str, str]) -> None:
        """Start empty sums, with the provider links to apply to each row."""
        self._links = links
        self._windows: dict[Window, dict[Target, _Acc]] = {w: {} for w in ALL_WINDOWS}
        self._targets: dict[tuple[Any, ...], dict[Window, tuple[Target, ...]]] = {}
        self._days: dict[str, dict[Target, _Acc]] = {}  # the `all` sums split by UTC day, to drop a day at once
        self.active: dict[str, int] = {}
        self.version = 0  # counts the changes, so unchanged figures need not be computed again
        # The Measures handed out last time, the targets changed since, and the `extra` they included.
        self._frozen: dict[Window, dict[Target, Measures]] = {w: {} for w in ALL_WINDOWS}
        self._dirty: dict[Window, set[Target]] = {w: set() for w in ALL_WINDOWS}
        self._frozen_extra: dict[Window, dict[Target, _Acc]] = {}

    def state(self) -> dict[str, Any]:
        """Return the sums as plain JSON values, to keep them across a restart (`restored` reads them back)."""
        return {
            "windows": {str(w): _targets_state(sums) for w, sums in self._windows.items()},
            "days": {day: _targets_state(sums) for day, sums in self._days.items()},
            "active": self.active,
        }

    @classmethod
    def restored(cls, links: Mapping[str, str], state: Mapping[str, Any]) -> KeptUsage:
        """Return the sums `state` holds (raises KeyError, TypeError or ValueError when it is malformed)."""
        kept = cls(links)
        for window, sums in state["windows"].items():
            kept._windows[Window(window)] = _targets_of_state(sums)
        kept._days = {str(day): _targets_of_state(sums) for day, sums in state["days"].items()}
        kept.active = {str(k): int(v) for k, v in state["active"].items()}
        # Nothing was handed out yet: every target is worked out on the first `figures`.
        kept._dirty = {w: set(sums) for w, sums in kept._windows.items()}
        return kept

    def sibling(self) -> KeptUsage:
        """Return an empty KeptUsage with the same provider links, sharing the work of mapping keys to targets."""
        other = KeptUsage(self._links)
        other._targets = self._targets
        return other

    def _targets_of(self, dims: tuple[str, str, str, str, str, str]) -> dict[Window, tuple[Target, ...]]:
        """Map (provider, account, model, agent, tool, project) to the targets a row adds to, per window."""
        provider, account, model, agent, tool, project = dims
        found = self._targets.get(dims)
        if found is None:
            mapped = map_provider(provider, self._links)
            keys: list[tuple[Breakdown, str]] = [
                (Breakdown.PROVIDER, mapped),
                (Breakdown.ACCOUNT, f"{mapped}/{account.strip() or 'default'}"),
                (Breakdown.MODEL, model),
            ]
            if agent:  # rollup rows carry none
                keys.append((Breakdown.AGENT, agent))
            if tool:
                keys.append((Breakdown.TOOL, tool))
            if project:
                keys.append((Breakdown.PROJECT, project))
            found = self._targets[dims] = {
                w: (_TOTALS, *(k for k in keys if w in BREAKDOWN_WINDOWS[k[0]])) for w in ALL_WINDOWS
            }
        return found

    def _add(
        self,
        window: Window,
        targets: Iterable[Target],
        contribution: _Change,
        refs: tuple[str, str, int],
    ) -> None:
        _add_to(self._windows[window], targets, contribution, refs)
        self._dirty[window].update(targets)

    def apply(self, rows: Iterable[Sequence[Any]], sign: int) -> None:
        """Add (sign 1) or take away (sign -1) fold rows.

        A fold row is what `mirror._FOLD_SQL` selects: the breakdown keys, the kind, session, message identity,
        UTC day, window bits and count, then the sums of the measures.
        """
        for row in rows:
            self.version += 1
            (provider, account, model, agent, tool, project, is_tool, is_error, session, identity, day, mask, count,
             *measures) = row  # fmt: skip
            count *= sign
            if mask & ACTIVE_BIT and session:
                _bump(self.active, session, count)
            if not mask & _COUNTED_BITS:
                continue
            sums = [sign * int(v) for v in measures]  # totals: SQLite adds them as floats, never overflowing
            is_message = not is_tool and not is_error
            contribution = _contribution(
                bool(is_tool), bool(is_error), count, sums, records=count, messages=0 if identity else count
            )
            refs = (session if is_message else "", identity if is_message else "", count)
            targets = self._targets_of((provider, account, model, agent, tool, project))
            for window, bit in _RECENT_WINDOW_BITS:
                if mask & bit:
                    self._add(window, targets[window], contribution, refs)
            if mask & ALL_BIT:
                self._add(Window.ALL, targets[Window.ALL], contribution, refs)
                day_sums = self._days.get(day)
                if day_sums is None:
                    day_sums = self._days[day] = {}
                _add_to(day_sums, targets[Window.ALL], contribution, refs)
                if not day_sums:
                    del self._days[day]

    def rows_on(self, day: str) -> int:
        """How many deduplicated raw rows of one UTC day count in `all`."""
        totals = self._days.get(day, {}).get(_TOTALS)
        return totals.slots[_RECORDS] if totals else 0

    def days(self) -> list[str]:
        """Return the UTC days that have deduplicated raw rows in `all`."""
        return list(self._days)

    def drop_day(self, day: str) -> None:
        """Take a whole UTC day out of `all` (its raw rows were pruned), without reading its rows."""
        self.version += 1
        sums = self._days.pop(day, {})
        _merge(self._windows[Window.ALL], sums, -1)
        self._dirty[Window.ALL].update(sums)

    def take_day_of(self, other: KeptUsage, day: str) -> None:
        """Take `other`'s raw rows of one UTC day away from this one's `all` (day B from the rollup instead)."""
        sums = other._days.get(day, {})
        _merge(self._windows[Window.ALL], sums, -1)
        self._dirty[Window.ALL].update(sums)

    def add_rollup(self, rows: Iterable[RollupRow], periods: Collection[Window] = ()) -> None:
        """Add rollup rows to `all`, and to those of the calendar windows `periods` their day is in.

        Each is one record, with no session.
        """
        for row in rows:
            count = int(row.events or 0)
            # The rollup counts NULL requests as 0; messages stand in for requests (metrics.md §2.8).
            sums = [*(int(v or 0) for v in row[_ROLLUP_GROUP + 1 :]), count]
            targets = self._targets_of((row.provider or "", row.account or "", row.model, "", "", ""))
            contribution = _contribution(bool(row.is_tool), bool(row.is_error), count, sums, records=1, messages=count)
            for window in (Window.ALL, *(w for w in periods if row.in_period(w))):
                self._add(window, targets[window], contribution, ("", "", 0))

    def figures(self, extra: KeptUsage | None = None) -> UsageFigures:
        """Return the figures, with `extra` (rollup rows, day B taken away) added to `all` and the calendar windows.

        Only the targets that changed since the last call, here or in `extra`, are worked out again (so `extra`
        must not change afterwards: build a new one).
        """
        for window in (Window.ALL, *PERIOD_WINDOWS):
            more_now = extra._windows[window] if extra else {}
            before = self._frozen_extra.get(window, {})
            if more_now is not before:  # the same extra as last time (its rollup rows unchanged): nothing to compare
                self._dirty[window].update(
                    t for t in more_now.keys() | before.keys() if more_now.get(t) != before.get(t)
                )
            self._frozen_extra[window] = more_now
        for window in ALL_WINDOWS:
            own, frozen = self._windows[window], self._frozen[window]
            more = self._frozen_extra.get(window, {})
            for target in self._dirty[window]:
                a, b = own.get(target, _EMPTY), more.get(target, _EMPTY)
                slots = [x + y for x, y in zip(a.slots, b.slots, strict=True)]
                if slots[_RECORDS] > 0:
                    shared = _distinct(a.shared_messages, b.shared_messages)
                    frozen[target] = _freeze(slots, _distinct(a.sessions, b.sessions), shared)
                else:
                    frozen.pop(target, None)
            self._dirty[window] = set()

        def windowed(target: Target, windows: tuple[Window, ...]) -> WindowedMeasures:
            return {w: self._frozen[w].get(target, _ZERO) for w in windows}

        keys: dict[Breakdown, set[str]] = {b: set() for b in Breakdown}
        for found in self._frozen.values():
            for breakdown, key in found:
                if breakdown is not None:
                    keys[breakdown].add(key)
        return UsageFigures(
            totals=windowed(_TOTALS, ALL_WINDOWS),
            breakdowns={
                b: {key: windowed((b, key), BREAKDOWN_WINDOWS[b]) for key in sorted(keys[b])} for b in Breakdown
            },
            active_sessions=len(self.active),
        )


@dataclass(frozen=True, slots=True)
class UsageRead:
    """What the usage queries found, beside the figures."""

    figures: UsageFigures
    last_event_at: str | None
    oldest_raw_day: str | None
    rows_left_out: int
    first_event_at: str | None = None  # the oldest usage row's time, where the history starts
    # What each provider (mapped) spent in each UTC hour ('YYYY-MM-DDTHH') of the projection's history, in
    # nano-dollars (forecast.py).
    hourly_cost: tuple[tuple[str, str, int], ...] = ()


async def read_rollup(
    db: Database, oldest_day: str | None, first_days: Mapping[Window, str], since: str = ""
) -> list[RollupRow]:
    """Return rollup rows grouped by what the figures split them by, for days from `since` up to day B.

    Each is flagged with the calendar windows (by their `first_days`) its day is in (metrics.md §1).
    """
    params = {
        "day_b": oldest_day or "9999-12-31",
        "since": since,
        "week": first_days[Window.WEEK],
        "month": first_days[Window.MONTH],
    }
    return [RollupRow._make(row) for row in await run(db, _ROLLUP_SQL, params)]


def merge_rollup(*parts: Iterable[RollupRow]) -> list[RollupRow]:
    """Return rollup rows of several reads as one: rows of the same group summed."""
    sums: dict[tuple[Any, ...], list[Any]] = {}
    for rows in parts:
        for row in rows:
            values = row[_ROLLUP_GROUP:]
            known = sums.get(row.group)
            sums[row.group] = list(values) if known is None else [a + b for a, b in zip(known, values, strict=True)]
    return [RollupRow(*key, *values) for key, values in sums.items()]
