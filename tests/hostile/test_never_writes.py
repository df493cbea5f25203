"""A read creates, truncates and writes no file in the openusage state folder, in any state the daemon leaves it in.

Checked on the system calls themselves (strace) and as another user who may write there.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from custom_components.openusage.core.models import Window
from custom_components.openusage.core.reader import StoreReader
from tests.constants import NOW
from tests.storebuilder import message, store
from tests.unprivileged import run_unprivileged

REPO = Path(__file__).parents[2]
STRACE = shutil.which("strace")  # scripts/setup-system installs it
_WRITES = ("write", "pwrite64", "pwritev", "pwritev2", "ftruncate", "fallocate")
_CHANGES = ("truncate", "unlink", "unlinkat", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir",
            "link", "linkat", "symlink", "symlinkat", "chmod", "fchmodat", "chown", "fchownat", "utimensat")  # fmt: skip


@pytest.fixture
def folder() -> Iterator[Path]:
    """Return a state folder anybody may write in: a reader that could create files there must not."""
    path = Path(tempfile.mkdtemp(prefix="openusage-state-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


def _stopped_daemon_store(folder: Path) -> Path:
    """Return a store in WAL mode whose daemon stopped cleanly: no -wal, no -shm."""
    db = folder / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="a", input_tokens=5)
    assert sorted(p.name for p in folder.iterdir()) == ["telemetry.db"]
    return db


def _running_daemon_store(folder: Path) -> Path:
    """Return a store whose daemon runs: rows in the WAL not yet checkpointed, and its shared-memory index."""
    db = _stopped_daemon_store(folder)
    subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, sqlite3
        conn = sqlite3.connect({str(db)!r})
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("UPDATE usage_events SET input_tokens = 7")
        conn.commit()
        os._exit(0)  # as a running daemon: the WAL and its index stay
    """)], check=True)  # fmt: skip
    assert {p.name for p in folder.iterdir()} == {"telemetry.db", "telemetry.db-wal", "telemetry.db-shm"}
    return db


def _fingerprint(folder: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every file.

    Size, owner, mtime and content; the daemon's WAL index (-shm) by size and owner alone, since a reader of a live
    WAL writes its read mark there, as the WAL protocol asks (reader.py).
    """
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        if path.name.endswith("-shm"):
            found[path.name] = (info.st_size, info.st_uid, 0, "")
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        found[path.name] = (info.st_size, info.st_uid, info.st_mtime_ns, digest)
    return found


def _read_in_a_child(db: Path) -> list[str]:
    """`openusage-ha snapshot` under strace: the system calls that touched the folder."""
    assert STRACE is not None
    trace = Path(tempfile.mkdtemp()) / "trace"
    command = [sys.executable, "-m", "custom_components.openusage.core.cli", "snapshot", "--db", str(db)]
    result = subprocess.run([STRACE, "-f", "-y", "-qq", "-o", str(trace), "-e",
                             f"trace=openat,open,creat,{','.join(_WRITES + _CHANGES)}", *command],
                            capture_output=True, text=True, cwd=REPO, check=False, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"input_tokens"' in result.stdout
    return [line for line in trace.read_text().splitlines() if str(db.parent) in line]


def _assert_no_write(calls: list[str], existed: set[str]) -> None:
    for call in calls:
        name = call.split("(", 1)[0].split()[-1]
        if name in _WRITES and "-shm>" in call:
            continue  # a read mark in the daemon's WAL index, as the WAL protocol asks of every reader
        assert name not in _WRITES + _CHANGES, call
        if name in ("openat", "open", "creat"):
            assert "O_TRUNC" not in call, call
            path = re.search(r'"([^"]+)"', call)
            assert path is not None
            if "O_CREAT" in call or "O_WRONLY" in call:
                assert Path(path.group(1)).name in existed, call  # opened, never created


@pytest.mark.parametrize("daemon", ["stopped", "running"])
def test_system_calls_of_a_read_change_nothing(folder: Path, daemon: str) -> None:
    db = _stopped_daemon_store(folder) if daemon == "stopped" else _running_daemon_store(folder)
    before = _fingerprint(folder)
    calls = _read_in_a_child(db)
    assert any("telemetry.db" in c for c in calls)  # the trace saw the reads
    _assert_no_write(calls, set(before))
    assert _fingerprint(folder) == before


@pytest.mark.filterwarnings("ignore:This process .* fork:DeprecationWarning")
@pytest.mark.parametrize("daemon", ["stopped", "running"])
def test_another_user_who_may_write_the_folder_leaves_no_file(folder: Path, daemon: str) -> None:
    """The reader runs as another user than the daemon (Home Assistant's own user).

    SQLite would leave -wal and -shm files of that user's, which the daemon then cannot write.
    """
    db = _stopped_daemon_store(folder) if daemon == "stopped" else _running_daemon_store(folder)
    before = _fingerprint(folder)

    async def refreshes() -> str:
        reader = StoreReader(db)
        try:
            for _ in range(5):
                snapshot = await reader.refresh(NOW, ZoneInfo("UTC"))
        finally:
            await reader.close()
        return str(snapshot.usage.totals[Window.ALL].input_tokens)

    tokens = run_unprivileged(lambda: asyncio.run(refreshes()))
    assert tokens == ("5" if daemon == "stopped" else "7")  # the WAL's rows are read
    assert _fingerprint(folder) == before
    # The daemon goes on writing afterwards.
    conn = sqlite3.connect(db)
    conn.execute("UPDATE usage_events SET input_tokens = 9")
    conn.commit()
    conn.close()
    assert os.stat(db).st_uid == 0
