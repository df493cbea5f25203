"""The mirror kept between runs: taken up only when it is this store's and was closed cleanly, else made again.

Every case compares the figures with a fresh reader's full computation, and counts the full rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from custom_components.openusage.core import mirror
from custom_components.openusage.core.cache import cache_file_in, default_cache_dir
from custom_components.openusage.core.db import close
from custom_components.openusage.core.reader import ReadOptions, StoreReader, read_store
from custom_components.openusage.core.snapshot_json import snapshot_to_json
from custom_components.openusage.core.usage import RollupRow
from openusage_demo import generate_demo_store
from tests.constants import NOW, UTC_ZONE
from tests.counting import count_rebuilds
from tests.storebuilder import message, store


@pytest.fixture
def rebuilds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the mirror's full rebuilds."""
    return count_rebuilds(monkeypatch)


def _write(db: Path, count: int, start: int = 0) -> None:
    with store(db) as w:
        for i in range(start, start + count):
            message(w, f"2026-08-17T10:{i % 60:02d}:{i // 60:02d}Z", message_id=f"m{i}", input_tokens=i + 1,
                    cost_usd=0.01 * (i + 1), session_id=f"s{i % 3}")  # fmt: skip


async def _read(db: Path, cache: Path, minutes: int = 1) -> dict:
    reader = StoreReader(db, ReadOptions(cache=cache))
    try:
        return snapshot_to_json(await reader.refresh(NOW + timedelta(minutes=minutes), UTC_ZONE))
    finally:
        await reader.close()


async def _fresh(db: Path, minutes: int = 1) -> dict:
    return snapshot_to_json(await read_store(db, NOW + timedelta(minutes=minutes), UTC_ZONE))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "telemetry.db"
    path.parent.mkdir()
    _write(path, 40)
    return path


@pytest.fixture
def cache(tmp_path: Path, db: Path) -> Path:
    return cache_file_in(tmp_path / "cache", db)


async def test_a_second_run_takes_up_the_kept_mirror_and_reads_only_what_is_new(
    db: Path, cache: Path, rebuilds: list[int]
) -> None:
    assert await _read(db, cache) == await _fresh(db)
    assert len(rebuilds) == 2  # this reader's first read, and the fresh one's
    _write(db, 5, start=40)
    assert await _read(db, cache, minutes=2) == await _fresh(db, minutes=2)
    assert len(rebuilds) == 3  # only the fresh reader rebuilt
    assert await _read(db, cache, minutes=3) == await _fresh(db, minutes=3)
    assert len(rebuilds) == 4


async def _demo_store_read_once(tmp_path: Path, days: int, events: int) -> tuple[Path, Path]:
    """Return a demo store and its cache file, after a first read that kept its mirror there (a fresh read's figures)."""
    store = generate_demo_store(tmp_path / "state", days=days, events=events, seed=3, now=NOW)
    kept = cache_file_in(tmp_path / "cache", store)
    assert await _read(store, kept) == await _fresh(store)
    return store, kept


