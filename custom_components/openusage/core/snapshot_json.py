"""The JSON document of `openusage-ha snapshot` (metrics.md §7)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .clock import as_text, format_utc
from .models import BREAKDOWN_FIELDS, MEASURE_FIELDS, Breakdown, Measures, Snapshot, WindowedMeasures

SCHEMA_VERSION = 1

_BREAKDOWN_KEYS = {
    Breakdown.PROVIDER: "by_provider",
    Breakdown.ACCOUNT: "by_account",
    Breakdown.MODEL: "by_model",
    Breakdown.AGENT: "by_agent",
    Breakdown.TOOL: "by_tool",
    Breakdown.PROJECT: "by_project",
}


def _measures(measures: Measures, fields: tuple[str, ...]) -> dict[str, int | float]:
    return {name: getattr(measures, name) for name in fields}


def _windowed(per_window: WindowedMeasures, fields: tuple[str, ...]) -> dict[str, dict[str, int | float]]:
    return {str(window): _measures(m, fields) for window, m in per_window.items()}


def _texts(record: dict[str, Any]) -> dict[str, Any]:
    """Return a record's instants as RFC 3339 UTC text and its dates as `YYYY-MM-DD`: the JSON's only time forms."""
    return {key: as_text(value) for key, value in record.items()}


def snapshot_to_json(snapshot: Snapshot) -> dict[str, Any]:
    """Write a snapshot as the JSON document of metrics.md §7."""
    usage = snapshot.usage
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "now": format_utc(snapshot.now),
        "time_zone": snapshot.time_zone,
        "totals": _windowed(usage.totals, MEASURE_FIELDS),
    }
    for breakdown, name in _BREAKDOWN_KEYS.items():
        fields = BREAKDOWN_FIELDS[breakdown]
        document[name] = {key: _windowed(pw, fields) for key, pw in usage.breakdowns[breakdown].items()}
    document["active_sessions"] = usage.active_sessions
    document["quotas"] = [
        {
            "provider_id": q.provider_id,
            "account_id": q.account_id,
            "status": str(q.status),
            "message": q.message,
            "observed_at": as_text(q.observed_at),
            "age_seconds": q.age_seconds,
            "stale": q.stale,
            "metrics": {key: _texts(asdict(metric)) for key, metric in q.metrics.items()},
        }
        for q in snapshot.quotas.values()
    ]
    store = _texts(asdict(snapshot.store))
    store["tables"] = list(snapshot.store.tables)
    document["store"] = store
    document["spool"] = asdict(snapshot.spool)
    document["forecast"] = {
        "month": asdict(snapshot.forecast.month),
        "by_provider": {key: asdict(p) for key, p in snapshot.forecast.by_provider.items()},
    }
    document["budgets"] = [asdict(budget) for budget in snapshot.budgets]
    return document
