"""The openusage store schema as each release created it (openusage-store.md §1.3–§1.4).

Used to write demo and test stores: the reader itself only ever probes `sqlite_master`.
"""

from __future__ import annotations

import sqlite3

_V0_5_0 = """
CREATE TABLE IF NOT EXISTS usage_raw_events (
  raw_event_id TEXT PRIMARY KEY,
  ingested_at TEXT NOT NULL,
  source_system TEXT NOT NULL,
  source_channel TEXT NOT NULL,
  source_schema_version TEXT NOT NULL,
  source_payload TEXT NOT NULL,
  source_payload_hash TEXT NOT NULL,
  workspace_id TEXT,
  agent_session_id TEXT
);
CREATE TABLE IF NOT EXISTS usage_events (
  event_id TEXT PRIMARY KEY,
  occurred_at TEXT NOT NULL,
  provider_id TEXT,
  agent_name TEXT NOT NULL,
  account_id TEXT,
  workspace_id TEXT,
  session_id TEXT,
  turn_id TEXT,
  message_id TEXT,
  tool_call_id TEXT,
  event_type TEXT NOT NULL,
  model_raw TEXT,
  model_canonical TEXT,
  model_lineage_id TEXT,
  input_tokens INTEGER,
  output_tokens INTEGER,
  reasoning_tokens INTEGER,
  cache_read_tokens INTEGER,
  cache_write_tokens INTEGER,
  total_tokens INTEGER,
  cost_usd REAL,
  requests INTEGER,
  tool_name TEXT,
  status TEXT NOT NULL,
  dedup_key TEXT NOT NULL UNIQUE,
  raw_event_id TEXT NOT NULL REFERENCES usage_raw_events(raw_event_id),
  normalization_version TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS usage_reconciliation_windows (
  recon_id TEXT PRIMARY KEY,
  provider_id TEXT NOT NULL,
  account_id TEXT,
  window_start TEXT NOT NULL,
  window_end TEXT NOT NULL,
  authoritative_cost_usd REAL,
  authoritative_tokens INTEGER,
  authoritative_requests INTEGER,
  event_sum_cost_usd REAL,
  event_sum_tokens INTEGER,
  event_sum_requests INTEGER,
  delta_cost_usd REAL,
  delta_tokens INTEGER,
  delta_requests INTEGER,
  resolution TEXT NOT NULL,
  created_at TEXT NOT NULL
);
"""

_V0_5_0_INDEXES = """
CREATE INDEX IF NOT EXISTS idx_usage_raw_events_ingested_at ON usage_raw_events(ingested_at);
CREATE INDEX IF NOT EXISTS idx_usage_raw_events_source ON usage_raw_events(source_system, source_channel);
CREATE INDEX IF NOT EXISTS idx_usage_events_occurred_at ON usage_events(occurred_at);
CREATE INDEX IF NOT EXISTS idx_usage_events_raw_event_id ON usage_events(raw_event_id);
CREATE INDEX IF NOT EXISTS idx_usage_events_provider_window ON usage_events(provider_id, account_id, occurred_at);
CREATE INDEX IF NOT EXISTS idx_usage_events_provider_account_type_occurred
  ON usage_events(provider_id, account_id, event_type, occurred_at DESC);
CREATE INDEX IF NOT EXISTS idx_usage_events_type_provider ON usage_events(event_type, provider_id);
CREATE INDEX IF NOT EXISTS idx_usage_recon_provider_window
  ON usage_reconciliation_windows(provider_id, account_id, window_start, window_end);
"""

_V0_6_5 = """
CREATE INDEX IF NOT EXISTS idx_usage_raw_events_source_system ON usage_raw_events(source_system);
CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);
"""

_V0_14_0 = """
CREATE TABLE IF NOT EXISTS balance_observations (
  provider_id TEXT NOT NULL,
  account_id TEXT NOT NULL,
  metric_key TEXT NOT NULL,
  observed_at TEXT NOT NULL,
  used REAL,
  limit_val REAL,
  remaining REAL,
  unit TEXT,
  semantics TEXT NOT NULL,
  PRIMARY KEY (provider_id, account_id, metric_key, observed_at)
);
CREATE INDEX IF NOT EXISTS idx_balance_obs_lookup
  ON balance_observations(provider_id, account_id, metric_key, observed_at);
"""

_V0_22_0 = """
CREATE TABLE IF NOT EXISTS usage_rollup_daily (
  day TEXT NOT NULL,
  provider_id TEXT NOT NULL,
  account_id TEXT NOT NULL DEFAULT '',
  model_canonical TEXT NOT NULL DEFAULT '',
  tool_name TEXT NOT NULL DEFAULT '',
  project TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL DEFAULT '',
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  reasoning_tokens INTEGER NOT NULL DEFAULT 0,
  cache_read_tokens INTEGER NOT NULL DEFAULT 0,
  cache_write_tokens INTEGER NOT NULL DEFAULT 0,
  total_tokens INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL NOT NULL DEFAULT 0,
  requests INTEGER NOT NULL DEFAULT 0,
  event_count INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (day, provider_id, account_id, model_canonical, tool_name, project, status)
);
CREATE INDEX IF NOT EXISTS idx_rollup_daily_window ON usage_rollup_daily(provider_id, account_id, day);
CREATE TABLE IF NOT EXISTS daemon_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Releases whose DDL differs, oldest first (nothing changed from v0.22.0 to v0.24.4).
RELEASES: dict[str, tuple[str, ...]] = {
    "0.5.0": (_V0_5_0, _V0_5_0_INDEXES),
    "0.6.5": (_V0_5_0, _V0_5_0_INDEXES, _V0_6_5),
    "0.14.0": (_V0_5_0, _V0_5_0_INDEXES, _V0_6_5, _V0_14_0),
    "0.24.4": (_V0_5_0, _V0_5_0_INDEXES, _V0_6_5, _V0_14_0, _V0_22_0),
}
LATEST_RELEASE = "0.24.4"


def create_schema(conn: sqlite3.Connection, release: str = LATEST_RELEASE, indexes: bool = True) -> None:
    """Create the tables (and, unless `indexes` is False, the indexes) of an openusage release."""
    for script in RELEASES[release]:
        if not indexes and script is _V0_5_0_INDEXES:
            continue
        conn.executescript(script)


def create_indexes(conn: sqlite3.Connection, release: str = LATEST_RELEASE) -> None:
    """Create the indexes a bulk load skipped (faster than keeping them up to date row by row)."""
    for script in RELEASES[release]:
        conn.executescript(script)


def release_range(tables: tuple[str, ...] | set[str]) -> str:
    """Return the openusage releases whose schema has exactly these tables (openusage-store.md §1.4)."""
    if "usage_rollup_daily" in tables or "daemon_meta" in tables:
        return ">=0.22.0"
    if "balance_observations" in tables:
        return "0.14.0-0.21.x"
    if "_migrations" in tables:
        return "0.6.5-0.13.x"
    return "0.5.0-0.6.4"
