"""Broken stores and spools: a clear error or a correct degraded figure, never a crash, never a write."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from custom_components.openusage.core.models import Window
from custom_components.openusage.core.reader import (
    ReadOptions,
    StoreError,
    StoreErrorKind,
    StoreReader,
    probe_store,
    read_store,
)
from custom_components.openusage.core.schema import create_schema
from custom_components.openusage.core.spool import read_spools
from openusage_demo import generate_demo_store
from tests.constants import NOW
from tests.storebuilder import message, store
from tests.unprivileged import run_unprivileged


async def read(path: Path, **options):
    """Read the store at `path` once, with the given read options."""
    return await read_store(path, NOW, ZoneInfo("UTC"), ReadOptions(**options))


async def expect_error(path: Path, kind: StoreErrorKind, **options) -> StoreError:
    """Read the store and return the StoreError it raises, checking its kind."""
    with pytest.raises(StoreError) as caught:
        await read(path, **options)
    assert caught.value.kind is kind
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(StoreError) as probed:
        await probe_store(path, options.get("busy_timeout", 5.0))
    assert probed.value.kind is kind
    return caught.value


async def test_missing_file(tmp_path: Path) -> None:
    await expect_error(tmp_path / "telemetry.db", StoreErrorKind.MISSING)
    assert list(tmp_path.iterdir()) == []  # nothing created


async def test_directory(tmp_path: Path) -> None:
    await expect_error(tmp_path, StoreErrorKind.NOT_A_FILE)


async def test_empty_file(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    db.write_bytes(b"")
    await expect_error(db, StoreErrorKind.EMPTY)
    assert db.read_bytes() == b""


async def test_random_bytes(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    data = os.urandom(8192)
    db.write_bytes(data)
    await expect_error(db, StoreErrorKind.NOT_SQLITE)
    assert db.read_bytes() == data


async def test_sqlite_without_openusage_tables(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    error = await expect_error(db, StoreErrorKind.NOT_OPENUSAGE)
    assert "usage_events" in str(error)


async def test_v0_5_0_store_has_usage_but_no_rollup_figures(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db, release="0.5.0") as w:
        message(w, "2026-08-17T10:00:00Z", message_id="m", input_tokens=5)
    snapshot = await read(db)
    assert snapshot.store.tables == ("usage_events", "usage_raw_events", "usage_reconciliation_windows")
    assert snapshot.store.rollup_watermark is None
    assert snapshot.usage.totals[Window.ALL].input_tokens == 5
    assert await probe_store(db) == snapshot.store.tables


async def test_unknown_tables_and_triggers_are_ignored(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="m", input_tokens=5)
        w.conn.execute(
            "CREATE TABLE usage_event_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL)"
        )
        w.conn.execute("CREATE TABLE something_new (x)")
        w.conn.execute(
            "CREATE TRIGGER t AFTER INSERT ON usage_events BEGIN "
            "INSERT INTO usage_event_changes (event_id) VALUES (NEW.event_id); END"
        )
    snapshot = await read(db)
    assert "usage_event_changes" in snapshot.store.tables
    assert "something_new" not in snapshot.store.tables
    assert snapshot.usage.totals[Window.TODAY].input_tokens == 5


async def test_truncated_store_is_reported_corrupt(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    conn = sqlite3.connect(db)
    create_schema(conn)
    conn.commit()
    conn.close()
    with store(db) as w:
        for i in range(3000):
            message(w, "2026-08-17T10:00:00Z", message_id=f"m{i}", input_tokens=5, workspace_id="x" * 200)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])
    await expect_error(db, StoreErrorKind.CORRUPT)


async def test_store_locked_longer_than_the_busy_timeout(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="m", input_tokens=5)
    # Another process takes an exclusive lock (rollback journal, as a VACUUM or a pre-WAL writer would).
    locker = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sqlite3, sys, time
            conn = sqlite3.connect({str(db)!r}, isolation_level=None)
            conn.execute("PRAGMA journal_mode = DELETE")
            conn.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            time.sleep(30)
        """)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert locker.stdout is not None
        assert locker.stdout.readline().strip() == "locked"
        await expect_error(db, StoreErrorKind.LOCKED, busy_timeout=0.3)
    finally:
        locker.kill()
        locker.wait()
    assert (await read(db)).usage.totals[Window.TODAY].input_tokens == 5


