"""Read one consistent state of an openusage store, read-only and briefly (metrics.md §6).

Each refresh attaches the store by URI in `mode=ro`, reads every figure inside one read transaction
and detaches it: a transaction held between refreshes would block the daemon's WAL checkpoint
(openusage-store.md §10.1). Nothing in the state folder is ever written. The store is attached to a
connection of our own: a private temporary database for the reader's mirror (mirror.py), or an
in-memory one for a single look.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from .cache import cache_identity, remove_cache_file
from .clock import WindowBounds, parse_time
from .db import Database, close, connect, one, run, run_all
from .forecast import HourlyCost, SpendHistory, budget_statuses, month_forecast, spend_history
from .mirror import CHECK_BLOCK_ROWS, DEFAULT_CHECK_PERIOD, RECENT_ROWS, UsageMirror
from .models import QuotaSnapshot, Snapshot, StoreHealth
from .quotas import SnapshotMemo, read_quotas
from .spool import HOOK_SPOOL_DIR, TELEMETRY_SPOOL_DIR, read_spools
from .usage import DEFAULT_PROVIDER_LINKS, NANO_USD, UsageRead

_LOGGER = logging.getLogger(__name__)
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
    StoreErrorKind.NOT_A_FILE: "not a regular file (a folder, a pipe or a device)",
    StoreErrorKind.PERMISSION: "permission denied",
    StoreErrorKind.EMPTY: "the file is empty, not an openusage store",
    StoreErrorKind.NOT_SQLITE: "not an SQLite database",
    StoreErrorKind.NOT_OPENUSAGE: "an SQLite database, but not an openusage store",
    StoreErrorKind.CORRUPT: "the database is corrupt",
    StoreErrorKind.LOCKED: "the database stayed locked by another process longer than the busy timeout",
    StoreErrorKind.UNREADABLE: "the database cannot be read",
}


class StoreError(Exception):
    """The store cannot be read. `kind` says why; str() is one line naming the path and the cause.

    The causes' English is written here only: Home Assistant's messages take `cause` as it is.
    """

    def __init__(self, kind: StoreErrorKind, path: Path, detail: str = "") -> None:
        """Say what failed, for which store, and why."""
        self.kind = kind
        self.path = path
        self.detail = detail
        self.cause = f"{_DESCRIPTIONS[kind]} ({detail})" if detail else _DESCRIPTIONS[kind]
        super().__init__(f"{path}: {self.cause}")


class StoreChangedError(StoreError):
    """The store's file was written during a read that took it as unchanging (`immutable`): read it again."""

    def __init__(self, path: Path) -> None:
        """Say which store was written during the read."""
        super().__init__(StoreErrorKind.UNREADABLE, path, "openusage wrote to it during the read")


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """What a refresh computes besides the store: options a user may set."""

    active_minutes: float = DEFAULT_ACTIVE_MINUTES
    provider_links: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PROVIDER_LINKS))
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    hook_spool: Path | None = None
    telemetry_spool: Path | None = None
    recent_rows: int = RECENT_ROWS  # newest rows re-read on every refresh, for in-place enrichment
    check_period: timedelta = DEFAULT_CHECK_PERIOD  # every older row compared with the store at least this often
    check_block_rows: int = CHECK_BLOCK_ROWS  # by blocks of this many rowids
    # Monthly budgets in USD: the whole store's under None, a provider's under its key (metrics.md §8).
    budgets: Mapping[str | None, float] = field(default_factory=dict)
    # A file to keep the mirror in between runs (cache.py), so that a restart reads only what changed.
    cache: Path | None = None


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where openusage keeps its store: `$XDG_STATE_HOME/openusage`, else `~/.local/state/openusage`."""
    env = os.environ if environ is None else environ
    state_home = env.get("XDG_STATE_HOME", "").strip()
    base = Path(state_home) if state_home else Path(env.get("HOME") or Path.home()) / ".local" / "state"
    return base / "openusage" / "telemetry.db"


def merge_links(extra: Mapping[str, str]) -> dict[str, str]:
    """Return the default provider links with the user's added (lower-cased; theirs win)."""
    links = dict(DEFAULT_PROVIDER_LINKS)
    links.update({k.strip().lower(): v.strip().lower() for k, v in extra.items() if k.strip() and v.strip()})
    return links


