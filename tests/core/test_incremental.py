"""Incremental refreshes against a full recomputation, over random sequences of changes to a store.

After every insert, duplicate delivery, enrichment of a recent row, pruned day and clock advance, the
kept figures must equal those a fresh reader computes from scratch; after an in-place update of an old
row they must be equal once a check period has passed (the blocks' fingerprints find it), without a rebuild.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.openusage.core import mirror
from custom_components.openusage.core.db import Database
from custom_components.openusage.core.models import Breakdown, Snapshot, Window
from custom_components.openusage.core.reader import ReadOptions, StoreReader, open_store, read_store
from custom_components.openusage.core.schema import create_schema
from openusage_demo import EventWriter, build_rollup, generate_demo_store
from tests.counting import count_rebuilds
from tests.strategies import NOW, ZONES, add_row, row

RECENT = 3  # a short re-read tail, so that most rows are "old" and the tail's edge is exercised
CHECK = timedelta(hours=1)
BLOCK = 4  # blocks of four rowids: most rows are in sealed blocks, and blocks are sealed as rows arrive

# Values each changed column may take (status is NOT NULL in the store).
_CHANGE_VALUES: dict[str, list[Any]] = {
    "total_tokens": [None, 0, 7],
    "cost_usd": [None, 0, 1.25],
    "model_raw": [None, "", "opus"],
    "status": ["ok", "error"],
    "provider_id": [None, "", "anthropic"],
    "session_id": [None, "", "s2"],
    "message_id": [None, "m1", "m9"],
    "input_tokens": [None, 3, -1],  # -1: a row the contract cannot place (metrics.md §2.9)
}
_changes = st.lists(st.sampled_from(sorted(_CHANGE_VALUES)), min_size=1, max_size=3, unique=True).flatmap(
    lambda columns: st.fixed_dictionaries({c: st.sampled_from(_CHANGE_VALUES[c]) for c in columns})
)
_step = st.one_of(
    st.tuples(st.just("insert"), st.lists(row, min_size=1, max_size=5)),
    st.tuples(st.just("duplicate"), st.integers(0, 10**6), st.sampled_from(["hook", "jsonl", "api"]), _changes),
    st.tuples(st.just("enrich"), st.integers(0, RECENT - 1), _changes),
    # the same message kept again under another session: one message, its tokens twice (metrics.md §2.3)
    st.tuples(st.just("other_session"), st.integers(0, 10**6), st.sampled_from(["hook", "jsonl"]), st.just({})),
    st.tuples(st.just("update_old"), st.integers(0, 10**6), _changes),
    st.tuples(st.just("delete_old"), st.integers(0, 10**6)),
    st.tuples(st.just("delete_recent"), st.integers(0, RECENT - 1)),
    # openusage resetting a corrupt store: a new file, with rows of its own, at the same path
    st.tuples(st.just("replace"), st.lists(row, min_size=0, max_size=40)),
    st.tuples(st.just("prune"), st.just(0)),
    st.tuples(st.just("prune_before"), st.sampled_from([50.5, 40, 31.25, 20, 2])),  # days before the clock
    # up to a new week and, from 17 August, past the 1st of September: the calendar windows move on too
    st.tuples(
        st.just("advance"), st.sampled_from([1, 5, 59, 61, 24 * 60, 7 * 24 * 60 + 1, 3 * 24 * 60 + 17, 15 * 24 * 60])
    ),
)
_USAGE = "event_type IN ('message_usage', 'tool_usage')"


def _usage_rowids(conn: sqlite3.Connection) -> tuple[list[int], list[int]]:
    """Return the usage rows' rowids: those a refresh re-reads (the last RECENT of all rows), and the older ones."""
    top = conn.execute("SELECT coalesce(max(rowid), 0) FROM usage_events").fetchone()[0]
    rowids = [r[0] for r in conn.execute(f"SELECT rowid FROM usage_events WHERE {_USAGE} ORDER BY rowid")]
    return [r for r in rowids if r > top - RECENT], [r for r in rowids if r <= top - RECENT]


def _update(conn: sqlite3.Connection, rowid: int, changes: dict[str, Any]) -> None:
    sets = ", ".join(f"{column} = ?" for column in changes)
    conn.execute(f"UPDATE usage_events SET {sets} WHERE rowid = ?", (*changes.values(), rowid))