def _spool_files(root: Path) -> None:
    hook = root / "hook-spool"
    spool = root / "telemetry-spool"
    hook.mkdir()
    spool.mkdir()
    (hook / "1.json").write_text("")  # empty, still a file the daemon has not taken
    (hook / "2.json").write_text("not json")
    (hook / "3.json.tmp").write_text("{")
    (hook / "notes.txt").write_text("ignored")
    ns = int(NOW.timestamp()) * 10**9
    (spool / f"{ns - 60 * 10**9:019d}_a.jsonl").write_text("")  # empty first line: malformed
    (spool / f"{ns - 50 * 10**9:019d}_b.jsonl").write_text("{oops\n")  # not JSON: malformed
    (spool / f"{ns - 40 * 10**9:019d}_c.jsonl").write_text(json.dumps({"attempt": 2}) + "\n")  # no spool_id
    (spool / f"{ns - 30 * 10**9:019d}_d.jsonl").write_text(json.dumps({"spool_id": "d"}) + "\n")  # no attempt
    failed = {"spool_id": "e", "attempt": "x", "last_error": 5}
    (spool / f"{ns - 20 * 10**9:019d}_e.jsonl").write_text(json.dumps(failed) + "\n")
    (spool / f"{ns - 10 * 10**9:019d}_f.jsonl").write_text(json.dumps({"spool_id": "f", "attempt": 1}) + "\n")
    (spool / "odd-name.jsonl").write_text(json.dumps({"spool_id": "g", "attempt": 0}) + "\n")


async def test_spool_files_that_are_empty_broken_or_missing_fields(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db):
        pass
    _spool_files(tmp_path)
    spool = (await read(db)).spool
    assert spool.hook_spool_files == 2
    assert spool.hook_spool_tmp_files == 1
    assert spool.spool_malformed == 3
    assert spool.spool_pending == 3  # d (attempt missing = new), e (attempt not a number), g
    assert spool.spool_failed == 1
    assert spool.spool_last_error == ""  # f failed without saying why
    assert spool.spool_oldest_age_seconds == pytest.approx(60.0)


async def test_missing_spool_folders_mean_no_backlog(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db):
        pass
    spool = (await read(db)).spool
    assert (spool.hook_spool_files, spool.spool_pending, spool.spool_failed) == (0, 0, 0)
    assert spool.hook_spool_oldest_age_seconds is None


async def test_spool_path_that_is_not_a_folder_means_unknown_backlog(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="m", input_tokens=5)
    (tmp_path / "hook-spool").write_text("a file where a folder should be")
    snapshot = await read(db)
    assert snapshot.spool.hook_spool_files is None
    assert snapshot.spool.spool_pending == 0
    assert snapshot.usage.totals[Window.TODAY].input_tokens == 5


@pytest.mark.filterwarnings("ignore:This process .* fork:DeprecationWarning")
def test_unreadable_spool_folders(open_dir: Path) -> None:
    """Folders that exist but cannot be listed give unknown (None) counts, never zeros.

    Root lists every folder, so the reading runs in a forked child that gives up root first.
    """
    _spool_files(open_dir)
    for folder in ("hook-spool", "telemetry-spool"):
        (open_dir / folder).chmod(0o000)
    try:
        reported = run_unprivileged(
            lambda: json.dumps(asdict(read_spools(open_dir / "hook-spool", open_dir / "telemetry-spool", NOW)))
        )
    finally:
        for folder in ("hook-spool", "telemetry-spool"):
            (open_dir / folder).chmod(0o755)
    health = json.loads(reported)
    assert health["hook_spool_files"] is None
    assert health["hook_spool_tmp_files"] is None
    assert health["spool_pending"] is None
    assert health["spool_failed"] is None
    assert health["spool_malformed"] is None
    assert health["spool_oldest_age_seconds"] is None


