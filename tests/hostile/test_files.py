"""Files in the state folder that are not what their names say.

Pipes, links, folders, odd names and unreadable records. Nothing blocks, nothing crashes, and only real records count.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from custom_components.openusage.core.models import Window
from custom_components.openusage.core.reader import ReadOptions, StoreError, StoreErrorKind, read_store
from custom_components.openusage.core.spool import read_spools
from tests.constants import NOW
from tests.storebuilder import message, store
from tests.unprivileged import run_unprivileged

NS = int(NOW.timestamp()) * 10**9


async def _read(db: Path):
    # A hang would fail the test instead of stopping the suite.
    return await asyncio.wait_for(read_store(db, NOW, ZoneInfo("UTC"), ReadOptions()), timeout=20)


def _store(folder: Path) -> Path:
    db = folder / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="m", input_tokens=5)
    (folder / "hook-spool").mkdir()
    (folder / "telemetry-spool").mkdir()
    return db


async def test_pipes_named_like_records_neither_hang_nor_count(tmp_path: Path) -> None:
    db = _store(tmp_path)
    spool, hook = tmp_path / "telemetry-spool", tmp_path / "hook-spool"
    os.mkfifo(spool / f"{NS - 90 * 10**9:019d}_fifo.jsonl")  # opening it for reading would block forever
    os.mkfifo(tmp_path / "elsewhere")
    (spool / f"{NS - 80 * 10**9:019d}_link.jsonl").symlink_to(tmp_path / "elsewhere")
    (spool / f"{NS - 10 * 10**9:019d}_real.jsonl").write_text(json.dumps({"spool_id": "r", "attempt": 1}) + "\n")
    os.mkfifo(hook / "pipe.json")
    (hook / "folder.json").mkdir()
    (hook / "dangling.json").symlink_to(tmp_path / "nowhere")
    (hook / "real.json").write_text("{}")
    snapshot = await _read(db)
    assert snapshot.spool.spool_failed == 1
    assert snapshot.spool.spool_pending == 0
    assert snapshot.spool.spool_oldest_age_seconds == pytest.approx(10.0)  # from the real record alone
    assert snapshot.spool.hook_spool_files == 1  # the real file; not the pipe, the folder or the dangling link


async def test_a_store_that_is_a_pipe_is_an_error_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "telemetry.db"
    os.mkfifo(fifo)
    with pytest.raises(StoreError) as caught:
        await _read(fifo)
    assert caught.value.kind is StoreErrorKind.NOT_A_FILE
    link = tmp_path / "link.db"
    link.symlink_to(fifo)
    with pytest.raises(StoreError) as caught:
        await _read(link)
    assert caught.value.kind is StoreErrorKind.NOT_A_FILE


async def test_a_record_name_of_nineteen_digits_that_are_not_ascii(tmp_path: Path) -> None:
    db = _store(tmp_path)
    spool = tmp_path / "telemetry-spool"
    (spool / ("\u00b9" * 19 + "_sup.jsonl")).write_text(json.dumps({"spool_id": "s"}) + "\n")  # ¹: a digit, not 0-9
    (spool / ("\u0661" * 19 + "_arabic.jsonl")).write_text(json.dumps({"spool_id": "a"}) + "\n")
    snapshot = await _read(db)
    assert snapshot.spool.spool_pending == 2
    assert snapshot.spool.spool_oldest_age_seconds is None  # no name says when it was made


async def test_a_store_path_that_is_not_utf8(tmp_path: Path) -> None:
    folder = tmp_path / os.fsdecode(b"state-\xff")
    folder.mkdir()
    db = _store(folder)
    snapshot = await _read(db)
    assert snapshot.usage.totals[Window.ALL].input_tokens == 5


@pytest.mark.filterwarnings("ignore:This process .* fork:DeprecationWarning")
def test_records_another_user_may_not_read_count_nowhere(open_dir: Path) -> None:
    spool = open_dir / "telemetry-spool"
    spool.mkdir()
    (open_dir / "hook-spool").mkdir()
    old = spool / f"{NS - 500 * 10**9:019d}_secret.jsonl"
    old.write_text(json.dumps({"spool_id": "x"}) + "\n")
    old.chmod(0o600)  # the daemon's own, root's here
    (spool / f"{NS - 20 * 10**9:019d}_open.jsonl").write_text(json.dumps({"spool_id": "o"}) + "\n")
    for path in (spool, open_dir / "hook-spool", spool / f"{NS - 20 * 10**9:019d}_open.jsonl"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    health = json.loads(run_unprivileged(
        lambda: json.dumps(asdict(read_spools(open_dir / "hook-spool", spool, NOW)))
    ))  # fmt: skip
    assert health["spool_pending"] == 1
    assert health["spool_oldest_age_seconds"] == pytest.approx(20.0)  # not the unreadable record's 500 s
