"""Read one consistent state of an openusage store, read-only and briefly (metrics.md §6).

Each refresh opens the store by URI in `mode=ro`, reads every figure inside one read transaction
and closes the connection: a transaction held between refreshes would block the daemon's WAL
checkpoint (openusage-store.md §10.1). Nothing in the state folder is ever written.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiosqlite

from .clock import WindowBounds, format_utc
from .models import Snapshot, StoreHealth
from .quotas import read_quotas
from .spool import HOOK_SPOOL_DIR, TELEMETRY_SPOOL_DIR, read_spools
from .usage import DEFAULT_PROVIDER_LINKS, fold_usage, read_usage_cube

REQUIRED_TABLES = ("usage_events", "usage_raw_events")
KNOWN_TABLES = (
    "_migrations",
    "balance_observations",
    "daemon_meta",
    "usage_event_changes",
    "usage_events",
    "usage_raw_events",
    "usage_reconciliation_windows",
    "usage_rollup_daily",
)
_SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_BUSY_TIMEOUT = 5.0
DEFAULT_ACTIVE_MINUTES = 15.0


class StoreErrorKind(StrEnum):
    """Why a store could not be read; each has its own translated message in Home Assistant."""

    MISSING = "missing"
    NOT_A_FILE = "not_a_file"
    PERMISSION = "permission"
    EMPTY = "empty"
    NOT_SQLITE = "not_sqlite"
    NOT_OPENUSAGE = "not_openusage"
    CORRUPT = "corrupt"
    LOCKED = "locked"
    UNREADABLE = "unreadable"


_DESCRIPTIONS = {
    StoreErrorKind.MISSING: "no such file",
    StoreErrorKind.NOT_A_FILE: "is a directory, not a file",
    StoreErrorKind.PERMISSION: "permission denied",
    StoreErrorKind.EMPTY: "the file is empty, not an openusage store",
    StoreErrorKind.NOT_SQLITE: "not an SQLite database",
    StoreErrorKind.NOT_OPENUSAGE: "an SQLite database, but not an openusage store",
    StoreErrorKind.CORRUPT: "the database is corrupt",
    StoreErrorKind.LOCKED: "the database stayed locked by another process longer than the busy timeout",
    StoreErrorKind.UNREADABLE: "the database cannot be read",
}


class StoreError(Exception):
    """The store cannot be read. `kind` says why; str() is one line naming the path and the cause."""

    def __init__(self, kind: StoreErrorKind, path: Path, detail: str = "") -> None:
        self.kind = kind
        self.path = path
        self.detail = detail
        text = f"{path}: {_DESCRIPTIONS[kind]}"
        super().__init__(f"{text} ({detail})" if detail else text)


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """What a refresh computes besides the store: options a user may set."""

    active_minutes: float = DEFAULT_ACTIVE_MINUTES
    provider_links: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PROVIDER_LINKS))
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    hook_spool: Path | None = None
    telemetry_spool: Path | None = None


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where openusage keeps its store: `$XDG_STATE_HOME/openusage`, else `~/.local/state/openusage`."""
    env = os.environ if environ is None else environ
    state_home = env.get("XDG_STATE_HOME", "").strip()
    base = Path(state_home) if state_home else Path(env.get("HOME") or Path.home()) / ".local" / "state"
    return base / "openusage" / "telemetry.db"


def merge_links(extra: Mapping[str, str]) -> dict[str, str]:
    """The default provider links with the user's added (lower-cased; theirs win)."""
    links = dict(DEFAULT_PROVIDER_LINKS)
    links.update({k.strip().lower(): v.strip().lower() for k, v in extra.items() if k.strip() and v.strip()})
    return links


