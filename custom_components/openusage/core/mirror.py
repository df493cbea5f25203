"""Incremental refresh: kept figures, updated from what changed in the store since the last refresh.

A private SQLite database, a temporary file that SQLite deletes itself, mirrors the store's usage rows:
each row's dedup partition and rank (openusage-store.md §4.3), its time, breakdown keys and measures, and
whether it wins its partition. Python keeps the sums of every window (usage.KeptUsage). A refresh

* re-reads the store's newest rows (the rows new since the last refresh, and the RECENT_ROWS before
  them: the daemon enriches rows in place when a duplicate delivery arrives) and compares each one's
  text with what it held at the last refresh, which finds new, changed and deleted rows: only those
  are projected into the mirror's form;
* takes the old winners of every touched partition out of the sums, updates the mirror, picks the
  partitions' winners again and adds them back;
* takes rows pruned by openusage's retention (those older than the store's oldest usage row, the
  floor) out of the sums: whole days at once from the sums kept per day, without reading their rows,
  and only partitions that still have a row above the floor are ranked again; then they leave the mirror;
* ages the rolling windows by moving each bound over the winners that crossed it, without a rescan;
* finds the in-place changes openusage makes to older rows (a duplicate delivery enriching a row of any
  age) by fingerprints of blocks of rowids, per day, computed inside SQLite over every column the figures
  read: each refresh checks its share of the blocks, so that every block is checked once every
  `check_period` (an hour), and re-reads only the blocks whose fingerprints changed other than by whole
  pruned days. The rows after the last whole block that has left the tail are compared row by row
  instead, once every period too.

Nothing is rebuilt on a schedule: only a first refresh, a store that looks replaced (its top rows gone, a
different row at the mirror's top rowid, rows older than the floor), a new repair migration of openusage
(`_migrations`: it rewrites rows across the store) or a clock that went back reads every row again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import sqlite3
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from .clock import SORT_KEY_SQL, WindowBounds, instant_key
from .db import Database, one, run, run_all, stream
from .forecast import profile_since
from .models import PERIOD_WINDOWS, UsageFigures, Window
from .usage import (
    ACTIVE_BIT,
    ALL_BIT,
    LEFT_OUT_ROWS_SQL,
    LEFT_OUT_SQL,
    MEASURE_SQL,
    PARTITION_KEY_SQL,
    PLACEABLE_SQL,
    PRIORITY_SQL,
    QUALITY_SQL,
    SCOPED_USAGE_SQL,
    WINDOW_BITS,
    KeptUsage,
    RollupRow,
    UsageRead,
    map_provider,
    merge_rollup,
    read_rollup,
)

# How many of the newest rows are re-read on every refresh, to see the daemon's in-place enrichment at once
# (a duplicate delivery most often comes within minutes); older rows are checked by their blocks' fingerprints.
RECENT_ROWS = 200
# Every older row is compared with the store at least this often, by blocks of this many rowids.
DEFAULT_CHECK_PERIOD = timedelta(hours=1)
CHECK_BLOCK_ROWS = 4096
# The first refresh after a restart checks the share of blocks this much time would: the rest of the
# store's blocks follow within a period, and the restart stays short.
_RESTART_CHECK = timedelta(minutes=2)
_TOP_ROWID = 2**63 - 1

_MEASURES = ("m_in", "m_out", "m_reason", "m_cread", "m_cwrite", "m_total", "m_cost", "m_req")
_DIMS = ("provider", "account", "model", "agent", "tool", "project", "is_tool", "is_error", "session", "mid")
_COLUMNS = ("rid", "pkey", "prio", "quality", "occurred_at", "event_id", "okey", *_DIMS, *_MEASURES)
_COLUMN_LIST = ", ".join(_COLUMNS)
_RANK_ORDER = "prio DESC, quality DESC, occurred_at DESC, event_id DESC"

# Every column of usage_events the figures read, as a JSON array a usage row (types and NULLs told apart), joined
# per block inside SQLite and hashed in Python; not the dedup key, which names the row an enrichment changes (a row
# whose type changes comes or goes). The rows before a cut a week after the floor's day (which openusage's
# retention prunes next) are joined with their day and hashed per day, the later ones together: a pruned day then
# leaves the block's other fingerprints as they were, and most rows are hashed without sorting them by day.
# Reading the 21 columns is most of the cost (about 1 µs a row of 1.4). The day is written in hex: a store may
# hold any bytes there.
FINGERPRINTED_COLUMNS = (
    "occurred_at", "status", "provider_id", "account_id", "agent_name", "workspace_id",
    "session_id", "turn_id", "message_id", "tool_call_id", "model_raw", "model_canonical", "tool_name",
    "input_tokens", "output_tokens", "reasoning_tokens", "cache_read_tokens", "cache_write_tokens",
    "total_tokens", "cost_usd", "requests",
)  # fmt: skip
# A block's usage rows, from rowid `:lo` to `:hi`.
BLOCK_ROWS_SQL = "FROM usage_events WHERE rowid BETWEEN :lo AND :hi AND +event_type IN ('message_usage', 'tool_usage')"
# A block's fingerprint statement, with {row} the text each usage row is read as (`:cut`: the day per-day rows end).
FINGERPRINT_SQL = (
    "SELECT CAST(group_concat({row}, char(30)) FILTER (WHERE coalesce(occurred_at >= :cut, 0)) AS BLOB), "
    "CAST(group_concat(hex(substr(occurred_at, 1, 10)) || ':' || {row}, char(30)) "
    "FILTER (WHERE NOT coalesce(occurred_at >= :cut, 0)) AS BLOB) " + BLOCK_ROWS_SQL
)
_ROW_JSON = f"json_array({', '.join(FINGERPRINTED_COLUMNS)})"
# JSON holds no BLOB: a block with one is read as SQL literals instead (in hex, so that no separator is in a row).
_ROW_QUOTED = f"hex({' || char(31) || '.join(f'quote({c})' for c in FINGERPRINTED_COLUMNS)})"
FINGERPRINT_JSON_SQL = FINGERPRINT_SQL.format(row=_ROW_JSON)
_FINGERPRINT_QUOTED_SQL = FINGERPRINT_SQL.format(row=_ROW_QUOTED)
# A block whose cut moves on: its fingerprints at the old cut (to compare) and at the new one, from one read. The
# subquery's LIMIT keeps SQLite from copying a row's text into each aggregate, so it is made once; each row before the
# new cut starts with whether it is after the old one.
_RECUT_SQL = (
    "SELECT CAST(group_concat(j, char(30)) FILTER (WHERE after_old) AS BLOB), "
    "CAST(group_concat(after_old || hex(substr(t, 1, 10)) || ':' || j, char(30)) FILTER (WHERE NOT after_new) "
    "AS BLOB), "
    "CAST(group_concat(j, char(30)) FILTER (WHERE after_new) AS BLOB) "
    "FROM (SELECT occurred_at AS t, coalesce(occurred_at >= :cut, 0) AS after_old, "
    "coalesce(occurred_at >= :new_cut, 0) AS after_new, {row} AS j " + BLOCK_ROWS_SQL + " LIMIT -1)"
)
_RECUT_JSON_SQL = _RECUT_SQL.format(row=_ROW_JSON)
_RECUT_QUOTED_SQL = _RECUT_SQL.format(row=_ROW_QUOTED)
# The tail's usage rows one by one, as the fingerprints see them (a row whose text changed is projected again), and
# whether the contract leaves each out.
_TAIL_SQL = (
    "SELECT e.rowid, CAST({row} AS BLOB), (" + PLACEABLE_SQL + ") IS NOT 1 FROM usage_events e "
    "WHERE e.rowid > :after AND +e.event_type IN ('message_usage', 'tool_usage')"
)
_TAIL_JSON_SQL = _TAIL_SQL.format(row=_ROW_JSON)
_TAIL_QUOTED_SQL = _TAIL_SQL.format(row=_ROW_QUOTED)
_CUT_AHEAD = timedelta(days=7)  # how far after the floor's day a block's fingerprints are cut, at the least
_CUT_MARGIN = timedelta(days=2)  # cut afresh when the floor's day comes this close to the cut
# The blocks' cuts are spread over this many days more: a day's prune cuts a fifth of the blocks afresh, rather
# than every block in the same hour once in five days.
_CUT_SPREAD = 5
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_PIECE = 1 << 20  # how much of the kept state's JSON is encoded at a time to compress it
_MIGRATIONS_SQL = "SELECT group_concat(name || ' ' || applied_at, ',') FROM (SELECT * FROM _migrations ORDER BY name)"

_CREATE_SQL = f"""
CREATE TABLE IF NOT EXISTS {{table}} (
  rid INTEGER PRIMARY KEY, pkey TEXT, prio INTEGER, quality INTEGER, occurred_at TEXT, event_id TEXT, okey TEXT,
  provider TEXT, account TEXT, model TEXT, agent TEXT, tool TEXT, project TEXT, is_tool INTEGER, is_error INTEGER,
  session TEXT, mid TEXT, {", ".join(f"{m} INTEGER" for m in _MEASURES)}, win INTEGER NOT NULL DEFAULT 1, pmax TEXT,
  shared INTEGER NOT NULL DEFAULT 0
)"""
# `pmax`: the newest row of the partition. Winners with a newer partner are few (a message delivered
# twice carries one time), and only they can leave a partner behind when the floor passes them.
# `mid`: the message identity of a message row ('' for other rows); `shared`: a winner whose identity
# another winner has too, so that it counts once however many sessions kept it (metrics.md §2.3). The index
# is partial: a query uses it only when it says `mid <> ''` itself.
_INDEX_SQL = (
    "CREATE INDEX IF NOT EXISTS mirror_partition ON mirror_rows (pkey)",
    "CREATE INDEX IF NOT EXISTS mirror_identity ON mirror_rows (mid) WHERE mid <> ''",
    "CREATE INDEX IF NOT EXISTS mirror_time ON mirror_rows (okey)",
    "CREATE INDEX IF NOT EXISTS mirror_spread ON mirror_rows (okey) WHERE win AND pmax > okey",
)
_INSERT_SQL = f"INSERT INTO mirror_rows ({_COLUMN_LIST}, pmax) SELECT {_COLUMN_LIST}, okey FROM ({{rows}})"

# The store's usage rows that `rows` picks, as mirror columns (`+e.event_type`: walk the rowids, not
# the event-type index, so a refresh reads only the tail).
_PROJECT_SQL = f"""
WITH scoped AS ({SCOPED_USAGE_SQL.replace("WHERE e.event_type", "WHERE +e.event_type")} AND {{rows}})
SELECT rid, {PARTITION_KEY_SQL} AS pkey,
       {PRIORITY_SQL} AS prio, {QUALITY_SQL} AS quality, occurred_at, event_id,
       {SORT_KEY_SQL.format(col="occurred_at")} AS okey,
       lower(trim(coalesce(provider_id, ''))) AS provider,
       trim(coalesce(account_id, '')) AS account,
       coalesce(nullif(trim(model_canonical), ''), nullif(trim(model_raw), ''), 'unknown') AS model,
       coalesce(nullif(trim(agent_name), ''), nullif(trim(src), ''), 'unknown') AS agent,
       CASE WHEN event_type = 'tool_usage' THEN coalesce(nullif(lower(trim(tool_name)), ''), 'unknown') ELSE ''
       END AS tool,
       CASE WHEN event_type = 'message_usage' AND status <> 'error' THEN trim(coalesce(workspace_id, '')) ELSE ''
       END AS project,
       event_type = 'tool_usage' AS is_tool, status = 'error' AS is_error, trim(coalesce(session_id, '')) AS session,
       CASE WHEN event_type = 'message_usage' AND status <> 'error'
         THEN coalesce(nullif(trim(message_id), ''), nullif(trim(turn_id), ''), dedup_key) ELSE '' END AS mid,
       {", ".join(f"{sql} AS {name}" for sql, name in zip(MEASURE_SQL, _MEASURES, strict=True))}