def _check_file(path: Path) -> bool:
    """Classify what is at `path` before SQLite sees it, and say whether it is in WAL mode (blocking)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise StoreError(StoreErrorKind.MISSING, path) from None
    except PermissionError:
        raise StoreError(StoreErrorKind.PERMISSION, path) from None
    except OSError as err:
        raise StoreError(StoreErrorKind.UNREADABLE, path, err.strerror or str(err)) from None
    if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO (which would block an open), a device
        raise StoreError(StoreErrorKind.NOT_A_FILE, path)
    if info.st_size == 0:
        raise StoreError(StoreErrorKind.EMPTY, path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # swapped since the stat
                raise StoreError(StoreErrorKind.NOT_A_FILE, path)
            header = handle.read(20)
    except PermissionError:
        raise StoreError(StoreErrorKind.PERMISSION, path) from None
    except OSError as err:
        raise StoreError(StoreErrorKind.UNREADABLE, path, err.strerror or str(err)) from None
    if header[: len(_SQLITE_HEADER)] != _SQLITE_HEADER:
        raise StoreError(StoreErrorKind.NOT_SQLITE, path)
    return header[18:20] == b"\x02\x02"  # the file format versions of WAL mode


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


def _uri(path: Path, how: str) -> str:
    # Bytes, so that a path that is not valid UTF-8 (a surrogate-escaped name) still makes a URI.
    return f"file:{quote(os.fsencode(path.resolve()))}?mode=ro&{how}"


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    """Return what changes when a file is written or replaced (blocking); None when it cannot be looked at."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def _store_uri(path: Path) -> tuple[str, tuple[int, int, int] | None]:
    """Check what is at `path` and return the URI to attach it by, so that SQLite makes no file in its folder.

    With it, for a store read as `immutable`, the file's stamp: the read is sound only if it is the same at the end.

    Blocking (it looks at the files): run it in a worker thread.

    openusage keeps its store in WAL mode. A store in rollback-journal mode is read with `mode=ro`, which
    makes no file and waits for a writer's lock. In WAL mode:
    * No `-wal` (or no `-shm` beside it): no connection of the daemon's is open (its last close removes
      both), and the file is read as `immutable`: no WAL, no WAL index and no lock is made. Should the
      daemon start during the read, it writes to its new WAL, which this read does not need, until it
      checkpoints: the file's pages change under the read then, which its stamp tells (read it again).
    * The daemon's `-wal` and `-shm`: `mode=ro`, as one more reader of the WAL index. The only bytes a
      read changes are its read mark in that index, which the WAL protocol asks of every reader: it is
      what makes a checkpoint wait instead of overwriting pages the read still needs. Reading the index
      without writing it (`readonly_shm`) was measured to return torn pages ("database disk image is
      malformed") while the daemon truncates its WAL (tests/core/test_read_only.py).
    """
    if _check_file(path):
        wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
        if not (wal.exists() and shm.exists()):
            return _uri(path, "immutable=1"), _file_stamp(path)
    return _uri(path, "cache=private"), None


async def _written_since(path: Path, stamp: tuple[int, int, int] | None) -> bool:
    """Whether a store read as `immutable` (a stamp taken) was written since its stamp was taken.

    A store that is gone is not said to be written: what was read of it is whole, and a failure is reported as why.
    """
    if stamp is None:
        return False
    now = await asyncio.to_thread(_file_stamp, path)
    return now is not None and now != stamp


async def _require_unwritten(path: Path, stamp: tuple[int, int, int] | None) -> None:
    """Raise StoreChangedError when a store read as `immutable` was written since its stamp was taken."""
    if await _written_since(path, stamp):
        raise StoreChangedError(path)


async def _attach_checked(db: Database, uri: str) -> None:
    """Attach the store as `store` and read the schema page once, detaching again on failure."""
    await run(db, "ATTACH DATABASE ? AS store", (uri,))
    try:
        await run(db, "SELECT 1 FROM store.sqlite_master LIMIT 1")
    except BaseException:
        await run(db, "DETACH DATABASE store")
        raise


def _store_files(path: Path) -> tuple[int, int, datetime | None]:
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
    backup = datetime.fromtimestamp(newest, UTC) if newest is not None else None
    return size(path), size(path.with_name(path.name + "-wal")), backup


