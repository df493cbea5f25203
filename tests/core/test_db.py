"""The connection layer.

A connection cancelled while it opens leaves no thread, its thread gives way, several statements go in one trip,
a stream ends its statement, names stay short.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from contextlib import aclosing
from pathlib import Path

import pytest

from custom_components.openusage.core.db import (
    CONNECTION_NICENESS,
    Database,
    _threads,
    close,
    connect,
    one,
    run,
    run_all,
    stream,
)
from custom_components.openusage.core.naming import slug


async def test_a_connection_cancelled_while_it_opens_is_closed(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    opening = asyncio.ensure_future(connect(f"file:{tmp_path / 'any.db'}?mode=memory", 1.0))
    await asyncio.sleep(0)  # it waits for its thread now
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    for _ in range(100):  # the close runs on, shielded from the cancel
        if set(threading.enumerate()) <= before:
            break
        await asyncio.sleep(0.01)
    assert set(threading.enumerate()) <= before


async def test_the_connection_thread_runs_below_the_event_loop(tmp_path: Path) -> None:
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    db = await connect(f"file:{tmp_path / 'any.db'}?mode=memory", 1.0)
    try:
        assert await one(db, "SELECT 1") == (1,)
        connection_thread = _threads[db].native_id
        assert connection_thread is not None
        assert connection_thread != threading.get_native_id()
        assert os.getpriority(os.PRIO_PROCESS, connection_thread) == min(19, loop_nice + CONNECTION_NICENESS)
    finally:
        await close(db)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_nice  # only that thread's


async def _numbers(tmp_path: Path, count: int) -> Database:
    db = await connect(f"file:{tmp_path / 'numbers.db'}", 1.0)
    await run(db, "CREATE TABLE numbers (n INTEGER)")
    numbers = (
        "WITH RECURSIVE c(n) AS (SELECT 1 WHERE :top > 0 UNION ALL SELECT n + 1 FROM c WHERE n < :top) SELECT n FROM c"
    )
    await run(db, f"INSERT INTO numbers {numbers}", {"top": count})
    return db


async def test_statements_run_in_one_trip_in_order_and_stop_at_a_failure(tmp_path: Path) -> None:
    db = await _numbers(tmp_path, 10)
    trips: list[object] = []
    call = db.call

    async def counting(step: object) -> object:
        trips.append(step)
        return await call(step)  # type: ignore[arg-type]

    try:
        db.call = counting  # type: ignore[method-assign]
        rows = await run_all(
            db,
            [
                ("DELETE FROM numbers WHERE n > :top", {"top": 3}),
                ("SELECT n FROM numbers ORDER BY n", ()),
                ("SELECT count(*) FROM numbers WHERE n > ?", (1,)),
            ],
        )
        assert rows == [[], [(1,), (2,), (3,)], [(2,)]]
        assert len(trips) == 1
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            await run_all(db, [("DELETE FROM numbers WHERE n = 1", ()), ("SELECT * FROM nowhere", ()),
                               ("DELETE FROM numbers", ())])  # fmt: skip
        assert await run(db, "SELECT n FROM numbers ORDER BY n") == [
            (2,),
            (3,),
        ]  # the one before ran, not the one after
    finally:
        del db.call
        await close(db)


@pytest.mark.parametrize("count", [0, 5, 64, 150])
async def test_a_stream_gives_every_row_in_chunks_and_ends_its_statement(tmp_path: Path, count: int) -> None:
    db = await _numbers(tmp_path, count)
    try:
        chunks = [rows async for rows in stream(db, "SELECT n FROM numbers ORDER BY n", size=64)]
        assert [len(rows) for rows in chunks] == [64] * (count // 64) + ([count % 64] if count % 64 else [])
        assert [n for rows in chunks for (n,) in rows] == list(range(1, count + 1))
        async with aclosing(stream(db, "SELECT n FROM numbers ORDER BY n", size=64)) as broken_off:
            async for _rows in broken_off:
                break
        # No statement is left reading the table: it can go.
        await run(db, "DROP TABLE numbers")
    finally:
        await close(db)


def test_a_long_name_is_cut_and_told_apart_by_a_hash() -> None:
    first, second = slug("project " + "x" * 80 + " one"), slug("project " + "x" * 80 + " two")
    assert len(first) == len(second) == 64
    assert first[:55] == second[:55] == "project_" + "x" * 47
    assert first != second
    assert slug("Claude Code") == "claude_code"
    assert slug("***") == "unknown"
