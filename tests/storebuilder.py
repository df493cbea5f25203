"""Hand-made openusage stores for tests: real SQLite files in a release's exact schema."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from custom_components.openusage.core.schema import LATEST_RELEASE, create_schema
from openusage_demo import EventWriter, build_rollup


@contextmanager
def store(path: Path, release: str = LATEST_RELEASE) -> Iterator[EventWriter]:
    """Create a store at `path` (WAL mode, like the daemon's) and yield a writer for its rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    create_schema(conn, release)
    writer = EventWriter(conn)
    conn.execute("BEGIN")
    yield writer
    writer.flush()
    conn.execute("COMMIT")
    conn.close()


def message(writer: EventWriter, at: str, **fields: Any) -> str:
    """Return a Claude Code message from the JSONL channel unless told otherwise."""
    defaults: dict[str, Any] = {
        "source_system": "claude_code",
        "provider_id": "anthropic",
        "account_id": "claude-code",
        "session_id": "s1",
        "model_raw": "claude-sonnet-4-5",
    }
    defaults.update(fields)
    return writer.add(occurred_at=at, **defaults)


def tool(writer: EventWriter, at: str, name: str, **fields: Any) -> str:
    """Write a tool call by `name`."""
    defaults: dict[str, Any] = {
        "source_system": "claude_code",
        "provider_id": "anthropic",
        "account_id": "claude-code",
        "session_id": "s1",
        "requests": 1,
    }
    defaults.update(fields)
    return writer.add(occurred_at=at, event_type="tool_usage", tool_name=name, **defaults)


def limit_snapshot(writer: EventWriter, at: str, provider: str, account: str, payload: Any) -> str:
    """Return a limit-snapshot row; `payload` is a dict (written as JSON) or the raw payload text."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return writer.add(
        source_system="provider_poller",
        source_channel="api",
        source_schema_version="provider_snapshot_v1",
        payload=text,
        event_type="limit_snapshot",
        occurred_at=at,
        provider_id=provider,
        account_id=account,
        agent_name="provider_poller",
        turn_id=f"snapshot:{provider}:{account}:{at}",
    )


def rollup(path: Path, watermark: str, prune_before: str | None = None) -> None:
    """Roll the store up as the daemon does, then delete raw rows older than `prune_before`."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    build_rollup(conn, watermark)
    if prune_before:
        conn.execute("DELETE FROM usage_events WHERE occurred_at < ?", (prune_before,))
    conn.execute("COMMIT")
    conn.close()