def _duplicate(
    conn: sqlite3.Connection, rowid: int, channel: str, changes: dict[str, Any], session: str | None = None
) -> None:
    """Return the same logical event delivered again.

    A new row (new dedup key) through another channel, in the same session unless another is given.
    """
    conn.row_factory = sqlite3.Row
    original = dict(conn.execute("SELECT * FROM usage_events WHERE rowid = ?", (rowid,)).fetchone())
    source = conn.execute(
        "SELECT source_system FROM usage_raw_events WHERE raw_event_id = ?", (original["raw_event_id"],)
    ).fetchone()[0]
    conn.row_factory = None
    fields = {k: v for k, v in original.items() if k not in ("event_id", "raw_event_id", "dedup_key")}
    fields.update({k: v for k, v in changes.items() if k not in ("session_id", "message_id")})
    if session is not None:
        fields["session_id"] = session
    writer = EventWriter(conn)
    writer.add(source_system=source, source_channel=channel, dedup_key=uuid.uuid4().hex, **fields)
    writer.flush()


def _prune_before(conn: sqlite3.Connection, cutoff: datetime) -> None:
    """Openusage's retention: delete usage rows older than `cutoff` (an exact-time cutoff)."""
    conn.execute(f"DELETE FROM usage_events WHERE {_USAGE} AND occurred_at < ?", (f"{cutoff:%Y-%m-%dT%H:%M:%S}",))