FROM scoped
"""

_MASK_SQL = (
    "((okey >= :today) | ((okey >= :h24) << 1) | ((okey >= :d7) << 2) | ((okey >= :d30) << 3)"
    f" | ((okey >= :active) << 4) | {ALL_BIT} | ((okey >= :week) << 6) | ((okey >= :month) << 7))"
)
# Winners grouped into fold rows (usage.KeptUsage), with `mask` saying which windows they count in. Tool
# and error rows count toward a session only while active, so elsewhere they are grouped without one:
# a rebuild then adds up a fifth as many fold rows (on the demo store).
_FOLD_EXPRESSIONS = {
    "session": f"CASE WHEN (is_tool OR is_error) AND NOT (({{mask}}) & {ACTIVE_BIT}) THEN '' ELSE session END",
    "mid": "CASE WHEN shared THEN mid ELSE '' END",
}
_FOLD_DIMS = ", ".join(_FOLD_EXPRESSIONS.get(d, d) for d in _DIMS)
_FOLD_FROM_SQL = f"""
SELECT {_FOLD_DIMS}, substr(okey, 1, 10), {{mask}},
       count(*), {", ".join(f"total({m})" for m in _MEASURES)}
FROM {{source}} WHERE win AND ({{where}})
GROUP BY {", ".join(str(i) for i in range(1, len(_DIMS) + 3))}
"""
_FOLD_SQL = _FOLD_FROM_SQL.replace("{source}", "mirror_rows")
_FOLD_DAY = len(_DIMS)  # where a fold row's day is
_CHOOSE_WINNER_SQL = f"""
UPDATE mirror_rows SET
  win = (rid IS (SELECT m.rid FROM mirror_rows m WHERE m.pkey = mirror_rows.pkey AND m.okey >= :floor
                ORDER BY {_RANK_ORDER} LIMIT 1)),
  pmax = (SELECT max(m.okey) FROM mirror_rows m WHERE m.pkey = mirror_rows.pkey AND m.okey >= :floor)
WHERE pkey IN (SELECT pkey FROM temp.touched)
"""
_MARK_SHARED_SQL = """
UPDATE mirror_rows SET shared = win AND mid <> '' AND EXISTS (
  SELECT 1 FROM mirror_rows o
  WHERE o.mid = mirror_rows.mid AND o.mid <> '' AND o.win AND o.rid <> mirror_rows.rid AND o.okey >= :floor)