def _check_file(path: Path) -> None:
    """Classify what is at `path` before SQLite sees it (blocking)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise StoreError(StoreErrorKind.MISSING, path) from None
    except PermissionError:
        raise StoreError(StoreErrorKind.PERMISSION, path) from None
    except OSError as err:
        raise StoreError(StoreErrorKind.UNREADABLE, path, err.strerror or str(err)) from None
    if path.is_dir():
        raise StoreError(StoreErrorKind.NOT_A_FILE, path)
    if info.st_size == 0:
        raise StoreError(StoreErrorKind.EMPTY, path)
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(_SQLITE_HEADER))
    except PermissionError:
        raise StoreError(StoreErrorKind.PERMISSION, path) from None
    except OSError as err:
        raise StoreError(StoreErrorKind.UNREADABLE, path, err.strerror or str(err)) from None
    if header != _SQLITE_HEADER:
        raise StoreError(StoreErrorKind.NOT_SQLITE, path)


def classify_sqlite_error(err: sqlite3.Error, path: Path) -> StoreError:
    """Map an SQLite failure to the cause a user can act on."""
    name = getattr(err, "sqlite_errorname", "") or ""
    text = str(err)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        kind = StoreErrorKind.LOCKED
    elif name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text:
        kind = StoreErrorKind.CORRUPT
    elif name.startswith(("SQLITE_PERM", "SQLITE_AUTH")):
        kind = StoreErrorKind.PERMISSION
    else:
        kind = StoreErrorKind.UNREADABLE
    return StoreError(kind, path, text)


def _uri(path: Path, immutable: bool) -> str:
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    return uri + "&immutable=1" if immutable else uri


async def _connect(path: Path, busy_timeout: float) -> aiosqlite.Connection:
    """Open read-only. Only when that fails because the folder is read-only and no WAL exists
    (the daemon is stopped) is `immutable=1` safe (openusage-store.md §10.2)."""
    try:
        return await _open_checked(_uri(path, False), busy_timeout)
    except sqlite3.Error as err:
        name = getattr(err, "sqlite_errorname", "") or ""
        wal = path.with_name(path.name + "-wal")
        if not (name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) and not wal.exists()):
            raise
    return await _open_checked(_uri(path, True), busy_timeout)


async def _open_checked(uri: str, busy_timeout: float) -> aiosqlite.Connection:
    """Connect and read the schema page once, closing the connection (and its thread) on failure."""
    db = await aiosqlite.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None)
    try:
        await db.execute("SELECT 1 FROM sqlite_master LIMIT 1")
    except BaseException:
        await db.close()
        raise
    return db


def _store_files(path: Path) -> tuple[int, int, str | None]:
    """Sizes of the store and its WAL, and the time of the newest corrupt-store backup (blocking)."""

    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except OSError:
            return 0

    newest: float | None = None
    prefix = path.name + ".corrupt."
    try:
        with os.scandir(path.parent) as entries:
            for entry in entries:
                if entry.name.startswith(prefix):
                    try:
                        mtime = entry.stat(follow_symlinks=False).st_mtime
                    except OSError:
                        continue
                    newest = mtime if newest is None else max(newest, mtime)
    except OSError:
        pass
    backup = format_utc(datetime.fromtimestamp(newest, UTC)) if newest is not None else None
    return size(path), size(path.with_name(path.name + "-wal")), backup


async def _fetch_tables(db: aiosqlite.Connection) -> set[str]:
    async with db.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cursor:
        return {row[0] for row in await cursor.fetchall()}


async def fetch_watermark(db: aiosqlite.Connection, tables: set[str]) -> str | None:
    """The rollup watermark (`YYYY-MM-DD`), or None without one or without the table."""
    if "daemon_meta" not in tables:
        return None
    async with db.execute("SELECT value FROM daemon_meta WHERE key = 'rollup_daily_watermark'") as cursor:
        row = await cursor.fetchone()
    value = row[0] if row else None
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return value
    return None


@asynccontextmanager
async def read_transaction(
    path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> AsyncIterator[tuple[aiosqlite.Connection, set[str]]]:
    """An open openusage store inside one read transaction, with the names of its tables.

    The transaction ends and the connection closes when the block ends; any SQLite failure, in the
    block too, becomes a StoreError that says why.
    """
    await asyncio.to_thread(_check_file, path)
    try:
        db = await _connect(path, busy_timeout)
        try:
            await db.execute("BEGIN")  # one read transaction: every figure from one state
            try:
                tables = await _fetch_tables(db)
                _require_tables(tables, path)
                yield db, tables
            finally:
                await db.execute("ROLLBACK")
        finally:
            await db.close()
    except sqlite3.Error as err:
        raise classify_sqlite_error(err, path) from None


async def probe_store(path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> tuple[str, ...]:
    """Check that `path` is a readable openusage store; return the known tables it has."""
    async with read_transaction(path, busy_timeout) as (_db, tables):
        return tuple(sorted(tables & set(KNOWN_TABLES)))


def _require_tables(tables: set[str], path: Path) -> None:
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise StoreError(StoreErrorKind.NOT_OPENUSAGE, path, "no " + ", ".join(missing) + " table")


class StoreReader:
    """Reads the figures of one store; keep one per store and call `refresh` on each poll."""

    def __init__(self, path: Path, options: ReadOptions | None = None) -> None:
        self.path = path
        self.options = options or ReadOptions()

    @property
    def hook_spool(self) -> Path:
        return self.options.hook_spool or self.path.parent / HOOK_SPOOL_DIR

    @property
    def telemetry_spool(self) -> Path:
        return self.options.telemetry_spool or self.path.parent / TELEMETRY_SPOOL_DIR

    async def refresh(self, now: datetime, zone: ZoneInfo) -> Snapshot:
        """Every figure at `now` in `zone`. Raises StoreError when the store cannot be read."""
        now = now.astimezone(UTC)
        bounds = WindowBounds.at(now, zone, self.options.active_minutes)
        async with read_transaction(self.path, self.options.busy_timeout) as (db, tables):
            watermark = await fetch_watermark(db, tables)
            has_rollup = "usage_rollup_daily" in tables
            cube, rollup, oldest_day = await read_usage_cube(db, bounds, watermark, has_rollup)
            quotas, last_snapshot_at = await read_quotas(db, now)

        usage, (db_size, wal_size, backup), spool = await asyncio.gather(
            asyncio.to_thread(fold_usage, cube, rollup, self.options.provider_links, oldest_day, watermark),
            asyncio.to_thread(_store_files, self.path),
            asyncio.to_thread(read_spools, self.hook_spool, self.telemetry_spool, now),
        )
        return Snapshot(
            now=format_utc(now),
            time_zone=zone.key,
            usage=usage.figures,
            quotas=quotas,
            store=StoreHealth(
                db_size_bytes=db_size,
                wal_size_bytes=wal_size,
                last_event_at=usage.last_event_at,
                last_snapshot_at=last_snapshot_at,
                oldest_raw_day=oldest_day,
                rollup_watermark=watermark,
                tables=tuple(sorted(tables & set(KNOWN_TABLES))),
                corrupt_backup_at=backup,
            ),
            spool=spool,
        )


async def read_store(path: Path, now: datetime, zone: ZoneInfo, options: ReadOptions | None = None) -> Snapshot:
    """One refresh of the store at `path` (see StoreReader)."""
    return await StoreReader(path, options).refresh(now, zone)


__all__ = [
    "KNOWN_TABLES",
    "ReadOptions",
    "StoreError",
    "StoreErrorKind",
    "StoreReader",
    "default_store_path",
    "merge_links",
    "probe_store",
    "read_store",
    "read_transaction",
]