def _store_at(path: Path, rows: list[dict[str, Any]], now: datetime = NOW, rollup: bool = False) -> sqlite3.Connection:
    """Make a store in WAL mode at `path` with `rows` (and a rollup up to yesterday); return a connection to it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    create_schema(conn)
    conn.execute("BEGIN")
    writer = EventWriter(conn)
    for spec in rows:
        add_row(writer, spec, uuid.uuid4().hex, now)
    writer.flush()
    if rollup:
        build_rollup(conn, f"{now - timedelta(days=1):%Y-%m-%d}")
    conn.execute("COMMIT")
    return conn


def _new_store(path: Path, rows: list[dict[str, Any]], now: datetime = NOW) -> sqlite3.Connection:
    """Make a store at `path` (in place of any there) with `rows`; return a connection to it."""
    fresh = path.with_name("replacement.db")
    _store_at(fresh, rows, now).close()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    fresh.replace(path)
    return sqlite3.connect(path, isolation_level=None)


def _apply(
    conn: sqlite3.Connection, step: tuple[Any, ...], now: datetime, path: Path
) -> tuple[datetime, sqlite3.Connection]:
    """Change the store as the step says; returns the clock after it, and the connection to the store now."""
    kind, arg = step[0], step[1]
    if kind == "replace":
        conn.close()
        return now, _new_store(path, arg, now)
    recent, old = _usage_rowids(conn)
    rowids = old + recent
    conn.execute("BEGIN")
    if kind == "insert":
        writer = EventWriter(conn)
        for spec in arg:
            add_row(writer, spec, uuid.uuid4().hex, now)
        writer.flush()
    elif kind == "duplicate" and rowids:
        _duplicate(conn, rowids[arg % len(rowids)], step[2], step[3])
    elif kind == "other_session" and rowids:
        _duplicate(conn, rowids[arg % len(rowids)], step[2], step[3], session=uuid.uuid4().hex[:6])
    elif kind == "enrich" and recent:
        _update(conn, recent[arg % len(recent)], step[2])
    elif kind == "update_old" and old:
        _update(conn, old[arg % len(old)], step[2])
        now += CHECK  # every block is checked once a period
    elif kind == "delete_recent" and recent:  # seen at once, as an enrichment is
        conn.execute("DELETE FROM usage_events WHERE rowid = ?", (recent[arg % len(recent)],))
    elif kind == "delete_old" and old:
        conn.execute("DELETE FROM usage_events WHERE rowid = ?", (old[arg % len(old)],))
        now += CHECK
    elif kind == "prune":
        conn.execute(
            f"DELETE FROM usage_events WHERE {_USAGE} AND substr(occurred_at, 1, 10) = "
            f"(SELECT substr(min(occurred_at), 1, 10) FROM usage_events WHERE {_USAGE})"
        )
    elif kind == "prune_before":
        _prune_before(conn, now - timedelta(days=arg))
    elif kind == "advance":
        now += timedelta(minutes=arg)
    conn.execute("COMMIT")
    return now, conn


def _same(incremental: Snapshot, full: Snapshot, where: str) -> None:
    assert incremental.usage == full.usage, where
    assert incremental.store.last_event_at == full.store.last_event_at, where
    assert incremental.store.oldest_raw_day == full.store.oldest_raw_day, where
    assert incremental.store.rows_left_out == full.store.rows_left_out, where


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    initial=st.lists(row, min_size=3, max_size=30),
    steps=st.lists(_step, min_size=1, max_size=10),
    rollup=st.booleans(),
    zone=st.sampled_from(ZONES),
    active_minutes=st.sampled_from([5.0, 15.0]),
)
def test_incremental_refresh_equals_full_recomputation(
    initial: list[dict[str, Any]], steps: list[tuple[Any, ...]], rollup: bool, zone: str, active_minutes: float
) -> None:
    options = ReadOptions(active_minutes=active_minutes, recent_rows=RECENT, check_block_rows=BLOCK)
    tz = ZoneInfo(zone)
    loop = asyncio.new_event_loop()  # not asyncio.run: that would unset the main thread's loop
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "telemetry.db"
        conn = _store_at(path, initial, rollup=rollup)
        reader = StoreReader(path, options)
        try:
            now = NOW
            loop.run_until_complete(reader.refresh(now, tz))
            for number, step in enumerate(steps):
                hour = now.replace(minute=0, second=0, microsecond=0)
                now, conn = _apply(conn, step, now, path)
                incremental = loop.run_until_complete(reader.refresh(now, tz))
                full = loop.run_until_complete(read_store(path, now, tz, options))
                _same(incremental, full, f"after step {number}: {step[0]}")
                if now - hour >= timedelta(hours=1):  # the hourly history is read again once an hour
                    assert incremental.forecast == full.forecast, f"after step {number}: {step[0]}"
        finally:
            loop.run_until_complete(reader.close())
            loop.close()
            conn.close()


def _message_store(tmp_path: Path, count: int) -> tuple[Path, sqlite3.Connection, StoreReader]:
    """Return a store of `count` messages a minute apart, a connection to change it, and a reader with small blocks."""
    path = tmp_path / "telemetry.db"
    conn = sqlite3.connect(path, isolation_level=None)
    create_schema(conn)
    _messages(conn, count)
    return path, conn, StoreReader(path, ReadOptions(recent_rows=RECENT, check_block_rows=BLOCK))


def _messages(conn: sqlite3.Connection, count: int, hours_ago: float = 2) -> None:
    writer = EventWriter(conn)
    for i in range(count):
        at = f"{NOW - timedelta(hours=hours_ago) + timedelta(minutes=i):%Y-%m-%dT%H:%M:%SZ}"
        writer.add(source_system="claude_code", occurred_at=at, message_id=f"m{i}", cost_usd=1.0, session_id="s",
                   dedup_key=uuid.uuid4().hex)  # fmt: skip
    writer.flush()


async def test_old_rows_updated_in_place_count_within_a_check_period_without_a_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-place updates far below the re-read tail show within an hour of refreshes a minute apart, block by block."""
    path, conn, reader = _message_store(tmp_path, 40)
    rebuilds = count_rebuilds(monkeypatch)
    zone = ZoneInfo("UTC")
    costs = []
    try:
        before = await reader.refresh(NOW, zone)
        conn.execute("UPDATE usage_events SET cost_usd = 3.0 WHERE rowid IN (1, 22)")  # two blocks, far apart
        conn.execute("DELETE FROM usage_events WHERE rowid = 13")
        for minute in range(1, 61):
            costs.append(
                (await reader.refresh(NOW + timedelta(minutes=minute), zone)).usage.totals[Window.ALL].cost_usd
            )
        rebuilt = len(rebuilds)
        full = await read_store(path, NOW + timedelta(minutes=60), zone)
    finally:
        await reader.close()
        conn.close()
    assert before.usage.totals[Window.ALL].cost_usd == 40
    assert full.usage.totals[Window.ALL].cost_usd == 43
    assert costs[-1] == 43  # every block was checked within the hour
    assert costs[0] == 40  # a refresh checks its share of the blocks only
    assert len(set(costs)) == 4  # the changes were found one block at a time
    assert rebuilt == 1  # the first refresh only


