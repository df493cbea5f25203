"""The connection layer: a connection cancelled while it opens leaves no thread, its thread gives way, names stay short."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from custom_components.openusage.core.db import CONNECTION_NICENESS, _threads, close, connect, one
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


def test_a_long_name_is_cut_and_told_apart_by_a_hash() -> None:
    first, second = slug("project " + "x" * 80 + " one"), slug("project " + "x" * 80 + " two")
    assert len(first) == len(second) == 64
    assert first[:55] == second[:55] == "project_" + "x" * 47
    assert first != second
    assert slug("Claude Code") == "claude_code"
    assert slug("***") == "unknown"