async def test_twenty_five_thousand_spool_files(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db):
        pass
    spool = tmp_path / "telemetry-spool"
    spool.mkdir()
    ns = int(NOW.timestamp()) * 10**9
    for i in range(25_000):
        attempt = 1 if i % 5 == 0 else 0
        record = {"spool_id": f"id{i}", "attempt": attempt, "last_error": f"ingest: fail {i}"}
        (spool / f"{ns - (25_000 - i) * 10**9:019d}_id{i}.jsonl").write_text(json.dumps(record) + "\n")
    result = (await read(db)).spool
    assert result.spool_failed == 5_000
    assert result.spool_pending == 20_000
    assert result.spool_oldest_age_seconds == pytest.approx(25_000.0)
    assert result.spool_last_error == "ingest: fail 24995"


@pytest.mark.filterwarnings("ignore:This process .* fork:DeprecationWarning")
def test_stopped_daemon_in_a_read_only_folder(open_dir: Path) -> None:
    """No -wal, and a folder the reader may not write: `mode=ro` cannot open, `immutable=1` is safe.

    Root writes everywhere, so the reading runs in a forked child that gives up root first.
    """
    db = open_dir / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="m", input_tokens=5)
    for suffix in ("-wal", "-shm"):
        assert not Path(f"{db}{suffix}").exists()  # a clean daemon shutdown leaves neither
    open_dir.chmod(0o555)
    try:
        reported = run_unprivileged(lambda: str(asyncio.run(read(db)).usage.totals[Window.ALL].input_tokens))
    finally:
        open_dir.chmod(0o755)
    assert reported == "5"
    assert sorted(p.name for p in open_dir.iterdir()) == ["telemetry.db"]


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("database is locked", StoreErrorKind.LOCKED),
        ("database disk image is malformed", StoreErrorKind.CORRUPT),
        ("disk I/O error", StoreErrorKind.UNREADABLE),
    ],
)
def test_sqlite_errors_are_named(message: str, kind: StoreErrorKind, tmp_path: Path) -> None:
    import sqlite3 as sqlite

    from custom_components.openusage.core.reader import classify_sqlite_error

    error = classify_sqlite_error(sqlite.OperationalError(message), tmp_path / "telemetry.db")
    assert error.kind is kind
    assert str(error).startswith(str(tmp_path / "telemetry.db"))
    assert message in str(error)


async def test_a_store_that_goes_while_it_is_read_is_reported_missing(tmp_path: Path) -> None:
    from custom_components.openusage.core.db import close, connect, run
    from custom_components.openusage.core.reader import store_transaction

    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="m", input_tokens=5)
    conn = await connect(":memory:", 5.0)

    async def read_after_it_went() -> None:
        async with store_transaction(conn, db):
            db.rename(tmp_path / "away.db")
            await run(conn, "SELECT * FROM store.usage_rollup_weekly")  # an SQLite failure after it went

    try:
        with pytest.raises(StoreError) as caught:
            await read_after_it_went()
    finally:
        await close(conn)
    assert caught.value.kind is StoreErrorKind.MISSING


async def test_a_reader_recovers_when_the_store_breaks_between_refreshes(tmp_path: Path) -> None:
    db = generate_demo_store(tmp_path, days=20, events=3000, seed=7, now=NOW)
    good = db.read_bytes()
    reader = StoreReader(db)
    try:
        before = await reader.refresh(NOW, ZoneInfo("UTC"))
        db.write_bytes(good[: len(good) // 2])  # its pages gone under a reader that has mirrored it
        with pytest.raises(StoreError) as caught:
            await reader.refresh(NOW, ZoneInfo("UTC"))
        assert caught.value.kind is StoreErrorKind.CORRUPT
        db.write_bytes(good)
        after = await reader.refresh(NOW, ZoneInfo("UTC"))
    finally:
        await reader.close()
    assert after.usage == before.usage
    assert after.usage.totals[Window.ALL].messages > 0