async def test_the_hourly_history_reads_again_only_the_days_that_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row of ten days ago changed in place: the projection's history reads that day again, not every day since.

    At the next hour it reads that day and the hours since its last read; its figures are a fresh read's.
    """
    path = tmp_path / "telemetry.db"
    conn = sqlite3.connect(path, isolation_level=None)
    create_schema(conn)
    writer = EventWriter(conn)
    for hours in range(20 * 24, 0, -1):  # a message an hour for twenty days
        writer.add(source_system="claude_code", occurred_at=f"{NOW - timedelta(hours=hours):%Y-%m-%dT%H:%M:%SZ}",
                   message_id=f"m{hours}", cost_usd=1.0, session_id="s", dedup_key=uuid.uuid4().hex)  # fmt: skip
    writer.flush()
    changed_day = f"{NOW - timedelta(days=10):%Y-%m-%d}"
    reads: list[tuple[str, str]] = []
    run = mirror.run

    async def recording(db: Any, sql: str, params: Any = ()) -> Any:
        if sql == mirror._HOURLY_COST_SQL:
            reads.append((params["since"], params["until"]))
        return await run(db, sql, params)

    monkeypatch.setattr(mirror, "run", recording)
    zone = ZoneInfo("UTC")
    reader = StoreReader(path, ReadOptions(recent_rows=RECENT, check_block_rows=64))
    try:
        await reader.refresh(NOW, zone)
        conn.execute(
            "UPDATE usage_events SET cost_usd = 5.0 WHERE rowid = (SELECT min(rowid) FROM usage_events "
            "WHERE substr(occurred_at, 1, 10) = ?)",
            (changed_day,),
        )
        reads.clear()
        for minute in range(10, 130, 10):  # two hours: every block checked, the history read twice
            after = await reader.refresh(NOW + timedelta(minutes=minute), zone)
        read = list(reads)
        full = await read_store(path, NOW + timedelta(minutes=120), zone)
    finally:
        await reader.close()
        conn.close()
    assert after.forecast == full.forecast
    assert after.usage.totals[Window.ALL].cost_usd == full.usage.totals[Window.ALL].cost_usd == 20 * 24 + 4
    read_days = {since[:10] for since, _until in read}
    assert changed_day in read_days  # read again
    assert read_days <= {changed_day, f"{NOW:%Y-%m-%d}", f"{NOW + timedelta(hours=2):%Y-%m-%d}"}
    assert all(until[:10] == changed_day for since, until in read if since[:10] == changed_day)


async def test_each_block_is_checked_once_a_period(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refreshes 5 s apart or 10 min apart check every block once a period, not more: the check's cost is fixed."""
    path = tmp_path / "telemetry.db"
    conn = sqlite3.connect(path, isolation_level=None)
    create_schema(conn)
    _messages(conn, 4 * 25)  # 25 blocks of four, the last in the tail
    checked: list[int] = []
    fingerprint = mirror.UsageMirror._fingerprint

    async def counting(self: mirror.UsageMirror, db: Database, block: int, cut: str) -> Any:
        checked.append(block)
        return await fingerprint(self, db, block, cut)

    zone = ZoneInfo("UTC")
    for step in (timedelta(seconds=5), timedelta(minutes=10)):
        reader = StoreReader(path, ReadOptions(recent_rows=RECENT, check_block_rows=BLOCK))
        try:
            await reader.refresh(NOW, zone)
            monkeypatch.setattr(mirror.UsageMirror, "_fingerprint", counting)
            for number in range(1, int(CHECK / step) + 1):
                await reader.refresh(NOW + number * step, zone)
        finally:
            monkeypatch.setattr(mirror.UsageMirror, "_fingerprint", fingerprint)
            await reader.close()
        assert sorted(checked) == list(range(24)), step  # the 24 sealed blocks, each once
        checked.clear()
    conn.close()