async def test_a_long_rollup_history_is_kept_with_the_mirror(
    tmp_path: Path, rebuilds: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A year of rollup days is read once: a restart takes it up with the mirror, and its figures are a fresh read's."""
    store, kept = await _demo_store_read_once(tmp_path, days=365, events=6_000)
    read = mirror.read_rollup
    calls: list[int] = []

    async def counting(*args: Any, **kwargs: Any) -> list[RollupRow]:
        calls.append(1)
        return await read(*args, **kwargs)

    monkeypatch.setattr(mirror, "read_rollup", counting)
    restarted = await _read(store, kept, minutes=2)
    assert calls == []  # taken up with the mirror
    assert restarted == await _fresh(store, minutes=2)
    assert calls == [1]  # the fresh reader's
    assert restarted["totals"]["all"]["cost_usd"] > restarted["totals"]["30d"]["cost_usd"]
    assert len(rebuilds) == 3  # the first reader's and the two fresh ones'


async def test_the_hourly_spend_history_is_kept_with_the_mirror(
    tmp_path: Path, rebuilds: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart reads none of the projection's four weeks of hours again; in a later hour, only the hours since."""
    store, kept = await _demo_store_read_once(tmp_path, days=40, events=4_000)
    run = mirror.run
    hours_read: list[tuple[str, str]] = []

    async def counting(db: Any, sql: str, params: Any = ()) -> list[Any]:
        if sql == mirror._HOURLY_COST_SQL:
            hours_read.append((params["since"], params["until"]))
        return await run(db, sql, params)

    monkeypatch.setattr(mirror, "run", counting)
    restarted = await _read(store, kept, minutes=2)
    assert hours_read == []  # taken up with the mirror
    assert restarted == await _fresh(store, minutes=2)
    assert restarted["forecast"]["month"]["method"] == "weekday_hour_profile"
    assert len(hours_read) == 1  # the fresh reader's: four weeks
    hours_read.clear()
    later = await _read(store, kept, minutes=62)  # the next hour: only the hour gone by is read
    assert hours_read == [("2026-08-17T12", "2026-08-17T13")]
    assert later == await _fresh(store, minutes=62)
    assert len(rebuilds) == 4  # the first reader's and the three fresh ones'


async def test_a_refresh_after_close_reads_and_lets_go_again(db: Path, cache: Path) -> None:
    """A refresh that comes after close (one that began as its owner stopped) gives figures and keeps no connection."""
    reader = StoreReader(db, ReadOptions(cache=cache))
    await reader.refresh(NOW + timedelta(minutes=1), UTC_ZONE)
    await reader.close()
    late = snapshot_to_json(await reader.refresh(NOW + timedelta(minutes=2), UTC_ZONE))
    assert reader._db is None  # and its thread has ended: the test harness fails on a thread left behind
    assert late == await _fresh(db, minutes=2)
    assert _meta(cache)["clean"] == "1"  # the late read kept the mirror too


def _meta(cache: Path) -> dict[str, Any]:
    conn = sqlite3.connect(cache)
    try:
        return dict(conn.execute("SELECT key, value FROM cache_meta").fetchall())
    finally:
        conn.close()


def _set_meta(cache: Path, key: str, value: str | bytes) -> None:
    conn = sqlite3.connect(cache)
    with conn:
        conn.execute("UPDATE cache_meta SET value = ? WHERE key = ?", (value, key))
    conn.close()


def _tear_kept(cache: Path) -> None:
    kept = json.loads(zlib.decompress(_meta(cache)["kept"]))
    kept["usage"]["windows"]["all"][0][2][0] += 1000  # a changed sum: its checksum no longer matches
    _set_meta(cache, "kept", zlib.compress(json.dumps(kept).encode()))


def _not_compressed(cache: Path) -> None:
    record = json.dumps(json.loads(zlib.decompress(_meta(cache)["kept"]))).encode()
    _set_meta(cache, "kept", record)  # with a checksum that matches: the record itself is not what it should be
    _set_meta(cache, "kept_sha256", hashlib.sha256(record).hexdigest())


def _from_another_release(cache: Path) -> None:
    _set_meta(cache, "identity", "0.0.1/0" + _meta(cache)["identity"].partition("|")[1])


def _not_a_database(cache: Path) -> None:
    cache.write_bytes(b"not a database, but a file of the same name " * 100)


def _garbled_pages(cache: Path) -> None:
    data = bytearray(cache.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # a page of the mirror's rows
    cache.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "spoil",
    [_tear_kept, _not_compressed, _from_another_release, _not_a_database, _garbled_pages],
    ids=["torn sums", "sums not compressed", "another release", "not a database", "garbled pages"],
)
async def test_a_cache_that_is_not_right_is_made_again(
    db: Path, cache: Path, rebuilds: list[int], spoil: object
) -> None:
    await _read(db, cache)
    spoil(cache)  # type: ignore[operator]
    _write(db, 3, start=40)
    first = await _read_until_it_reads(db, cache)
    assert first == await _fresh(db, minutes=2)
    assert len(rebuilds) == 3  # made again, never taken up as it was
    assert await _read(db, cache, minutes=3) == await _fresh(db, minutes=3)
    assert len(rebuilds) == 4  # and kept again after that


async def _read_until_it_reads(db: Path, cache: Path) -> dict:
    """Read; a damaged file may fail one read (it is then removed), and the next one reads."""
    try:
        return await _read(db, cache, minutes=2)
    except Exception:
        assert not cache.exists()
        return await _read(db, cache, minutes=2)


async def test_a_run_that_ended_without_closing_leaves_nothing_to_take_up(
    db: Path, cache: Path, rebuilds: list[int]
) -> None:
    await _read(db, cache)
    reader = StoreReader(db, ReadOptions(cache=cache))
    _write(db, 3, start=40)
    await reader.refresh(NOW + timedelta(minutes=2), UTC_ZONE)  # changes the kept rows, marks the file unclean
    await close(reader._db)  # type: ignore[arg-type]  (as a kill would: no save)
    assert _meta(cache)["clean"] == "0"
    assert await _read(db, cache, minutes=3) == await _fresh(db, minutes=3)
    assert len(rebuilds) == 3


async def test_a_replaced_or_moved_store_is_read_afresh(db: Path, tmp_path: Path, rebuilds: list[int]) -> None:
    cache = cache_file_in(tmp_path / "cache", db)
    await _read(db, cache)
    other = tmp_path / "other" / "telemetry.db"
    other.parent.mkdir()
    _write(other, 60, start=100)
    os.replace(other, db)  # the same path, another store file (openusage resets a corrupt one)
    assert await _read(db, cache) == await _fresh(db)
    assert len(rebuilds) == 3  # the first read, the read of the other store, the fresh one
    # A store rewritten in place (the same file): its newest row is another.
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE usage_events SET event_id = 'another' WHERE rowid = (SELECT max(rowid) FROM usage_events)")
    conn.close()
    assert await _read(db, cache, minutes=2) == await _fresh(db, minutes=2)
    assert len(rebuilds) == 5
    # A moved store has a cache file of its own.
    assert cache_file_in(tmp_path / "cache", other) != cache


async def test_a_second_reader_of_the_same_cache_reads_on_its_own(db: Path, cache: Path, rebuilds: list[int]) -> None:
    await _read(db, cache)
    first = StoreReader(db, ReadOptions(cache=cache))
    try:
        await first.refresh(NOW + timedelta(minutes=2), UTC_ZONE)
        # The first holds the file: the second makes a private mirror, and is right.
        assert await _read(db, cache, minutes=2) == await _fresh(db, minutes=2)
    finally:
        await first.close()
    assert len(rebuilds) == 3  # the second's and the fresh one's; the first took the file up


def test_the_cache_folder_is_never_in_the_state_folder(tmp_path: Path) -> None:
    db = tmp_path / "state" / "telemetry.db"
    with pytest.raises(ValueError, match="inside openusage's state folder"):
        cache_file_in(tmp_path / "state", db)
    with pytest.raises(ValueError, match="inside openusage's state folder"):
        cache_file_in(tmp_path / "state" / "cache", db)
    assert default_cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/openusage-ha")
    assert default_cache_dir({"HOME": "/home/u"}) == Path("/home/u/.cache/openusage-ha")


_CHILD = """
import asyncio, sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo
from custom_components.openusage.core.reader import ReadOptions, StoreReader
from tests.storebuilder import message, store

db, cache, now, run = Path(sys.argv[1]), Path(sys.argv[2]), datetime.fromisoformat(sys.argv[3]), sys.argv[4]

async def main():
    for round in range(1000):
        with store(db) as w:
            for i in range(50):
                key = f"k{run}-{round}-{i}"
                message(w, f"2026-08-17T11:{i:02d}:00Z", message_id=key, dedup_key=key, input_tokens=i)
        reader = StoreReader(db, ReadOptions(cache=cache))
        print("refreshing", flush=True)
        await reader.refresh(now, ZoneInfo("UTC"))
        print("saving", flush=True)
        await reader.close()

asyncio.run(main())
"""


@pytest.mark.parametrize("phase", ["refreshing", "saving"])
async def test_a_kill_in_the_middle_of_a_refresh_or_a_cache_write_leaves_right_figures(
    tmp_path: Path, phase: str
) -> None:
    from openusage_demo import generate_demo_store

    db = generate_demo_store(tmp_path / "state", days=20, events=20_000, seed=6, now=NOW)
    cache = cache_file_in(tmp_path / "cache", db)
    root = Path(__file__).parents[2]
    for kills in range(3):
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(db), str(cache), NOW.isoformat(), str(kills)],
                                 cwd=root, stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert child.stdout is not None
        seen = 0
        for line in child.stdout:
            seen += line.strip() == phase
            if seen == kills + 1:  # later rounds: a cache from a clean close is there by then
                child.send_signal(signal.SIGKILL)
                break
        child.wait(30)
        assert child.returncode == -signal.SIGKILL
        assert await _read(db, cache, minutes=0) == await _fresh(db, minutes=0)


async def test_a_store_replaced_while_a_reader_runs_is_not_kept_as_its_own(
    db: Path, tmp_path: Path, rebuilds: list[int]
) -> None:
    cache = cache_file_in(tmp_path / "cache", db)
    await _read(db, cache)
    reader = StoreReader(db, ReadOptions(cache=cache))
    await reader.refresh(NOW + timedelta(minutes=2), UTC_ZONE)  # takes up the kept mirror
    other = tmp_path / "other.db"
    _write(other, 40)
    os.replace(other, db)  # another file under the same path, with the same row count
    await reader.close()
    assert await _read(db, cache, minutes=3) == await _fresh(db, minutes=3)
    assert len(rebuilds) == 3  # the first read, the read after the replacement, the fresh one


def test_a_cache_folder_that_cannot_be_made_is_said_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ValueError, match=r"a-file/cache: Not a directory"):
        cache_file_in(tmp_path / "a-file" / "cache", tmp_path / "state" / "telemetry.db")
