"""The rules that say ingestion looks unhealthy (metrics.md §5): a stuck hook spool, failed records, a reset store."""

from __future__ import annotations

from datetime import timedelta

from .models import Snapshot

INGESTION_STUCK = timedelta(seconds=60)
CORRUPT_BACKUP_RECENT = timedelta(hours=24)
# Every problem the rules can find, in the order they are checked.
INGESTION_PROBLEMS = ("hook_spool_stuck", "spool_failed", "corrupt_store_reset")


def ingestion_problems(snapshot: Snapshot) -> list[str]:
    """Say why ingestion looks unhealthy (empty when it does not)."""
    spool, backup = snapshot.spool, snapshot.store.corrupt_backup_at
    age = spool.hook_spool_oldest_age_seconds
    found = {
        "hook_spool_stuck": age is not None and age > INGESTION_STUCK.total_seconds(),
        "spool_failed": bool(spool.spool_failed),
        "corrupt_store_reset": backup is not None and snapshot.now - backup < CORRUPT_BACKUP_RECENT,
    }
    return [problem for problem in INGESTION_PROBLEMS if found[problem]]