def _recording_compared(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Return the rowid ranges the mirror compares row by row from now on, as it compares them."""
    compared: list[tuple[int, int]] = []
    merged = mirror._merged

    def recording(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        result = merged(ranges)
        compared.extend(result)
        return result

    monkeypatch.setattr(mirror, "_merged", recording)
    return compared


async def test_pruned_days_read_no_block_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twelve days spread over every block, pruned one a day: the other days' fingerprints stay as they were.

    The pruned rows leave the mirror with the floor, and no block is compared row by row in the hours after,
    also once the floor has come near the day the fingerprints were cut at and they are cut afresh: a block cut
    afresh is still read once in the hour.
    """
    path = tmp_path / "telemetry.db"
    conn = sqlite3.connect(path, isolation_level=None)
    create_schema(conn)
    writer = EventWriter(conn)
    for i in range(72):  # days -12 to -1 in turn: a block holds four of them
        at = f"{NOW - timedelta(days=12 - i % 12, minutes=i):%Y-%m-%dT%H:%M:%SZ}"
        writer.add(source_system="claude_code", occurred_at=at, message_id=f"m{i}", cost_usd=1.0, session_id="s",
                   dedup_key=uuid.uuid4().hex)  # fmt: skip
    for i in range(8):  # the newest rows, in the tail
        writer.add(source_system="claude_code", occurred_at=f"{NOW:%Y-%m-%dT%H:%M:%SZ}", message_id=f"n{i}",
                   cost_usd=1.0, session_id="s", dedup_key=uuid.uuid4().hex)  # fmt: skip
    writer.flush()
    zone = ZoneInfo("UTC")
    reader = StoreReader(path, ReadOptions(recent_rows=RECENT, check_block_rows=BLOCK))
    costs, recut, read_twice = [], [], []
    rows_as_text = mirror._rows_as_text
    blocks: list[tuple[int, bool]] = []  # each block read for its fingerprints, and whether it was cut afresh

    def counting(conn: sqlite3.Connection, json_and_quoted: tuple[str, str], params: Any) -> Any:
        if json_and_quoted[0] in (mirror.FINGERPRINT_JSON_SQL, mirror._RECUT_JSON_SQL):
            blocks.append((params["lo"] // BLOCK, json_and_quoted[0] == mirror._RECUT_JSON_SQL))
        return rows_as_text(conn, json_and_quoted, params)

    monkeypatch.setattr(mirror, "_rows_as_text", counting)
    try:
        now = NOW
        await reader.refresh(now, zone)
        compared = _recording_compared(monkeypatch)
        for pruned in range(9):
            day = f"{NOW - timedelta(days=12 - pruned):%Y-%m-%d}"
            conn.execute("DELETE FROM usage_events WHERE substr(occurred_at, 1, 10) = ?", (day,))
            blocks.clear()
            for _ in range(6):  # an hour of refreshes ten minutes apart: every block checked
                now += timedelta(minutes=10)
                after = await reader.refresh(now, zone)
            recut.append(sum(afresh for _block, afresh in blocks))
            read_twice.append(len(blocks) - len({block for block, _afresh in blocks}))
            full = await read_store(path, now, zone)
            costs.append((after.usage.totals[Window.ALL].cost_usd, full.usage.totals[Window.ALL].cost_usd))
    finally:
        await reader.close()
        conn.close()
    assert costs == [(80 - 6 * day, 80 - 6 * day) for day in range(1, 10)]
    # The 20 sealed blocks' cuts are spread over five days: a day's prune cuts a few afresh, never all of them, and
    # each of them is read once.
    assert sum(recut) > 0, recut
    assert max(recut) <= 4, recut
    assert read_twice == [0] * 9
    # Only the rows after the sealed blocks (the tail every refresh, the rest once an hour), never a sealed block.
    assert compared
    assert all(high == mirror._TOP_ROWID for _low, high in compared)


@pytest.mark.parametrize("blob", [False, True])
async def test_a_block_cut_afresh_has_the_fingerprints_of_two_reads(tmp_path: Path, blob: bool) -> None:
    """One read gives a block's fingerprints at its old cut and at its new one, as two reads would.

    Rows of days on both sides of both cuts, on the cuts' days, and with times no day can be read from; with a BLOB
    (read as SQL literals) and without.
    """
    path = tmp_path / "telemetry.db"
    conn = sqlite3.connect(path, isolation_level=None)
    create_schema(conn)
    writer = EventWriter(conn)
    for i in range(12):
        at = f"{NOW - timedelta(days=12 - i % 6, minutes=i):%Y-%m-%dT%H:%M:%SZ}"
        writer.add(source_system="claude_code", occurred_at=at, message_id=f"m{i}", cost_usd=1.0, session_id="s",
                   dedup_key=uuid.uuid4().hex)  # fmt: skip
    writer.flush()
    conn.execute("UPDATE usage_events SET occurred_at = 'soon' WHERE rowid = 3")
    conn.execute("UPDATE usage_events SET occurred_at = 20260101 WHERE rowid = 5")
    if blob:
        conn.execute("UPDATE usage_events SET model_raw = x'00ff' WHERE rowid = 7")
    conn.close()
    cut, new_cut = f"{NOW - timedelta(days=10):%Y-%m-%d}", f"{NOW - timedelta(days=8):%Y-%m-%d}"
    kept = mirror.UsageMirror({}, block_rows=16)
    async with open_store(path) as (db, _tables):
        old_print, new_print = await kept._recut(db, 0, cut, new_cut)
        assert old_print == await kept._fingerprint(db, 0, cut)
        assert new_print == await kept._fingerprint(db, 0, new_cut)
    assert len(old_print.days) == 2
    assert len(new_print.days) == 4
    assert old_print.later != new_print.later


async def test_a_block_with_a_blob_is_checked_all_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON holds no BLOB: a block with one is fingerprinted another way, and a change in place in it is found.

    The newest row, in the tail, holds one too: the tail is compared by its rows' text all the same.
    """
    path, conn, reader = _message_store(tmp_path, 40)
    conn.execute("UPDATE usage_events SET model_raw = x'00ff1e3a' WHERE rowid IN (2, 40)")
    zone = ZoneInfo("UTC")
    try:
        await reader.refresh(NOW, zone)
        compared = _recording_compared(monkeypatch)
        conn.execute("UPDATE usage_events SET cost_usd = 4.0 WHERE rowid = 3")
        for minute in range(1, 61):
            after = await reader.refresh(NOW + timedelta(minutes=minute), zone)
        full = await read_store(path, NOW + timedelta(minutes=60), zone)
    finally:
        await reader.close()
        conn.close()
    assert after.usage.totals[Window.ALL].cost_usd == full.usage.totals[Window.ALL].cost_usd == 43
    assert (0, BLOCK - 1) in compared  # the block was read again for it, the others were not
    assert all(high == mirror._TOP_ROWID for low, high in compared if low)


async def test_rows_left_out_are_counted_as_they_leave_the_tail_and_when_pruned(tmp_path: Path) -> None:
    """Rows the contract cannot place, counted while in the tail, then in their sealed block, then gone with a prune."""
    path, conn, reader = _message_store(tmp_path, 6)
    zone = ZoneInfo("UTC")
    counts = []
    try:
        await reader.refresh(NOW, zone)
        conn.execute("UPDATE usage_events SET input_tokens = -1 WHERE rowid IN (5, 6)")  # in the tail: seen at once
        for minute, more in enumerate((0, 10, 0), start=1):
            if more:
                _messages(conn, more, hours_ago=1)  # the two leave the tail, and their block is sealed
            now = NOW + timedelta(minutes=minute)
            counts.append(((await reader.refresh(now, zone)).store.rows_left_out, await _left_out_now(path, now)))
        conn.execute("DELETE FROM usage_events WHERE rowid <= 6")  # openusage's retention: the oldest rows go
        now += timedelta(minutes=1)
        counts.append(((await reader.refresh(now, zone)).store.rows_left_out, await _left_out_now(path, now)))
    finally:
        await reader.close()
        conn.close()
    assert counts == [(2, 2), (2, 2), (2, 2), (0, 0)]


async def _left_out_now(path: Path, now: datetime) -> int:
    return (await read_store(path, now, ZoneInfo("UTC"))).store.rows_left_out


async def test_a_new_repair_migration_reads_the_store_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Openusage's repair migrations rewrite rows across the store at its start: the next refresh rebuilds."""
    _path, conn, reader = _message_store(tmp_path, 40)
    rebuilds = count_rebuilds(monkeypatch)
    zone = ZoneInfo("UTC")
    try:
        await reader.refresh(NOW, zone)
        await reader.refresh(NOW + timedelta(minutes=1), zone)
        conn.execute("BEGIN")
        conn.execute("UPDATE usage_events SET provider_id = 'codex', cost_usd = 2.0 WHERE rowid < 30")
        conn.execute("INSERT INTO _migrations VALUES ('repair_codex_provider_id', '2026-08-10 09:00:00')")
        conn.execute("COMMIT")
        after = await reader.refresh(NOW + timedelta(minutes=2), zone)
    finally:
        await reader.close()
        conn.close()
    assert len(rebuilds) == 2
    assert after.usage.totals[Window.ALL].cost_usd == 29 * 2 + 11
    assert after.usage.breakdowns[Breakdown.PROVIDER]["codex"][Window.ALL].cost_usd == 58


async def test_pruned_rows_leave_every_window_as_a_full_recomputation_does(tmp_path: Path) -> None:
    """Prunes of every kind leave the kept figures equal to a full recomputation.

    Whole days below every window, a partition whose winner is pruned while its partner stays, a partial day, rows
    pruned inside the 30-day window, and old rows arriving after a prune.
    """
    path = tmp_path / "telemetry.db"
    conn = sqlite3.connect(path, isolation_level=None)
    create_schema(conn)
    writer = EventWriter(conn)

    def message(days: float, message_id: str, cost: float, channel: str = "jsonl", session: str = "s") -> None:
        at = f"{NOW - timedelta(days=days):%Y-%m-%dT%H:%M:%SZ}"
        writer.add(source_system="claude_code", source_channel=channel, occurred_at=at, message_id=message_id,
                   cost_usd=cost, session_id=session, total_tokens=10, dedup_key=uuid.uuid4().hex)  # fmt: skip

    # First, so that they are below the re-read tail of the newest rows.
    message(42.5, "twice", 4.0, channel="hook")  # the winner: hook outranks jsonl
    message(41.5, "twice", 2.0)  # its partner, a day later
    for days in (45, 44, 43, 20, 10, 1):
        message(days, f"m{days}", 1.0, session=f"s{days}")
    writer.flush()
    options = ReadOptions(recent_rows=2)
    reader = StoreReader(path, options)
    tz = ZoneInfo("UTC")
    now = NOW

    async def both() -> tuple[Snapshot, Snapshot]:
        incremental = await reader.refresh(now, tz)
        full = await read_store(path, now, tz, options)
        _same(incremental, full, "after a prune")
        return incremental, full

    try:
        first, _ = await both()
        assert first.usage.totals[Window.ALL].cost_usd == 10.0
        _prune_before(conn, NOW - timedelta(days=43.5))  # two whole days
        after, _ = await both()
        assert after.usage.totals[Window.ALL].cost_usd == 8.0
        assert after.usage.totals[Window.ALL].sessions == 5
        _prune_before(conn, NOW - timedelta(days=42))  # the winner goes, its partner stays
        after, _ = await both()
        assert after.usage.totals[Window.ALL].cost_usd == 5.0  # the partner counts now
        _prune_before(conn, NOW - timedelta(days=15))  # into the 30-day window
        after, _ = await both()
        assert after.usage.totals[Window.D30].cost_usd == 2.0
        now += timedelta(days=11)  # the 30-day bound passes the pruned row of day -20
        after, _ = await both()
        assert after.usage.totals[Window.D30].cost_usd == 2.0
        message(60, "m45", 5.0, session="s45")  # a re-import below the floor, partner of a pruned row
        writer.flush()
        after, _ = await both()
        assert after.usage.totals[Window.ALL].cost_usd == 7.0
        # Every usage row pruned; a newer quota row keeps the store's top rowid where it was.
        writer.add(source_system="provider_poller", event_type="limit_snapshot", occurred_at=f"{now:%Y-%m-%dT%H:%M:%SZ}",
                   provider_id="claude_code", account_id="claude-code", dedup_key=uuid.uuid4().hex)  # fmt: skip
        writer.flush()
        await both()
        _prune_before(conn, now)
        after, _ = await both()
        assert after.usage.totals[Window.ALL].cost_usd == 0
        assert after.store.last_event_at is None
    finally:
        await reader.close()
        conn.close()


async def test_days_pruned_one_by_one_leave_the_rollup_days_before_them_counted(tmp_path: Path) -> None:
    """Openusage prunes its oldest raw day while its rollup holds the older ones.

    Day B moves on, only the rollup days from the old day B on are read again, and the figures equal a full
    recomputation.
    """
    path = generate_demo_store(tmp_path, days=100, events=3000, seed=11, now=NOW)
    zone = ZoneInfo("UTC")
    reader = StoreReader(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        first = await reader.refresh(NOW, zone)
        for day in range(3):
            conn.execute(
                f"DELETE FROM usage_events WHERE {_USAGE} AND substr(occurred_at, 1, 10) = "
                f"(SELECT substr(min(occurred_at), 1, 10) FROM usage_events WHERE {_USAGE})"
            )
            incremental = await reader.refresh(NOW, zone)
            _same(incremental, await read_store(path, NOW, zone), f"after pruned day {day + 1}")
    finally:
        await reader.close()
        conn.close()
    assert incremental.store.oldest_raw_day > first.store.oldest_raw_day


async def test_the_rollup_rows_are_added_up_again_only_when_they_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New raw rows leave what the rollup days add as it was; a pruned day (day B moves on) adds them up again."""
    path = generate_demo_store(tmp_path, days=400, events=4000, seed=12, now=NOW)
    zone = ZoneInfo("UTC")
    add_rollup = mirror.KeptUsage.add_rollup
    added: list[int] = []

    def counting(usage: Any, rows: Any, periods: Any = ()) -> None:
        rows = list(rows)
        added.append(len(rows))
        add_rollup(usage, rows, periods)

    reader = StoreReader(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        await reader.refresh(NOW, zone)
        monkeypatch.setattr(mirror.KeptUsage, "add_rollup", counting)
        for minute in range(1, 4):
            at = NOW + timedelta(minutes=minute)
            writer = EventWriter(conn)
            for i in range(3):
                writer.add(source_system="codex", provider_id="codex", occurred_at=f"{at:%Y-%m-%dT%H:%M:%SZ}",
                           message_id=f"n{minute}-{i}", cost_usd=0.5, session_id="t", dedup_key=uuid.uuid4().hex)  # fmt: skip
            writer.flush()
            _same(await reader.refresh(at, zone), await read_store(path, at, zone), f"minute {minute}")
            assert len(added) == minute  # the fresh reader's each time, none of this one's
        assert min(added) > 10  # the rollup groups of 400 days
        fresh_reads = len(added)
        conn.execute(
            f"DELETE FROM usage_events WHERE {_USAGE} AND substr(occurred_at, 1, 10) = "
            f"(SELECT substr(min(occurred_at), 1, 10) FROM usage_events WHERE {_USAGE})"
        )
        at = NOW + timedelta(minutes=5)
        _same(await reader.refresh(at, zone), await read_store(path, at, zone), "after a pruned day")
        assert len(added) == fresh_reads + 2  # this reader's (day B moved on) and the fresh one's
    finally:
        await reader.close()
        conn.close()


async def test_a_store_replaced_by_a_larger_one_is_read_afresh(tmp_path: Path) -> None:
    """A new file at the store's path with more rows, all newer, is not taken for pruned and grown rows."""
    path = tmp_path / "telemetry.db"
    conn = _new_store(path, [])
    _messages(conn, 10)
    conn.close()
    reader = StoreReader(path, ReadOptions(recent_rows=RECENT, check_block_rows=BLOCK))
    zone = ZoneInfo("UTC")
    try:
        before = await reader.refresh(NOW, zone)
        conn = _new_store(path, [])
        writer = EventWriter(conn)
        for i in range(20):
            writer.add(source_system="codex", provider_id="codex", occurred_at=f"{NOW - timedelta(minutes=30 - i):%Y-%m-%dT%H:%M:%SZ}",
                       message_id=f"n{i}", cost_usd=2.0, session_id="t", dedup_key=uuid.uuid4().hex)  # fmt: skip
        writer.flush()
        conn.close()
        after = await reader.refresh(NOW + timedelta(minutes=1), zone)
    finally:
        await reader.close()
    assert before.usage.totals[Window.ALL].cost_usd == 10
    assert after.usage.totals[Window.ALL].cost_usd == 40
    assert after.usage.breakdowns[Breakdown.PROVIDER].keys() == {"codex"}


async def test_a_pruned_day_of_rows_left_out_only_leaves_the_count(tmp_path: Path) -> None:
    """The oldest day held only a row the contract cannot place: its prune moves no floor, yet the count goes down."""
    path = tmp_path / "telemetry.db"
    conn = sqlite3.connect(path, isolation_level=None)
    create_schema(conn)
    writer = EventWriter(conn)
    for i, days in enumerate([1, 7, 1, 1, 1, 1]):  # the second row is a week old: a sealed block's
        writer.add(source_system="claude_code", occurred_at=f"{NOW - timedelta(days=days):%Y-%m-%dT%H:%M:%SZ}",
                   message_id=f"m{i}", cost_usd=1.0, dedup_key=uuid.uuid4().hex)  # fmt: skip
    writer.flush()
    zone = ZoneInfo("UTC")
    reader = StoreReader(path, ReadOptions(recent_rows=RECENT, check_block_rows=BLOCK))
    try:
        await reader.refresh(NOW, zone)
        conn.execute("UPDATE usage_events SET input_tokens = -1 WHERE message_id = 'm1'")  # left out (§2.9)
        later = NOW + CHECK  # its block is checked again
        assert (await reader.refresh(later, zone)).store.rows_left_out == 1
        conn.execute("DELETE FROM usage_events WHERE message_id = 'm1'")  # openusage's retention
        after = await reader.refresh(later, zone)
        full = await read_store(path, later, zone)
    finally:
        await reader.close()
        conn.close()
    assert after.store.rows_left_out == full.store.rows_left_out == 0
    assert after.usage == full.usage


def test_ranges_read_again_are_merged_so_nothing_is_read_twice() -> None:
    """Rowid ranges (both ends in) merge when they touch; key ranges (the high end out) when they overlap or meet."""
    assert mirror._merged([(8, 11), (0, 3), (4, 5), (10, 20)]) == [(0, 5), (8, 20)]
    assert mirror._merged([(0, 3), (5, 6)]) == [(0, 3), (5, 6)]
    day, hour = "2026-08-07", "2026-08-07T05"
    assert mirror._merged_keys([(day, day + "U"), (hour, hour + "U"), ("2026-08-09", "2026-08-09U")]) == [
        (day, day + "U"),
        ("2026-08-09", "2026-08-09U"),
    ]
    assert mirror._merged_keys([("a", "b"), ("b", "c")]) == [("a", "c")]