def _day(text: str | None) -> date | None:
    """Return a `YYYY-MM-DD` date of the store, or None when there is none or it is no real date."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


_TABLES_SQL = "SELECT name FROM store.sqlite_master WHERE type = 'table'"


async def fetch_watermark(db: Database, tables: set[str]) -> str | None:
    """Return the rollup watermark (`YYYY-MM-DD`), or None without one or without the table."""
    if "daemon_meta" not in tables:
        return None
    row = await one(db, "SELECT value FROM store.daemon_meta WHERE key = 'rollup_daily_watermark'")
    value = row[0] if row else None
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return value
    return None


@asynccontextmanager
async def store_transaction(db: Database, path: Path) -> AsyncIterator[set[str]]:
    """Attach the openusage store at `path` to `db` as `store`, inside one transaction.

    The block gets the names of its tables. The transaction ends and the store is detached when the block ends
    (committing what the block wrote to `db`'s own databases); any SQLite failure, in the block too, becomes a
    StoreError that says why. A store read as `immutable` whose file was written during the block (the daemon
    started and checkpointed) raises StoreChangedError instead, and nothing the block wrote is kept.
    """
    uri, stamp = await asyncio.to_thread(_store_uri, path)
    try:
        await _attach_checked(db, uri)
        try:
            # One read transaction: every figure from one state.
            _begun, names = await run_all(db, [("BEGIN", ()), (_TABLES_SQL, ())])
            tables = {name for (name,) in names}
            _require_tables(tables, path)
            yield tables
            await _require_unwritten(path, stamp)
            await run_all(db, [("COMMIT", ()), ("DETACH DATABASE store", ())])
        except BaseException as err:
            if isinstance(err, asyncio.CancelledError):
                await db.interrupt()  # the statement under way goes on in the connection's thread: stop it
            # A statement the block left unfinished keeps the store busy: ending the transaction and
            # detaching may fail then, and must not hide why the block failed (the caller closes `db`).
            with suppress(sqlite3.Error):
                await run(db, "ROLLBACK")
            with suppress(sqlite3.Error):
                await run(db, "DETACH DATABASE store")
            # Torn pages fail in any way (malformed, a duplicate key): the file's change is the cause.
            if isinstance(err, sqlite3.Error) and await _written_since(path, stamp):
                raise StoreChangedError(path) from err
            raise
    except sqlite3.Error as err:
        # The file may have gone or changed since it was checked (renamed away before SQLite opened it):
        # that cause first, rather than SQLite's "unable to open database file".
        await asyncio.to_thread(_check_file, path)
        raise classify_sqlite_error(err, path) from None


@asynccontextmanager
async def open_store(
    path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> AsyncIterator[tuple[Database, set[str]]]:
    """Return a single look at the store: `store_transaction` on a fresh in-memory connection."""
    try:
        db = await connect(":memory:", busy_timeout)
    except sqlite3.Error as err:
        raise classify_sqlite_error(err, path) from None
    try:
        async with store_transaction(db, path) as tables:
            yield db, tables
    finally:
        await close(db)


async def probe_store(path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> tuple[str, ...]:
    """Check that `path` is a readable openusage store; return the known tables it has."""
    async with open_store(path, busy_timeout) as (_db, tables):
        return tuple(sorted(tables & set(KNOWN_TABLES)))


def _require_tables(tables: set[str], path: Path) -> None:
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise StoreError(StoreErrorKind.NOT_OPENUSAGE, path, "no " + ", ".join(missing) + " table")


@dataclass(frozen=True, slots=True)
class _StoreRead:
    usage: UsageRead
    quotas: dict[str, QuotaSnapshot]
    last_snapshot_at: datetime | None
    watermark: str | None
    tables: set[str]


class StoreReader:
    """Reads the figures of one store; keep one per store, call `refresh` on each poll and `close` at the end.

    The first refresh reads every usage row; later ones read what changed (mirror.py). The reader's connection
    (aiosqlite: a thread of its own) lives from the first refresh to `close`.
    """

    def __init__(self, path: Path, options: ReadOptions | None = None) -> None:
        """Prepare a reader of the store at `path`; nothing is read until `refresh`."""
        self.path = path
        self.options = options or ReadOptions()
        options = self.options
        self._mirror = UsageMirror(
            options.provider_links, options.check_period, options.recent_rows, options.check_block_rows
        )
        self._snapshots = SnapshotMemo()  # the limit snapshots parsed at the last refresh
        self._db: Database | None = None
        self._cache_in_use = False
        self._opened_identity = ""  # the store file's identity when the cache file was opened
        self._read_identity = ""  # the store file's identity at the last read
        self._closed = False
        self._lock = asyncio.Lock()

    @property
    def hook_spool(self) -> Path:
        """Return the daemon's hook spool folder beside the store."""
        return self.options.hook_spool or self.path.parent / HOOK_SPOOL_DIR

    @property
    def telemetry_spool(self) -> Path:
        """Return the daemon's telemetry spool folder beside the store."""
        return self.options.telemetry_spool or self.path.parent / TELEMETRY_SPOOL_DIR

    async def close(self) -> None:
        """Close the mirror once no refresh runs.

        A cache file keeps the mirror and its sums for the next start; without one SQLite deletes its file. A
        refresh that still comes (one that began as its owner stopped) reads afresh and closes again at its end:
        a closed reader holds no connection and no thread.
        """
        async with self._lock:
            self._closed = True
            await self._let_go()

    async def _let_go(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await asyncio.shield(self._close(db))  # the connection's thread ends, even when this is cancelled
        self._mirror.forget()

    async def _close(self, db: Database) -> None:
        try:
            # Kept only for the store file it was read from: a store replaced while this reader ran is read afresh.
            if self._cache_in_use and await asyncio.to_thread(self._identity) == self._opened_identity:
                await self._mirror.save(db, self._opened_identity)
        except sqlite3.Error:
            _LOGGER.debug("keeping the mirror of %s failed", self.path, exc_info=True)
        finally:
            await close(db)

    def _identity(self) -> str:
        """Return the store file's identity (blocking: it looks at the file)."""
        return cache_identity(self.path, self.options.provider_links)

    async def _open_private(self, identity: str) -> Database:
        """Open the mirror's database: the cache file, taking up what it keeps, else a private temporary file."""
        self._cache_in_use = False
        cache = self.options.cache
        db = await self._open_cache(cache, identity) if cache is not None else None
        if db is None:
            return await connect("", self.options.busy_timeout)
        self._cache_in_use = True
        return db

    async def _open_cache(self, cache: Path, identity: str) -> Database | None:
        """Open the cache file for this reader alone and take up what it keeps; None when another reader has it."""
        for attempt in range(2):
            db = None
            try:
                db = await connect(f"file:{quote(os.fsencode(cache))}", self.options.busy_timeout)
                # Only this reader may use the file (`main`: not the store attached later); another process that
                # reads the same store with the same cache folder gets a private mirror instead.
                await run(db, "PRAGMA main.locking_mode = EXCLUSIVE")
                await run(db, "BEGIN EXCLUSIVE")
                await run(db, "COMMIT")
                self._opened_identity = identity
                await self._mirror.restore(db, identity)
            except BaseException as err:
                if db is not None:
                    await asyncio.shield(close(db))
                if not isinstance(err, sqlite3.Error):
                    raise
                if attempt or "locked" in str(err):
                    _LOGGER.info("not keeping the mirror of %s in %s: %s", self.path, cache, err)
                    return None
                await asyncio.to_thread(remove_cache_file, cache)  # not a database, or a damaged one: made again
            else:
                return db
        return None

    async def _read(self, now: datetime, bounds: WindowBounds) -> _StoreRead:
        """Everything read inside the store's transaction."""
        try:
            return await self._read_once(now, bounds, await asyncio.to_thread(self._identity))
        except StoreChangedError:
            # A stopped daemon's store is read as immutable; a daemon that started and checkpointed during that read
            # changed pages under it. Read again, now through its WAL (a second such failure waits for the next).
            return await self._read_once(now, bounds, await asyncio.to_thread(self._identity))

    async def _read_once(self, now: datetime, bounds: WindowBounds, identity: str) -> _StoreRead:
        db = self._db
        if db is None:
            try:
                db = await self._open_private(identity)
                await run(db, "PRAGMA cache_size = -8192")  # 8 MiB; the OS caches the rest of the file
            except BaseException as err:
                if db is not None:
                    await asyncio.shield(close(db))
                if isinstance(err, sqlite3.Error):
                    raise classify_sqlite_error(err, self.path) from None
                raise
            # No sorter helper threads (`PRAGMA threads`): on two cores they crowd out the event loop.
            self._db = db
        elif identity != self._read_identity:
            self._mirror.forget()  # another file at the store's path (openusage reset it): read it afresh
        self._read_identity = identity
        try:
            async with store_transaction(db, self.path) as tables:
                watermark = await fetch_watermark(db, tables)
                usage = await self._mirror.refresh(db, bounds, now, watermark, tables)
                quotas, last_snapshot_at = await read_quotas(db, now, self._snapshots)
        except BaseException:
            # The mirror's writes were rolled back, so its kept sums no longer match, and the store may
            # still be attached: the next refresh starts afresh on a new private database.
            self._mirror.forget()
            self._db = None
            await asyncio.shield(self._discard(db))
            raise
        return _StoreRead(usage, quotas, last_snapshot_at, watermark, tables)

    async def _discard(self, db: Database) -> None:
        """Close a connection whose mirror no longer matches, and remove its cache file (made again)."""
        await close(db)
        if self._cache_in_use and self.options.cache is not None:
            await asyncio.to_thread(remove_cache_file, self.options.cache)

    def _assemble(self, read: _StoreRead, now: datetime, zone: ZoneInfo) -> Snapshot:
        """Every figure from what was read, with the store's files and spools (blocking: a worker thread)."""
        db_size, wal_size, backup = _store_files(self.path)
        projection = month_forecast(
            read.usage.figures, _spend_history(read.usage.hourly_cost), now, zone, parse_time(read.usage.first_event_at)
        )
        return Snapshot(
            now=now,
            time_zone=zone.key,
            usage=read.usage.figures,
            quotas=read.quotas,
            store=StoreHealth(
                db_size_bytes=db_size,
                wal_size_bytes=wal_size,
                last_event_at=parse_time(read.usage.last_event_at),
                last_snapshot_at=read.last_snapshot_at,
                oldest_raw_day=_day(read.usage.oldest_raw_day),
                rollup_watermark=_day(read.watermark),
                tables=tuple(sorted(read.tables & set(KNOWN_TABLES))),
                corrupt_backup_at=backup,
                rows_left_out=read.usage.rows_left_out,
            ),
            spool=read_spools(self.hook_spool, self.telemetry_spool, now),
            forecast=projection,
            budgets=budget_statuses(self.options.budgets, read.usage.figures, projection),
        )

    async def refresh(self, now: datetime, zone: ZoneInfo) -> Snapshot:
        """Every figure at `now` in `zone`.

        Raises StoreError when the store cannot be read, whatever the cause: a store that breaks the reader's
        expectations in a way no rule foresaw is a store that cannot be read (said in one line; the details go
        to the debug log), never a crash of its caller.
        """
        now = now.astimezone(UTC)
        bounds = WindowBounds.at(now, zone, self.options.active_minutes)
        async with self._lock:
            try:
                read = await self._read(now, bounds)
                return await asyncio.to_thread(self._assemble, read, now, zone)
            except (StoreError, asyncio.CancelledError):
                # A cancelled refresh has stopped SQLite's statement and closed the connection before this: the
                # lock is held until then, so close() never pulls it from under a running read.
                raise
            except Exception as err:
                _LOGGER.debug("reading %s failed", self.path, exc_info=True)
                raise StoreError(StoreErrorKind.UNREADABLE, self.path, f"{type(err).__name__}: {err}") from err
            finally:
                if self._closed:
                    await self._let_go()


@lru_cache(maxsize=2)  # read once an hour: refreshes in between hand in the same history, and get the same object
def _spend_history(hourly: tuple[tuple[str, str, int], ...]) -> SpendHistory:
    """Each provider's hourly spend, as the projection reads it."""
    return spend_history(
        HourlyCost(provider, datetime.fromisoformat(f"{hour}:00:00+00:00"), nano / NANO_USD)
        for provider, hour, nano in hourly
    )


async def read_store(path: Path, now: datetime, zone: ZoneInfo, options: ReadOptions | None = None) -> Snapshot:
    """One refresh of the store at `path` (see StoreReader)."""
    reader = StoreReader(path, options)
    try:
        return await reader.refresh(now, zone)
    finally:
        await reader.close()


__all__ = [
    "KNOWN_TABLES",
    "ReadOptions",
    "StoreError",
    "StoreErrorKind",
    "StoreReader",
    "default_store_path",
    "merge_links",
    "open_store",
    "probe_store",
    "read_store",
    "store_transaction",
]