WHERE pkey IN (SELECT pkey FROM temp.touched)
"""
# The partitions whose winner has a message identity that a touched partition has or gets: whether their
# winner shares it may change with the touched ones.
_TOUCH_SHARERS_SQL = """
INSERT OR IGNORE INTO temp.touched SELECT pkey FROM mirror_rows WHERE win AND mid <> '' AND mid IN (
  SELECT mid FROM mirror_rows WHERE pkey IN (SELECT pkey FROM temp.touched) UNION SELECT mid FROM temp.incoming)
"""
_DIFFERS = " OR ".join(f"m.{c} IS NOT i.{c}" for c in _COLUMNS[1:])
# The rows from rowid :lo to :hi (the recent tail, or a block read again) that are new, changed or gone.
_FIND_CHANGES_SQL = (
    f"INSERT OR IGNORE INTO temp.changed SELECT i.rid FROM ({_PROJECT_SQL.format(rows='e.rowid BETWEEN :lo AND :hi')})"
    f" i LEFT JOIN mirror_rows m ON m.rid = i.rid WHERE m.rid IS NULL OR {_DIFFERS}",
    "INSERT OR IGNORE INTO temp.changed SELECT rid FROM mirror_rows m WHERE rid BETWEEN :lo AND :hi AND NOT EXISTS ("
    "SELECT 1 FROM usage_events e WHERE e.rowid = m.rid AND e.event_type IN ('message_usage', 'tool_usage') "
    f"AND {PLACEABLE_SQL})",
)
# The changed rows as they are now, the partitions they were in and those they are in now, and the partitions
# sharing a message identity with those (their counted-once share may move).
_TOUCH_SQL = (
    (
        f"INSERT INTO temp.incoming ({_COLUMN_LIST}) "
        + _PROJECT_SQL.format(rows="e.rowid IN (SELECT rid FROM temp.changed)"),
        (),
    ),
    ("INSERT OR IGNORE INTO temp.touched SELECT pkey FROM mirror_rows WHERE rid IN (SELECT rid FROM temp.changed)", ()),
    ("INSERT OR IGNORE INTO temp.touched SELECT pkey FROM temp.incoming", ()),
    (_TOUCH_SHARERS_SQL, ()),
)
# Rows in the second of the store's oldest usage row that are gone.
_FLOOR_GONE_SQL = (
    "INSERT OR IGNORE INTO temp.changed SELECT rid FROM mirror_rows WHERE okey >= :floor AND okey < :floor_next "
    "AND NOT EXISTS (SELECT 1 FROM usage_events e WHERE e.rowid = mirror_rows.rid)"
)
# Partitions whose winner fell below the floor while a partner stays above it.
_STRADDLING_SQL = (
    "INSERT OR IGNORE INTO temp.touched SELECT pkey FROM mirror_rows "
    "WHERE win AND pmax > okey AND okey >= :old_floor AND okey < :floor AND pmax >= :floor"
)

# The oldest placeable usage row: rows without a proper time sort first, so they are walked past.
# Message rows' spend per provider and UTC hour, for the month projection (forecast.py).
_HOURLY_COST_SQL = """
SELECT provider, substr(okey, 1, 13), total(m_cost) FROM mirror_rows
WHERE win AND NOT is_tool AND NOT is_error AND okey >= :since AND okey < :until AND okey >= :floor
GROUP BY 1, 2
"""

# The text bounds, which the stored form implies, make SQLite walk the time index: without them SQLite 3.53 reads
# every row and sorts them (16 s a refresh at 1,000,000 rows). Only here: a full read walks the rowids instead.
_OLDEST_OF_SQL = """
SELECT e.occurred_at FROM usage_events e
WHERE e.occurred_at >= '0' AND e.occurred_at < ':' AND +e.event_type IN ('message_usage', 'tool_usage') {rows}
ORDER BY e.occurred_at LIMIT 1
"""
_OLDEST_SQL = _OLDEST_OF_SQL.format(
    rows=f"AND {PLACEABLE_SQL} AND EXISTS (SELECT 1 FROM usage_raw_events r WHERE r.raw_event_id = e.raw_event_id)"
)
# The oldest usage row with a stored time, placeable or not: when it moves on, rows were pruned, maybe only rows
# left out, which leave the floor where it was.
_OLDEST_ANY_SQL = _OLDEST_OF_SQL.format(rows="")
_TOP_AND_OLDEST_SQL = f"SELECT (SELECT coalesce(max(rowid), 0) FROM usage_events), ({_OLDEST_SQL}), ({_OLDEST_ANY_SQL})"

_META_SQL = "CREATE TABLE IF NOT EXISTS cache_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_NOT_CLEAN_SQL = "INSERT OR REPLACE INTO cache_meta (key, value) VALUES ('clean', '0')"


async def _same_store(db: Database) -> bool:
    """Whether the mirror's newest row is still the store's row of that rowid (a restored mirror's check)."""
    top = await one(db, "SELECT rid, event_id FROM mirror_rows ORDER BY rid DESC LIMIT 1")
    if top is None:
        return True
    found = await one(db, "SELECT event_id FROM usage_events WHERE rowid = ?", (top[0],))
    return found is not None and found[0] == top[1]


def _window_params(bounds: WindowBounds) -> dict[str, str]:
    return {
        "today": bounds.keys[Window.TODAY],
        "h24": bounds.keys[Window.H24],
        "d7": bounds.keys[Window.D7],
        "d30": bounds.keys[Window.D30],
        "week": bounds.keys[Window.WEEK],
        "month": bounds.keys[Window.MONTH],
        "active": bounds.active_key,
    }


def _aging_bounds(bounds: WindowBounds) -> dict[int, str]:
    return {**{WINDOW_BITS[w]: k for w, k in bounds.keys.items()}, ACTIVE_BIT: bounds.active_key}


def _floor_of(oldest: str | None) -> tuple[str, str]:
    """Return the floor (the second of the store's oldest usage row, in sort-key form) and the key after it."""
    if oldest is None:
        return _TOP, _TOP  # no usage row left: every mirrored row is gone
    return oldest[:19], oldest[:19] + _TOP


_TOP = "\U0010ffff"  # above every sort key
_AFTER_DAY = "U"  # after every key of the day or hour it is put after ('T' follows the day)


_Key = TypeVar("_Key", int, str)


class _Moment(NamedTuple):
    """Where a refresh stands in the store and in time."""

    max_rowid: int
    now: datetime
    restarted: bool  # the first refresh since the kept sums were taken up from a cache file
    oldest_any: str | None  # the oldest usage row's time, placeable or not


def _merged_keys(ranges: list[tuple[_Key, _Key]]) -> list[tuple[_Key, _Key]]:
    """Return ranges (from a key up to, not with, another) with those that overlap or touch made one."""
    merged: list[tuple[_Key, _Key]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Return rowid ranges with those that overlap or touch made one, so that no row is compared twice."""
    return [(low, high - 1) for low, high in _merged_keys([(low, high + 1) for low, high in ranges])]


def _rows_as_text(conn: sqlite3.Connection, json_and_quoted: tuple[str, str], params: Mapping[str, Any]) -> list[Any]:
    """Run a statement that reads rows as JSON text; one with a BLOB (JSON holds none) as SQL literals instead.

    On the connection's thread (`Database.call`).
    """
    json_sql, quoted_sql = json_and_quoted
    try:
        return conn.execute(json_sql, params).fetchall()
    except sqlite3.OperationalError:
        return conn.execute(quoted_sql, params).fetchall()


def _digest(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()[:8]


def _rows_of(text: bytes) -> list[bytes]:
    return text.split(b"\x1e") if text else []


def _block_print(cut: str, later: bytes, before: Iterable[bytes]) -> _BlockPrint:
    """Return a block's fingerprints from its rows' text: the rows after the cut together, the others by day."""
    per_day: dict[str, list[bytes]] = {}
    for row in before:
        day, _, text = row.partition(b":")  # JSON escapes the separators inside the row
        per_day.setdefault(bytes.fromhex(day.decode()).decode("latin-1"), []).append(text)
    return _BlockPrint(cut, _digest(later), {day: _digest(b"\x1e".join(rows)) for day, rows in per_day.items()})


def _recut_prints(
    cuts: tuple[str, str], later: bytes, before: bytes, later_new: bytes
) -> tuple[_BlockPrint, _BlockPrint]:
    """Return a block's fingerprints at its old cut and at its new one, from the text _RECUT_SQL reads."""
    cut, new_cut = cuts
    rows = _rows_of(before)
    before_old = (row[1:] for row in rows if row[:1] == b"0")
    return _block_print(cut, later, before_old), _block_print(new_cut, later_new, (row[1:] for row in rows))


def _cut_of(floor: str, ahead: timedelta) -> str:
    """Return the day `ahead` after the floor's ('' with no usage row left)."""
    try:
        return (date.fromisoformat(floor[:10]) + ahead).isoformat()
    except ValueError:
        return ""


def _block_cut(floor: str, block: int) -> str:
    """Return the day a block's new fingerprint is cut at: a week or more after the floor's, by the block."""
    return _cut_of(floor, _CUT_AHEAD + timedelta(days=block % _CUT_SPREAD))


_TEMP_TABLES = ("incoming", "changed", "touched")
_EMPTY_TEMP_TABLES = tuple((f"DELETE FROM temp.{table}", ()) for table in _TEMP_TABLES)


async def _make_temp_tables(db: Database) -> None:
    """Make the working tables (empty): rows read again, rowids that changed, partitions they touch."""
    made = (
        _CREATE_SQL.format(table="temp.incoming"),
        "CREATE TABLE IF NOT EXISTS temp.changed (rid INTEGER PRIMARY KEY)",
        "CREATE TABLE IF NOT EXISTS temp.touched (pkey TEXT PRIMARY KEY)",
    )
    await run_all(db, [*((sql, ()) for sql in made), *_EMPTY_TEMP_TABLES])


async def _fold(
    db: Database, usage: KeptUsage, sql: str, params: Mapping[str, Any], sign: int, *, since_day: str = _TOP
) -> set[str]:
    """Add (sign 1) or take away (sign -1) a fold query's rows, a chunk at a time between the statement's steps.

    Return the days on or after `since_day` the rows were on.
    """
    days: set[str] = set()
    async for rows in stream(db, sql, params):
        usage.apply(rows, sign)
        days.update(day for row in rows if (day := row[_FOLD_DAY]) >= since_day)
    return days


# What the rollup rows were read for: the watermark, day B, and the first days of this week and month.
_RollupKey = tuple[str, str | None, str, str]


async def _rollup_rows(
    db: Database, cached: tuple[_RollupKey | None, list[RollupRow]] | None, key: _RollupKey | None
) -> list[RollupRow]:
    """Return the rollup rows for `key`.

    When only day B moved on (openusage pruned its oldest raw days), the days before the old day B are as they were:
    only the days from it on are read.
    """
    if key is None:
        return []
    watermark, day_b, week, month = key
    first_days = {Window.WEEK: week, Window.MONTH: month}
    old_key, rows = cached or (None, [])
    if (
        old_key is not None
        and old_key[1] is not None
        and (old_key[0], *old_key[2:]) == (watermark, week, month)
        and (day_b or "") > old_key[1]
    ):
        since = old_key[1]
        return merge_rollup([r for r in rows if not r.on_b], await read_rollup(db, day_b, first_days, since))
    return await read_rollup(db, day_b, first_days)


@dataclass(frozen=True, slots=True)
class _BlockPrint:
    """A block's fingerprints: its rows before the cut by day, and all of its later rows."""

    cut: str  # a day, `YYYY-MM-DD`
    later: bytes
    days: dict[str, bytes]

    def same_but_pruned(self, other: _BlockPrint, floor: str) -> bool:
        """Whether `other` (the block now, cut alike) differs from this only by whole days before the floor's.

        openusage's retention deletes whole UTC days, oldest first (openusage-store.md §3.2). A mirrored row's sort
        key starts with its `occurred_at`'s day, so the rows of those days are below the floor, and the mirror
        drops them itself. Any other difference is a change, read again.
        """
        return (
            self.later == other.later
            and all(self.days.get(day) == fingerprint for day, fingerprint in other.days.items())
            and all(_DAY.fullmatch(day) and day < floor[:10] for day in self.days.keys() - other.days.keys())
        )


@dataclass(slots=True)
class _Kept:
    """What the mirror knows beside its rows."""

    usage: KeptUsage
    bounds: dict[int, str]  # window bit → the bound the sums were last moved to
    floor: str  # mirrored rows below it were pruned from the store and are out of the sums and the mirror
    tail_after: int  # rows after this rowid are re-read on every refresh
    max_rowid: int
    rebuilt_at: datetime
    migrations: str | None  # openusage's repair migrations applied when the mirror was built
    sealed: int  # blocks below this one have left the tail and have a fingerprint
    fingerprints: dict[int, _BlockPrint]  # sealed block → its fingerprints when last compared
    left_out: dict[int, int]  # sealed block → its usage rows the contract cannot place
    left_open: set[int]  # the rowids of such rows after the sealed blocks
    checked_at: datetime  # when blocks were last checked
    cursor: int = 0  # the next block to check (`sealed`: the rows after the sealed blocks)
    credit: float = 0.0  # blocks due but not checked yet (a fraction of one)
    rollup: tuple[_RollupKey | None, list[RollupRow]] | None = None  # rollup rows, and what they were read for
    # What the rollup rows add (no day B taken away), for which rows and calendar windows: added up again only when
    # they change, not at every refresh that changes the raw rows' sums.
    rollup_sums: tuple[list[RollupRow], tuple[Window, ...], KeptUsage] | None = None
    hourly: tuple[str, tuple[tuple[str, str, int], ...]] | None = None  # hourly spend, and the hour it was read in
    hourly_sums: dict[tuple[str, str], int] | None = None  # (store provider, hour) → spend, from the mirror
    hourly_from: str = ""  # the hours from this one on are read at the next hour
    # Key ranges before it whose hours changed (the days of changed rows, pruned hours): read again at the next hour.
    hourly_stale: set[tuple[str, str]] = field(default_factory=set)
    figures: tuple[tuple[Any, ...], UsageFigures] | None = None  # the last figures, and what they came from
    tail_rows: dict[int, bytes] | None = None  # the tail's usage rows as last compared (None: compare them all)
    oldest_any: str | None = None  # the oldest usage row's time, placeable or not, at the last refresh


def _kept_state(kept: _Kept) -> dict[str, Any]:
    """Return what a cache file keeps of `kept`: the sums and where the mirror stands (the rest is read again)."""
    return {
        "usage": kept.usage.state(),
        "bounds": {str(bit): bound for bit, bound in kept.bounds.items()},
        "floor": kept.floor,
        "tail_after": kept.tail_after,
        "max_rowid": kept.max_rowid,
        "rebuilt_at": kept.rebuilt_at.isoformat(),
        "migrations": kept.migrations,
        "sealed": kept.sealed,
        "fingerprints": {
            str(block): [fp.cut, fp.later.hex(), {day: day_fp.hex() for day, day_fp in fp.days.items()}]
            for block, fp in kept.fingerprints.items()
        },
        "left_out": {str(block): count for block, count in kept.left_out.items()},
        "left_open": sorted(kept.left_open),
        "checked_at": kept.checked_at.isoformat(),
        "cursor": kept.cursor,
        "credit": kept.credit,
        # Read again only when its key changes (the days before the watermark are final): a long rollup history is
        # the slowest part of a start otherwise.
        "rollup": None if kept.rollup is None else [kept.rollup[0], [list(row) for row in kept.rollup[1]]],
        # Four weeks of hours from the mirror: read again, they were most of a start's time (0.45 s of 0.6 s at
        # 1,000,000 rows).
        "hourly": None
        if kept.hourly_sums is None
        else {
            "sums": [[provider, hour, cost] for (provider, hour), cost in kept.hourly_sums.items()],
            "from": kept.hourly_from,
            "stale": sorted([low, high] for low, high in kept.hourly_stale),
        },
    }


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("a naive time")
    return moment


def _kept_of_state(links: Mapping[str, str], state: Mapping[str, Any]) -> _Kept:
    """Return the kept figures of a cache file's state (raises KeyError, TypeError or ValueError when malformed)."""
    migrations = state["migrations"]
    return _Kept(
        usage=KeptUsage.restored(links, state["usage"]),
        bounds={int(bit): str(bound) for bit, bound in state["bounds"].items()},
        floor=str(state["floor"]),
        tail_after=int(state["tail_after"]),
        max_rowid=int(state["max_rowid"]),
        rebuilt_at=_aware(state["rebuilt_at"]),
        migrations=None if migrations is None else str(migrations),
        sealed=int(state["sealed"]),
        fingerprints={
            int(block): _BlockPrint(
                str(cut), bytes.fromhex(later), {str(d): bytes.fromhex(fp) for d, fp in days.items()}
            )
            for block, (cut, later, days) in state["fingerprints"].items()
        },
        left_out={int(block): int(count) for block, count in state["left_out"].items()},
        left_open={int(rowid) for rowid in state["left_open"]},
        checked_at=_aware(state["checked_at"]),
        cursor=int(state["cursor"]),
        credit=float(state["credit"]),
        rollup=_rollup_of_state(state["rollup"]),
        **_hourly_of_state(state["hourly"]),
    )


def _hourly_of_state(state: Any) -> dict[str, Any]:
    """Return the `_Kept` fields of the hourly spend a cache file keeps (none when it keeps none)."""
    if state is None:
        return {}
    return {
        "hourly_sums": {(str(provider), str(hour)): int(cost) for provider, hour, cost in state["sums"]},
        "hourly_from": str(state["from"]),
        "hourly_stale": {(str(low), str(high)) for low, high in state["stale"]},
    }


def _rollup_of_state(state: Any) -> tuple[_RollupKey | None, list[RollupRow]] | None:
    if state is None:
        return None
    key, rows = state
    if key is not None:
        watermark, day_b, week, month = key
        key = (str(watermark), None if day_b is None else str(day_b), str(week), str(month))
    return key, [RollupRow(*row) for row in rows]


def _kept_record(kept: _Kept) -> tuple[bytes, str]:
    """Return what a cache file keeps of `kept` (its state as compressed JSON), and that record's SHA-256.

    On a large store the state is megabytes of JSON (6 MB at 1,000,000 rows), kept when the publisher stops, at its
    peak of memory: it is compressed a piece at a time, so that no whole encoded copy of it is made.
    """
    text = json.dumps(_kept_state(kept), separators=(",", ":"))
    packer = zlib.compressobj(1)
    pieces = [packer.compress(text[at : at + _PIECE].encode()) for at in range(0, len(text), _PIECE)]
    pieces.append(packer.flush())
    record = b"".join(pieces)
    return record, hashlib.sha256(record).hexdigest()


def _kept_of_record(links: Mapping[str, str], record: Any, sha256: Any) -> _Kept | None:
    """Return the kept figures a cache file holds, or None when its record is torn or was changed by hand."""
    if not isinstance(record, bytes) or hashlib.sha256(record).hexdigest() != sha256:
        return None
    return _kept_of_state(links, json.loads(zlib.decompress(record)))


class UsageMirror:
    """The kept usage figures of one store. Not thread-safe: one refresh at a time.

    With a cache file as its database, the mirror's rows are on disk already; `save` adds the kept sums and
    marks the file clean, and `restore` takes them up at the next start. The first change after that marks it
    unclean in the same transaction, so a file left by a crash (or a kill) is never taken up.
    """

    def __init__(
        self,
        links: Mapping[str, str],
        check_period: timedelta = DEFAULT_CHECK_PERIOD,
        recent_rows: int = RECENT_ROWS,
        block_rows: int = CHECK_BLOCK_ROWS,
    ) -> None:
        """Make an empty mirror; the first refresh fills it."""
        self._links = links
        self._check_period = check_period
        self._recent_rows = recent_rows
        self._block_rows = block_rows
        self._kept: _Kept | None = None
        self._clean = False  # the cache file's kept sums match its rows: mark it unclean before the next change
        self._restored = False  # the kept sums come from a cache file: check it is this store's at the next refresh
        self._temp_tables_of: Database | None = None  # the connection whose working tables are made

    async def restore(self, db: Database, identity: str) -> bool:
        """Take up the kept sums of a cache file closed cleanly by this release for this store and these options."""
        try:
            meta = dict(await run(db, "SELECT key, value FROM cache_meta"))
            if meta.get("identity") != identity or meta.get("clean") != "1":
                return False
            # Megabytes of JSON on a large store: read in a worker thread, not on the event loop.
            self._kept = await asyncio.to_thread(
                _kept_of_record, self._links, meta.get("kept"), meta.get("kept_sha256")
            )
        except (sqlite3.OperationalError, KeyError, TypeError, ValueError, AttributeError, zlib.error):
            self._kept = None
            return False
        if self._kept is None:
            return False  # torn or changed by hand
        self._clean = self._restored = True
        return True

    async def save(self, db: Database, identity: str) -> None:
        """Keep the sums beside the mirror's rows in its cache file, and mark it clean (one transaction)."""
        kept = self._kept
        if kept is None:
            return
        record, sha256 = await asyncio.to_thread(_kept_record, kept)
        meta: dict[str, str | bytes] = {"identity": identity, "kept": record, "kept_sha256": sha256, "clean": "1"}
        await run(db, "BEGIN IMMEDIATE")
        try:
            await run(db, _META_SQL)
            for key, value in meta.items():
                await run(db, "INSERT OR REPLACE INTO cache_meta (key, value) VALUES (?, ?)", (key, value))
        except BaseException:
            await run(db, "ROLLBACK")
            raise
        await run(db, "COMMIT")
        self._clean = True

    def forget(self) -> None:
        """Drop the kept figures: the next refresh rebuilds (after a failed refresh, or on request)."""
        self._kept = None

    async def refresh(
        self, db: Database, bounds: WindowBounds, now: datetime, watermark: str | None, tables: set[str]
    ) -> UsageRead:
        """Bring the mirror and the sums up to date with the attached store, then compute the figures.

        This runs inside the caller's transaction. On any failure the kept figures are forgotten.
        """
        try:
            return await self._refresh(db, bounds, now, watermark, tables)
        except BaseException:
            self._kept = None
            raise

    async def _refresh(
        self, db: Database, bounds: WindowBounds, now: datetime, watermark: str | None, tables: set[str]
    ) -> UsageRead:
        reads = [(_TOP_AND_OLDEST_SQL, ())] + ([(_MIGRATIONS_SQL, ())] if "_migrations" in tables else [])
        ((max_rowid, oldest_at, oldest_any),), *applied = await run_all(db, reads)
        floor = _floor_of(oldest_at)
        # openusage's repair migrations applied to the store, as one text (None without the table).
        migrations = None if not applied else str(applied[0][0][0] or "")
        if self._clean:
            # In the transaction of the changes to come: a file left before it commits is still clean and right.
            await run_all(db, [(_META_SQL, ()), (_NOT_CLEAN_SQL, ())])
            self._clean = False
        if self._temp_tables_of is not db:
            await _make_temp_tables(db)
            self._temp_tables_of = db
        kept = self._kept
        restarted, self._restored = self._restored, False
        if restarted and not await _same_store(db):
            kept = None  # the top row is another: a store replaced under the same path
        if (
            kept is None
            or now < kept.rebuilt_at  # the clock went back
            or max_rowid < kept.max_rowid  # rows vanished from the top: a new store, a reset or a VACUUM
            or floor[0] < kept.floor  # rows older than the floor arrived: pruned rows would count again
            or migrations != kept.migrations  # a repair migration rewrote rows anywhere in the store
        ):
            kept = await self._rebuild(db, bounds, now, max_rowid, floor[0], migrations=migrations)
        else:
            await self._age(db, kept, bounds)
            await self._apply_changes(db, kept, bounds, floor, _Moment(max_rowid, now, restarted, oldest_any))
        kept.oldest_any = oldest_any
        self._kept = kept
        read = await self._figures(db, kept, bounds, oldest_at[:10] if oldest_at else None, (watermark, tables))
        return replace(read, first_event_at=oldest_at, hourly_cost=await self._hourly_cost(db, kept, now))

    async def _hourly_cost(self, db: Database, kept: _Kept, now: datetime) -> tuple[tuple[str, str, int], ...]:
        """Return each provider's spend per whole UTC hour of the last four weeks.

        It is worked out once an hour, as the projection does not need the hour under way; only the hours since the
        last time, and those of the days changes since were on, are read again.
        """
        current = instant_key(now)[:13]
        if kept.hourly is None or kept.hourly[0] != current:
            since = instant_key(profile_since(now))[:13]
            start = max(since, kept.hourly_from) if kept.hourly_sums is not None else since
            # Key ranges: an hour's key (13 characters) is inside one as the keys of its rows are.
            ranges = [(start, current), *((max(low, since), min(high, start)) for low, high in kept.hourly_stale)]
            ranges = _merged_keys([(low, high) for low, high in ranges if low < high])
            sums = {
                key: cost
                for key, cost in (kept.hourly_sums or {}).items()
                if since <= key[1] and not any(low <= key[1] < high for low, high in ranges)
            }
            for low, high in ranges:
                params = {"since": low, "until": high, "floor": kept.floor}
                sums.update(
                    ((provider, hour), int(cost)) for provider, hour, cost in await run(db, _HOURLY_COST_SQL, params)
                )
            kept.hourly_sums, kept.hourly_from, kept.hourly_stale = sums, current, set()
            per_provider: dict[tuple[str, str], int] = {}
            for (provider, hour), cost in sums.items():
                key = (map_provider(provider, self._links), hour)
                per_provider[key] = per_provider.get(key, 0) + cost
            kept.hourly = (current, tuple((p, h, c) for (p, h), c in sorted(per_provider.items())))
        return kept.hourly[1]

    async def _rebuild(
        self,
        db: Database,
        bounds: WindowBounds,
        now: datetime,
        max_rowid: int,
        floor: str,
        *,
        migrations: str | None,
    ) -> _Kept:
        await run(db, "DROP TABLE IF EXISTS mirror_rows")
        await run(db, _CREATE_SQL.format(table="mirror_rows"))
        await run(db, _INSERT_SQL.format(rows=_PROJECT_SQL.format(rows="1")))
        for sql in _INDEX_SQL:
            await run(db, sql)
        await run_all(db, _EMPTY_TEMP_TABLES)
        # Rows start as winners; most partitions hold one row, so only the others are ranked.
        await run(db, "INSERT INTO temp.touched SELECT pkey FROM mirror_rows GROUP BY pkey HAVING count(*) > 1")
        await run(db, _CHOOSE_WINNER_SQL, {"floor": ""})
        await run(
            db,
            "UPDATE mirror_rows SET shared = 1 WHERE win AND mid IN ("
            "SELECT mid FROM mirror_rows WHERE win AND mid <> '' GROUP BY mid HAVING count(*) > 1)",
        )
        await run(db, "DELETE FROM temp.touched")
        usage = KeptUsage(self._links)
        await _fold(db, usage, _FOLD_SQL.format(mask=_MASK_SQL, where="1"), _window_params(bounds), 1)
        tail_after = max(0, max_rowid - self._recent_rows)
        sealed = (tail_after + 1) // self._block_rows
        return _Kept(
            usage=usage,
            bounds=_aging_bounds(bounds),
            floor=floor,
            tail_after=tail_after,
            max_rowid=max_rowid,
            rebuilt_at=now,
            migrations=migrations,
            sealed=sealed,
            fingerprints={
                block: await self._fingerprint(db, block, _block_cut(floor, block)) for block in range(sealed)
            },
            left_out=await self._left_out(db, 0, sealed * self._block_rows - 1),
            left_open=await self._left_out_rows(db, sealed * self._block_rows),
            checked_at=now,
        )

    async def _fingerprint(self, db: Database, block: int, cut: str) -> _BlockPrint:
        """Return the fingerprints of a block's rows in the store: what they hold in every column the figures read."""
        low = block * self._block_rows
        params = {"lo": low, "hi": low + self._block_rows - 1, "cut": cut}

        def fingerprint(conn: sqlite3.Connection) -> _BlockPrint:
            ((later, before),) = _rows_as_text(conn, (FINGERPRINT_JSON_SQL, _FINGERPRINT_QUOTED_SQL), params)
            # Hashing a megabyte and splitting the days is a millisecond or more: off the event loop, in the same trip.
            return _block_print(cut, later or b"", _rows_of(before))

        return await db.call(fingerprint)

    async def _recut(self, db: Database, block: int, cut: str, new_cut: str) -> tuple[_BlockPrint, _BlockPrint]:
        """Return the fingerprints of a block's rows at its cut and at a new cut, from one read."""
        low = block * self._block_rows
        params = {"lo": low, "hi": low + self._block_rows - 1, "cut": cut, "new_cut": new_cut}

        def recut(conn: sqlite3.Connection) -> tuple[_BlockPrint, _BlockPrint]:
            ((later, before, later_new),) = _rows_as_text(conn, (_RECUT_JSON_SQL, _RECUT_QUOTED_SQL), params)
            return _recut_prints((cut, new_cut), later or b"", before or b"", later_new or b"")

        return await db.call(recut)

    async def _left_out(self, db: Database, low: int, high: int) -> dict[int, int]:
        """Return how many usage rows the contract cannot place each block from rowid `low` to `high` holds."""
        params = {"size": self._block_rows, "lo": low, "hi": high}
        return dict(await run(db, LEFT_OUT_SQL, params))

    @staticmethod
    async def _left_out_rows(db: Database, low: int) -> set[int]:
        """Return the rowids of the usage rows the contract cannot place from rowid `low` on."""
        return {rowid for (rowid,) in await run(db, LEFT_OUT_ROWS_SQL, {"lo": low, "hi": _TOP_ROWID})}

    async def _age(self, db: Database, kept: _Kept, bounds: WindowBounds) -> None:
        """Move every window's bound: winners it passed over leave the window, or join it.

        One fold for the bounds that moved on (the rolling windows' every minute) and one for any that went back,
        each over the rows between a window's old and new bound, tagged with that window's bit.
        """
        new_bounds = _aging_bounds(bounds)
        for sign in (-1, 1):
            moved = {
                bit: (kept.bounds[bit], new)
                for bit, new in new_bounds.items()
                if (new > kept.bounds[bit]) == (sign < 0) and new != kept.bounds[bit]
            }
            if not moved:
                continue
            parts, params = [], {}
            for number, (bit, (old, new)) in enumerate(moved.items()):
                low, high = (old, new) if sign < 0 else (new, old)
                params[f"low{number}"], params[f"high{number}"] = max(low, kept.floor), high
                parts.append(
                    f"SELECT *, {bit} AS bit FROM mirror_rows WHERE okey >= :low{number} AND okey < :high{number}"
                )
            sql = _FOLD_FROM_SQL.format(mask="bit", where="1", source=f"({' UNION ALL '.join(parts)})")
            await _fold(db, kept.usage, sql, params, sign)
            kept.bounds.update({bit: new for bit, (_old, new) in moved.items()})

    def _due_blocks(self, kept: _Kept, now: datetime, restarted: bool) -> list[int]:
        """Return the blocks this refresh checks: its share of one check every period, in turn.

        Block `kept.sealed` stands for the rows after the sealed blocks.
        """
        blocks = kept.sealed + 1
        elapsed = now - kept.checked_at
        if restarted:
            elapsed = min(elapsed, _RESTART_CHECK)
        kept.checked_at = now
        kept.credit = min(float(blocks), kept.credit + blocks * (elapsed / self._check_period))
        count = math.floor(kept.credit)
        kept.credit -= count
        start = kept.cursor % blocks
        kept.cursor = (start + count) % blocks
        return [(start + i) % blocks for i in range(count)]

    async def _find_changes(
        self, db: Database, kept: _Kept, top_and_due: tuple[int, list[int]], floor: str, pruned: bool
    ) -> None:
        """Put into temp.changed the rows that changed, and bring the blocks' fingerprints and counts up to date.

        The rows are those of the tail, of the due blocks whose fingerprint changed, and of the blocks that left the
        tail now; the rows after the sealed blocks are compared in full when their turn is due. The tail's rows left
        out are found every refresh: a row of the tail enriched into one that cannot be placed counts at once.
        """
        max_rowid, due = top_and_due
        size = self._block_rows
        tail_after = max(kept.tail_after, max_rowid - self._recent_rows)
        sealed = (tail_after + 1) // size
        ranges, tail_changed, left_in_tail = await self._tail_changes(db, kept, tail_after)
        open_from = kept.sealed * size
        # The rows left out after the sealed blocks: those of the tail every refresh, all of them once a period.
        counted_from = open_from if pruned or kept.sealed in due else kept.tail_after + 1
        left_open = {rowid for rowid in kept.left_open if rowid < counted_from}
        left_open |= left_in_tail if counted_from > kept.tail_after else await self._left_out_rows(db, counted_from)
        counted = dict.fromkeys(range(kept.sealed, sealed), 0)
        for rowid in left_open:
            if rowid < sealed * size:
                counted[rowid // size] += 1
        kept.left_open = {rowid for rowid in left_open if rowid >= sealed * size}
        if pruned:  # the few sealed blocks that held some
            for block in [b for b in kept.left_out if b < kept.sealed]:
                counted |= {block: 0} | await self._left_out(db, block * size, block * size + size - 1)
        for block in due:
            if block < kept.sealed:
                kept_print = kept.fingerprints.get(block)
                cut = kept_print.cut if kept_print else _block_cut(floor, block)
                if _cut_of(floor, _CUT_MARGIN) > cut:  # the floor came close to the cut: cut afresh
                    now_print, next_print = await self._recut(db, block, cut, _block_cut(floor, block))
                else:
                    now_print = next_print = await self._fingerprint(db, block, cut)
                if now_print != kept_print:
                    rows = (block * size, block * size + size - 1)
                    changed = kept_print is None or not kept_print.same_but_pruned(now_print, floor)
                    if changed:
                        ranges.append(rows)
                    if changed or block in kept.left_out:  # a pruned day may have held rows left out
                        counted |= {block: 0} | await self._left_out(db, *rows)
                kept.fingerprints[block] = next_print
        if kept.sealed in due:
            ranges.append((open_from, _TOP_ROWID))
        elif sealed > kept.sealed:
            ranges.append((open_from, sealed * size - 1))  # the blocks sealed now
        for block in range(kept.sealed, sealed):
            kept.fingerprints[block] = await self._fingerprint(db, block, _block_cut(floor, block))
        ranges = _merged(ranges)
        await run_all(
            db,
            [
                ("INSERT OR IGNORE INTO temp.changed SELECT value FROM json_each(?)", (json.dumps(tail_changed),)),
                *((sql, {"lo": low, "hi": high}) for low, high in ranges for sql in _FIND_CHANGES_SQL),
            ],
        )
        for block, count in counted.items():
            if count:
                kept.left_out[block] = count
            else:
                kept.left_out.pop(block, None)
        kept.sealed, kept.tail_after, kept.max_rowid = sealed, tail_after, max_rowid

    async def _tail_changes(
        self, db: Database, kept: _Kept, tail_after: int
    ) -> tuple[list[tuple[int, int]], list[int], set[int]]:
        """Compare the tail's rows with their text at the last refresh, and keep their text now.

        Return the tail's rowid range when its rows must be compared in full (after a start or a rebuild), the rowids
        of its rows whose text changed, came or went (taken as changed: scattered among other rows, they are too
        many ranges to compare), and those of its rows the contract leaves out.
        """
        params = {"after": kept.tail_after}
        read = await db.call(lambda conn: _rows_as_text(conn, (_TAIL_JSON_SQL, _TAIL_QUOTED_SQL), params))
        rows = {rowid: text for rowid, text, _left_out in read}
        left_out = {rowid for rowid, _text, left_out in read if left_out}
        last, kept.tail_rows = kept.tail_rows, {rowid: text for rowid, text in rows.items() if rowid > tail_after}
        if last is None:
            return [(kept.tail_after + 1, _TOP_ROWID)], [], left_out
        changed = [rowid for rowid, text in rows.items() if last.get(rowid) != text]
        changed += [rowid for rowid in last if rowid not in rows]
        return [], changed, left_out

    async def _apply_changes(
        self,
        db: Database,
        kept: _Kept,
        bounds: WindowBounds,
        floor_of: tuple[str, str],
        moment: _Moment,
    ) -> None:
        floor, floor_next = floor_of
        max_rowid, now, restarted, oldest_any = moment
        old_floor = kept.floor
        # openusage's retention deletes rows the contract cannot place too, even when no placeable row goes.
        pruned = floor != old_floor or oldest_any != kept.oldest_any
        due = self._due_blocks(kept, now, restarted)
        await self._find_changes(db, kept, (max_rowid, due), floor, pruned)
        params = {"floor": floor, "floor_next": floor_next, "old_floor": old_floor}
        *_, any_change = await run_all(
            db,
            [
                (_FLOOR_GONE_SQL, params),
                (_STRADDLING_SQL, params),
                ("SELECT 1 FROM temp.changed UNION ALL SELECT 1 FROM temp.touched LIMIT 1", ()),
            ],
        )
        if floor == old_floor and not any_change:
            return
        await run_all(db, _TOUCH_SQL)
        fold = _FOLD_SQL.format(mask=_MASK_SQL, where="pkey IN (SELECT pkey FROM temp.touched) AND okey >= :floor")
        window_params = _window_params(bounds)
        # Only changes inside the hourly history's four weeks read it again; they move on, never back.
        since_day = instant_key(profile_since(now))[:10]
        days = await _fold(db, kept.usage, fold, {**window_params, "floor": old_floor}, -1, since_day=since_day)
        await run_all(
            db,
            [
                ("DELETE FROM mirror_rows WHERE rid IN (SELECT rid FROM temp.changed)", ()),
                (_INSERT_SQL.format(rows=f"SELECT {_COLUMN_LIST} FROM temp.incoming"), ()),
                (_CHOOSE_WINNER_SQL, {"floor": floor}),
                (_MARK_SHARED_SQL, {"floor": floor}),
            ],
        )
        days |= await _fold(db, kept.usage, fold, {**window_params, "floor": floor}, 1, since_day=since_day)
        kept.hourly_stale.update((day, day + _AFTER_DAY) for day in days)
        if floor > old_floor and floor > since_day:  # pruned rows inside them, up to the floor's hour
            kept.hourly_stale.add((max(old_floor, since_day)[:13], floor[:13] + _AFTER_DAY))
        if floor > old_floor:
            await self._prune(db, kept, bounds, old_floor, floor)
            # Out of the sums now; the mirror keeps no row below the floor, which would only grow.
            await run(db, "DELETE FROM mirror_rows WHERE okey < ?", (floor,))
        kept.floor = floor
        await run_all(db, _EMPTY_TEMP_TABLES)  # emptied now, so the next refresh starts at once

    @staticmethod
    async def _prune(db: Database, kept: _Kept, bounds: WindowBounds, old_floor: str, floor: str) -> None:
        """Take the winners the floor passed over (and that no changed partition took already) out of the sums."""
        start = old_floor
        if floor <= min(_aging_bounds(bounds).values()):
            # Below every window bound they count in `all` only: whole days go with their kept sums.
            for day in kept.usage.days():
                if day < floor[:10]:
                    kept.usage.drop_day(day)
            start = max(old_floor, floor[:10])
        fold = _FOLD_SQL.format(mask=_MASK_SQL, where="okey >= :start AND okey < :floor")
        await _fold(db, kept.usage, fold, {**_window_params(bounds), "start": start, "floor": floor}, -1)

    async def _figures(
        self,
        db: Database,
        kept: _Kept,
        bounds: WindowBounds,
        day_b: str | None,
        rollup_state: tuple[str | None, set[str]],
    ) -> UsageRead:
        watermark, tables = rollup_state
        has_rollup = "usage_rollup_daily" in tables
        week, month = bounds.first_days[Window.WEEK], bounds.first_days[Window.MONTH]
        # The daemon rolls up only days after its watermark; days up to day B change with one of them.
        rollup_key = (watermark, day_b, week, month) if has_rollup and watermark else None
        if kept.rollup is None or kept.rollup[0] != rollup_key:
            kept.rollup = (rollup_key, await _rollup_rows(db, kept.rollup, rollup_key))
        rollup = kept.rollup[1]
        # metrics.md §1: day B comes from the rollup when it was partly pruned, else from raw rows.
        raw_on_b = kept.usage.rows_on(day_b) if day_b else 0
        rollup_on_b = sum(r.events or 0 for r in rollup if r.on_b)
        b_from_rollup = day_b is not None and watermark is not None and day_b <= watermark and rollup_on_b > raw_on_b
        # A calendar window takes rollup days only when it starts before day B (so it holds every raw row).
        periods = tuple(w for w in PERIOD_WINDOWS if day_b is None or bounds.first_days[w] < day_b)
        source = (kept.usage.version, rollup, b_from_rollup, day_b, periods)
        if kept.figures is None or kept.figures[0] != source:
            if (
                not b_from_rollup
                and kept.rollup_sums
                and kept.rollup_sums[0] is rollup
                and kept.rollup_sums[1] == periods
            ):
                extra = kept.rollup_sums[2]  # the same rollup rows: what they add is the same, unchanged since
            else:
                extra = kept.usage.sibling()
                extra.add_rollup((r for r in rollup if b_from_rollup or not r.on_b), periods)
                # Day B's raw rows change it further below: only the rollup's own sums are kept for next time.
                kept.rollup_sums = None if b_from_rollup else (rollup, periods, extra)
            if b_from_rollup and day_b is not None:
                extra.take_day_of(kept.usage, day_b)
                if periods:
                    # The calendar windows hold every raw row of day B then; they are split by agent, tool
                    # and project too, which `all` (kept by day) is not: its rows are read again.
                    mask = sum(WINDOW_BITS[w] for w in periods)
                    where = "okey >= :start AND okey < :end AND okey >= :floor"
                    bounds_b = {"start": day_b, "end": f"{day_b}T99", "floor": kept.floor}
                    await _fold(db, extra, _FOLD_SQL.format(mask=mask, where=where), bounds_b, -1)
            # Every key's figures after a rebuild: tens of milliseconds on a large store, off the event loop.
            kept.figures = (source, await asyncio.to_thread(kept.usage.figures, extra))
        last = await one(
            db, "SELECT occurred_at FROM mirror_rows WHERE win AND okey >= ? ORDER BY okey DESC LIMIT 1", (kept.floor,)
        )
        return UsageRead(
            figures=kept.figures[1],
            last_event_at=last[0] if last else None,
            oldest_raw_day=day_b,
            rows_left_out=sum(kept.left_out.values()) + len(kept.left_open),
        )
