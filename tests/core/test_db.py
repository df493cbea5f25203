"""The connection layer: a connection given up while it opens leaves no thread, and long names stay short."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from custom_components.openusage.core.db import connect
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


def test_a_long_name_is_cut_and_told_apart_by_a_hash() -> None:
    first, second = slug("project " + "x" * 80 + " one"), slug("project " + "x" * 80 + " two")
    assert len(first) == len(second) == 64
    assert first[:55] == second[:55] == "project_" + "x" * 47
    assert first != second
    assert slug("Claude Code") == "claude_code"
    assert slug("***") == "unknown"
