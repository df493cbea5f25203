"""Backlog of the daemon's two spool folders (metrics.md §5, openusage-store.md §5.2–§5.4).

Only names, sizes, mtimes and each telemetry-spool record's first line are read; nothing is changed.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from .models import SpoolHealth

HOOK_SPOOL_DIR = "hook-spool"
TELEMETRY_SPOOL_DIR = "telemetry-spool"
_NS_PREFIX_DIGITS = 19
# A spool record is one JSON line; a longer first line than this is not one the daemon wrote.
_MAX_RECORD_BYTES = 4 * 1024 * 1024


def _entries(folder: Path) -> list[os.DirEntry[str]] | None:
    """Return the folder's entries; [] when it does not exist, None when it exists but cannot be read."""
    try:
        with os.scandir(folder) as it:
            return list(it)
    except FileNotFoundError:
        return []
    except OSError:
        return None


def read_hook_spool(folder: Path, now: datetime) -> SpoolHealth:
    """Count the hook spool's backlog."""
    entries = _entries(folder)
    if entries is None:
        return SpoolHealth(hook_spool_files=None, hook_spool_tmp_files=None)
    files = 0
    tmp_files = 0
    oldest_mtime: float | None = None
    for entry in entries:
        if entry.name.endswith(".json.tmp"):
            tmp_files += 1
            continue
        if not entry.name.endswith(".json"):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # consumed by the daemon between listing and stat
        if not stat.S_ISREG(info.st_mode):
            continue  # the daemon writes files: not folders, links or pipes
        mtime = info.st_mtime
        files += 1
        oldest_mtime = mtime if oldest_mtime is None else min(oldest_mtime, mtime)
    return SpoolHealth(
        hook_spool_files=files,
        hook_spool_tmp_files=tmp_files,
        hook_spool_oldest_age_seconds=(now.timestamp() - oldest_mtime) if oldest_mtime is not None else None,
    )


def _first_line(path: str) -> bytes | None:
    """Return the first line of a regular file; None for anything else.

    The file is opened without blocking and without following a link, so a FIFO (or a link to one) named like a
    record cannot hang the reader.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.readline(_MAX_RECORD_BYTES)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_telemetry_spool(folder: Path, now: datetime) -> SpoolHealth:
    """Count the telemetry spool's backlog and failures."""
    entries = _entries(folder)
    if entries is None:
        return SpoolHealth(spool_pending=None, spool_failed=None, spool_malformed=None)
    pending = failed = malformed = 0
    oldest_ns: int | None = None
    newest_failed: tuple[str, str] | None = None
    # Names start with the creation time in nanoseconds, zero-padded: name order is time order.
    for entry in sorted(entries, key=lambda e: e.name):
        name = entry.name
        if not name.endswith(".jsonl"):
            continue
        line = _first_line(entry.path)
        if line is None:
            continue  # not a file we may read, or removed by the daemon while we looked
        prefix = name[:_NS_PREFIX_DIGITS]
        if len(prefix) == _NS_PREFIX_DIGITS and prefix.isascii() and prefix.isdigit():
            created = int(prefix)
            oldest_ns = created if oldest_ns is None else min(oldest_ns, created)
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("spool_id"), str) or not record["spool_id"]:
            malformed += 1
            continue
        attempt = record.get("attempt", 0)
        if isinstance(attempt, int) and not isinstance(attempt, bool) and attempt >= 1:
            failed += 1
            error = record.get("last_error")
            newest_failed = (name, error if isinstance(error, str) else "")
        else:
            pending += 1
    return SpoolHealth(
        spool_pending=pending,
        spool_failed=failed,
        spool_malformed=malformed,
        spool_oldest_age_seconds=(now.timestamp() - oldest_ns / 1e9) if oldest_ns is not None else None,
        spool_last_error=newest_failed[1] if newest_failed else None,
    )


def read_spools(hook_spool: Path, telemetry_spool: Path, now: datetime) -> SpoolHealth:
    """Both spool folders' figures in one SpoolHealth (blocking: run it off the event loop)."""
    hook = read_hook_spool(hook_spool, now)
    telemetry = read_telemetry_spool(telemetry_spool, now)
    return replace(
        telemetry,
        hook_spool_files=hook.hook_spool_files,
        hook_spool_oldest_age_seconds=hook.hook_spool_oldest_age_seconds,
        hook_spool_tmp_files=hook.hook_spool_tmp_files,
    )
