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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from .cache import cache_identity, remove_cache_file
from .clock import WindowBounds, parse_time
from .forecast import HourlyCost, budget_statuses, month_forecast
from .mirror import CHECK_BLOCK_ROWS, DEFAULT_CHECK_PERIOD, RECENT_ROWS, UsageMirror
from .models import QuotaSnapshot, Snapshot, StoreHealth
from .quotas import read_quotas
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


def _attach(conn: sqlite3.Connection, path: Path, wal_mode: bool) -> None:
    """Attach the store as `store`, so that SQLite creates, truncates and deletes no file in its folder.

    openusage keeps its store in WAL mode. A store in rollback-journal mode is read with `mode=ro`, which
    makes no file and waits for a writer's lock. In WAL mode:
    * No `-wal` (or no `-shm` beside it): no connection of the daemon's is open (its last close removes
      both), and the file is read as `immutable`: no WAL, no WAL index and no lock is made. Should the
      daemon start during the read, it writes to its new WAL, which this read does not need.
    * The daemon's `-wal` and `-shm`: `mode=ro`, as one more reader of the WAL index. The only bytes a
      read changes are its read mark in that index, which the WAL protocol asks of every reader: it is
      what makes a checkpoint wait instead of overwriting pages the read still needs. Reading the index
      without writing it (`readonly_shm`) was measured to return torn pages ("database disk image is
      malformed") while the daemon truncates its WAL (tests/core/test_read_only.py).
    """
    if wal_mode:
        wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
        how = "cache=private" if wal.exists() and shm.exists() else "immutable=1"
    else:
        how = "cache=private"
    _attach_checked(conn, _uri(path, how))


def _attach_checked(conn: sqlite3.Connection, uri: str) -> None:
    """Attach and read the schema page once, detaching again on failure."""
    conn.execute("ATTACH DATABASE ? AS store", (uri,))
    try:
        conn.execute("SELECT 1 FROM store.sqlite_master LIMIT 1").fetchall()
    except BaseException:
        conn.execute("DETACH DATABASE store")
        raise


