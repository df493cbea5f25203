"""Where the reader keeps its mirror between runs, and what a kept mirror must match to be taken up.

The cache is never inside openusage's state folder: the reader writes nothing there.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from .version import VERSION

# The shape of what a cache file holds (the mirror's tables and the kept sums); a change makes old files unused.
CACHE_FORMAT = 4
_SUFFIXES = ("", "-journal", "-wal", "-shm")


class CacheLocationError(ValueError):
    """The cache folder cannot be used; the message says why."""


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return `$XDG_CACHE_HOME/openusage-ha`, else `~/.cache/openusage-ha`."""
    env = os.environ if environ is None else environ
    cache_home = env.get("XDG_CACHE_HOME", "").strip()
    base = Path(cache_home) if cache_home else Path(env.get("HOME") or Path.home()) / ".cache"
    return base / "openusage-ha"


def cache_file_in(folder: Path, store: Path, name: str | None = None) -> Path:
    """Return the cache file of the store at `store` in `folder`, which is made if needed (for this user only).

    The file is `name`, else named after the store's path. Raises CacheLocationError for a folder inside the
    store's own folder, or one that cannot be made.
    """
    state = store.expanduser().resolve().parent
    folder = folder.expanduser().resolve()
    if folder == state or state in folder.parents:
        raise CacheLocationError(f"{folder}: inside openusage's state folder, which is never written to")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise CacheLocationError(f"{folder}: {err.strerror or err}") from None
    digest = hashlib.sha256(os.fsencode(store.expanduser().resolve())).hexdigest()[:16]
    return folder / (name or f"mirror-{digest}.db")


def cache_identity(store: Path, links: Mapping[str, str]) -> str:
    """Return what a kept mirror must have been made for: this release and format, this store file, these links."""
    resolved = store.expanduser().resolve()
    try:
        info = resolved.stat()
        file_id = f"{info.st_dev}:{info.st_ino}"
    except OSError:
        file_id = "missing"
    linked = ",".join(f"{k}={v}" for k, v in sorted(links.items()))
    path = os.fsencode(resolved).decode("utf-8", "backslashreplace")  # a path need not be UTF-8
    return f"{VERSION}/{CACHE_FORMAT}|{path}|{file_id}|{linked}"


def remove_cache_file(path: Path) -> None:
    """Remove a cache file and SQLite's files beside it (a missing one is fine)."""
    for suffix in _SUFFIXES:
        with contextlib.suppress(OSError):  # one that cannot be removed is not taken up either (its identity)
            Path(f"{path}{suffix}").unlink(missing_ok=True)
