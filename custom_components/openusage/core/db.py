"""How the reader talks to SQLite: through aiosqlite, one long-lived connection thread per store.

Every statement runs on the connection's own thread, so the event loop never waits on SQLite; rows come
back to the loop whole (`run`, `one`) or in chunks (`stream`), and the Python work between statements is
small, or done chunk by chunk. A cursor is always finished on the connection's thread: one dropped on the
event loop's would make the loop wait for the connection's lock.

The connection's thread runs at a lower CPU priority than the rest of the process. Linux often wakes the event
loop on the very CPU that thread is busy on, and the loop then waits there for its turn: 2 to 4 ms a refresh on two
cores, while a statement ran. At a lower priority the statement gives way to the loop at once.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from typing import Any, TypeAlias, TypeVar, cast

import aiosqlite

Params: TypeAlias = Sequence[Any] | Mapping[str, Any]
_T = TypeVar("_T")


class Database(aiosqlite.Connection):
    """aiosqlite's connection, which can also run a step of several statements in one trip to its thread.

    A trip costs about 85 µs of CPU (a queue, a wake-up of each thread): fifty of them were up to a fifth of a
    poll's CPU. `_execute` is aiosqlite's own way to queue a call (its version is pinned in the manifest).
    """

    async def call(self, step: Callable[[sqlite3.Connection], _T]) -> _T:
        """Return what `step` returns, run with the SQLite connection on the connection's thread."""
        queue: Callable[..., Awaitable[Any]] = self._execute  # untyped in aiosqlite
        return cast("_T", await queue(step, self._conn))


STREAM_ROWS = 64  # rows a stream hands over at once: a millisecond or two of folding each
CONNECTION_NICENESS = 10  # added to the connection thread's nice value: below the event loop's


# Each connection's thread, to see it end at `close` (aiosqlite's close returns just before it does).
_threads: weakref.WeakKeyDictionary[Database, threading.Thread] = weakref.WeakKeyDictionary()


async def connect(database: str, busy_timeout: float) -> Database:
    """Open a connection (a URI) on a thread of its own; text that is not UTF-8 reads with U+FFFD, not an error."""
    threads: list[threading.Thread] = []

    def connector() -> sqlite3.Connection:  # runs on the connection's thread
        threads.append(threading.current_thread())
        _give_way_to_the_loop()
        conn = sqlite3.connect(database, uri=True, timeout=busy_timeout, isolation_level=None)
        conn.text_factory = _text
        return conn

    db = Database(connector, iter_chunk_size=STREAM_ROWS)
    opening = asyncio.ensure_future(_opened(db))
    try:
        await asyncio.shield(opening)
    except asyncio.CancelledError:
        # The connection is made all the same, on a thread of its own: close it before giving up.
        await asyncio.shield(_close_opened(opening, threads))
        raise
    _threads[db] = threads[0]
    return db


def _give_way_to_the_loop() -> None:
    """Lower the calling thread's CPU priority: on Linux each thread has a nice value of its own (elsewhere a no-op)."""
    if sys.platform == "linux":
        with suppress(OSError):  # a sandbox may forbid it: the figures are the same, only the loop waits more
            thread = threading.get_native_id()
            os.setpriority(
                os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + CONNECTION_NICENESS)
            )


async def _opened(db: Database) -> Database:
    await db
    return db


async def _close_opened(opening: asyncio.Future[Database], threads: list[threading.Thread]) -> None:
    with suppress(sqlite3.Error):
        db = await opening
        _threads[db] = threads[0]
        await close(db)


async def close(db: Database) -> None:
    """Close a connection once its queued statements are done, and wait for its thread to end."""
    await db.close()
    thread = _threads.pop(db, None)
    if thread is not None:
        # Its last step is done: it returns at once (no worker thread for it: none may be left at shutdown).
        thread.join(1.0)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


async def run(db: Database, sql: str, params: Params = ()) -> list[Any]:
    """Run one statement to its end and return its rows."""
    return list(await db.execute_fetchall(sql, params))


async def run_all(db: Database, statements: Iterable[tuple[str, Params]]) -> list[list[Any]]:
    """Run statements one after the other in one trip to the connection's thread; return each one's rows."""
    steps = list(statements)
    return await db.call(lambda conn: [conn.execute(sql, params).fetchall() for sql, params in steps])


async def one(db: Database, sql: str, params: Params = ()) -> Any:
    """Return the first row of a statement's result, or None."""
    rows = await run(db, sql, params)
    return rows[0] if rows else None


async def stream(db: Database, sql: str, params: Params = (), size: int = STREAM_ROWS) -> AsyncGenerator[list[Any]]:
    """Return a statement's rows in chunks, so that a large result is never held whole.

    The statement starts with its first chunk, in one trip: a result smaller than a chunk (a refresh's usual one)
    ends there.
    """

    def start(conn: sqlite3.Connection) -> tuple[list[Any], sqlite3.Cursor | None]:
        cursor = conn.execute(sql, params)
        rows = cursor.fetchmany(size)
        if len(rows) < size:
            cursor.close()
            return rows, None
        return rows, cursor

    rows, cursor = await db.call(start)
    if cursor is None:
        if rows:
            yield rows
        return
    try:
        while rows:
            yield rows
            rows = await db.call(lambda _conn: cursor.fetchmany(size))
    finally:
        await db.call(lambda _conn: cursor.close())