def connect_private(database: str = ":memory:", busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> sqlite3.Connection:
    """Return a connection of our own to attach stores to; `""` makes a private temporary file database."""
    conn = sqlite3.connect(database, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    conn.text_factory = _text  # text that is not UTF-8 (a blob in a text column) reads with U+FFFD, not an error
    return conn


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


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


def _fetch_tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM store.sqlite_master WHERE type = 'table'")}


def fetch_watermark(conn: sqlite3.Connection, tables: set[str]) -> str | None:
    """Return the rollup watermark (`YYYY-MM-DD`), or None without one or without the table."""
    if "daemon_meta" not in tables:
        return None
    row = conn.execute("SELECT value FROM store.daemon_meta WHERE key = 'rollup_daily_watermark'").fetchone()
    value = row[0] if row else None
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return value
    return None


@contextmanager
def store_transaction(conn: sqlite3.Connection, path: Path) -> Iterator[set[str]]:
    """Attach the openusage store at `path` to `conn` as `store`, inside one transaction.

    The block gets the names of its tables. The transaction ends and the store is detached when the block ends
    (committing what the block wrote to `conn`'s own databases); any SQLite failure, in the block too, becomes a
    StoreError that says why. Blocking: run it in a worker thread.
    """
    wal_mode = _check_file(path)
    try:
        _attach(conn, path, wal_mode)
        try:
            conn.execute("BEGIN")  # one read transaction: every figure from one state
            tables = _fetch_tables(conn)
            _require_tables(tables, path)
            yield tables
            conn.execute("COMMIT")
        except BaseException:
            # A statement the block left unfinished keeps the store busy: ending the transaction and
            # detaching may fail then, and must not hide why the block failed (the caller closes `conn`).
            with suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.execute("DETACH DATABASE store")
            raise
        conn.execute("DETACH DATABASE store")
    except sqlite3.Error as err:
        # The file may have gone or changed since it was checked (renamed away before SQLite opened it):
        # that cause first, rather than SQLite's "unable to open database file".
        _check_file(path)
        raise classify_sqlite_error(err, path) from None


@contextmanager
def open_store(path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Iterator[tuple[sqlite3.Connection, set[str]]]:
    """Return a single look at the store: `store_transaction` on a fresh in-memory connection. Blocking."""
    conn = connect_private(busy_timeout=busy_timeout)
    try:
        with store_transaction(conn, path) as tables:
            yield conn, tables
    finally:
        conn.close()


def _probe(path: Path, busy_timeout: float) -> tuple[str, ...]:
    with open_store(path, busy_timeout) as (_conn, tables):
        return tuple(sorted(tables & set(KNOWN_TABLES)))


async def probe_store(path: Path, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> tuple[str, ...]:
    """Check that `path` is a readable openusage store; return the known tables it has."""
    return await asyncio.to_thread(_probe, path, busy_timeout)


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

    The first refresh reads every usage row; later ones read what changed (mirror.py).
    """

    def __init__(self, path: Path, options: ReadOptions | None = None) -> None:
        """Prepare a reader of the store at `path`; nothing is read until `refresh`."""
        self.path = path
        self.options = options or ReadOptions()
        options = self.options
        self._mirror = UsageMirror(
            options.provider_links, options.check_period, options.recent_rows, options.check_block_rows
        )
        self._conn: sqlite3.Connection | None = None
        self._cache_in_use = False
        self._opened_identity = ""  # the store file's identity when the cache file was opened
        self._read_identity = ""  # the store file's identity at the last read
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
        """Close the mirror once no refresh runs; a later refresh starts afresh.

        A cache file keeps the mirror and its sums for the next start; without one SQLite deletes its file.
        """
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                await asyncio.to_thread(self._close, conn)
            self._mirror.forget()

    def _close(self, conn: sqlite3.Connection) -> None:
        try:
            # Kept only for the store file it was read from: a store replaced while this reader ran is read afresh.
            if self._cache_in_use and self._identity == self._opened_identity:
                self._mirror.save(conn, self._identity)
        except sqlite3.Error:
            _LOGGER.debug("keeping the mirror of %s failed", self.path, exc_info=True)
        finally:
            conn.close()

    @property
    def _identity(self) -> str:
        return cache_identity(self.path, self.options.provider_links)

    def _open_private(self) -> sqlite3.Connection:
        """Open the mirror's database: the cache file, taking up what it keeps, else a private temporary file."""
        self._cache_in_use = False
        cache = self.options.cache
        conn = self._open_cache(cache) if cache is not None else None
        if conn is None:
            return connect_private("", self.options.busy_timeout)
        self._cache_in_use = True
        return conn

    def _open_cache(self, cache: Path) -> sqlite3.Connection | None:
        """Open the cache file for this reader alone and take up what it keeps; None when another reader has it."""
        for attempt in range(2):
            conn = None
            try:
                conn = connect_private(f"file:{quote(os.fsencode(cache))}", self.options.busy_timeout)
                # Only this reader may use the file (`main`: not the store attached later); another process that
                # reads the same store with the same cache folder gets a private mirror instead.
                conn.execute("PRAGMA main.locking_mode = EXCLUSIVE")
                conn.execute("BEGIN EXCLUSIVE")
                conn.execute("COMMIT")
                self._opened_identity = self._identity
                self._mirror.restore(conn, self._opened_identity)
            except sqlite3.Error as err:
                if conn is not None:
                    conn.close()
                if attempt or "locked" in str(err):
                    _LOGGER.info("not keeping the mirror of %s in %s: %s", self.path, cache, err)
                    return None
                remove_cache_file(cache)  # not a database, or a damaged one: made again
            else:
                return conn
        return None

    def _read(self, now: datetime, bounds: WindowBounds) -> _StoreRead:
        """Everything read inside the store's transaction (blocking, in a worker thread)."""
        wal = self.path.with_name(self.path.name + "-wal")
        had_wal = wal.exists()
        try:
            return self._read_once(now, bounds)
        except StoreError as err:
            # A stopped daemon's store is read as immutable; a daemon that started and checkpointed during
            # that read changed pages under it. Read again, now through its WAL.
            if err.kind is StoreErrorKind.CORRUPT and not had_wal and wal.exists():
                return self._read_once(now, bounds)
            raise

    def _read_once(self, now: datetime, bounds: WindowBounds) -> _StoreRead:
        conn = self._conn
        identity = self._identity
        if conn is None:
            conn = self._conn = self._open_private()
            conn.execute("PRAGMA cache_size = -8192")  # 8 MiB; the OS caches the rest of the file
            # No sorter helper threads (`PRAGMA threads`): on two cores they crowd out the event loop.
        elif identity != self._read_identity:
            self._mirror.forget()  # another file at the store's path (openusage reset it): read it afresh
        self._read_identity = identity
        try:
            with store_transaction(conn, self.path) as tables:
                watermark = fetch_watermark(conn, tables)
                usage = self._mirror.refresh(conn, bounds, now, watermark, tables)
                quotas, last_snapshot_at = read_quotas(conn, now)
        except BaseException:
            # The mirror's writes were rolled back, so its kept sums no longer match, and the store may
            # still be attached: the next refresh starts afresh on a new private database.
            self._mirror.forget()
            self._conn = None
            conn.close()
            if self._cache_in_use and self.options.cache is not None:
                remove_cache_file(self.options.cache)  # its rows may not match what it said; made again
            raise
        return _StoreRead(usage, quotas, last_snapshot_at, watermark, tables)

    def _snapshot(self, now: datetime, zone: ZoneInfo, bounds: WindowBounds) -> Snapshot:
        """Every figure (blocking).

        One worker thread does it all: on a two-core machine more threads would take turns with the event loop
        for the cores and for the GIL.
        """
        read = self._read(now, bounds)
        db_size, wal_size, backup = _store_files(self.path)
        projection = month_forecast(
            read.usage.figures, _hourly_costs(read.usage.hourly_cost), now, zone, parse_time(read.usage.first_event_at)
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
            work = asyncio.ensure_future(asyncio.to_thread(self._snapshot, now, zone, bounds))
            try:
                await asyncio.wait([work])  # a cancelled wait leaves `work` running (no shield to report it)
            except asyncio.CancelledError:
                # A thread cannot be stopped from outside: SQLite is asked to stop its statement, and the
                # lock is held until the thread has let go of the connection, so close() never pulls it
                # from under a running read (an unload during a long first read).
                if self._conn is not None:
                    self._conn.interrupt()
                await asyncio.wait([work])
                if not work.cancelled():
                    work.exception()  # taken, so that the stopped read's failure is not reported as lost
                raise
            try:
                return work.result()
            except StoreError:
                raise
            except Exception as err:
                _LOGGER.debug("reading %s failed", self.path, exc_info=True)
                raise StoreError(StoreErrorKind.UNREADABLE, self.path, f"{type(err).__name__}: {err}") from err


@lru_cache(maxsize=2)  # read once an hour: refreshes in between hand in the same history
def _hourly_costs(hourly: tuple[tuple[str, str, int], ...]) -> tuple[HourlyCost, ...]:
    """Each provider's hourly spend, as the projection reads it."""
    return tuple(
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
