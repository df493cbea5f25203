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
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import suppress
from typing import Any, TypeAlias

import aiosqlite

Database: TypeAlias = aiosqlite.Connection
Params: TypeAlias = Sequence[Any] | Mapping[str, Any]
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

    db = aiosqlite.Connection(connector, iter_chunk_size=STREAM_ROWS)
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
    return await db


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


async def one(db: Database, sql: str, params: Params = ()) -> Any:
    """Return the first row of a statement's result, or None."""
    rows = await run(db, sql, params)
    return rows[0] if rows else None


async def stream(db: Database, sql: str, params: Params = (), size: int = STREAM_ROWS) -> AsyncGenerator[list[Any]]:
    """Return a statement's rows in chunks, so that a large result is never held whole."""
    cursor = await db.execute(sql, params)
    try:
        while rows := list(await cursor.fetchmany(size)):
            yield rows
    finally:
        await cursor.close()
