"""Quotas from limit snapshots (metrics.md §4)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from custom_components.openusage.core import quotas as quota_rules
from custom_components.openusage.core.models import QuotaSnapshot, QuotaStatus
from custom_components.openusage.core.reader import StoreReader, read_store
from tests.constants import NOW, UTC_ZONE
from tests.storebuilder import limit_snapshot, store


def payload(status: str = "OK", metrics: dict | None = None, resets: dict | None = None) -> dict:
    """Return a limit-snapshot payload with the given status, metrics and resets."""
    return {
        "snapshot": {
            "provider_id": "claude_code", "account_id": "claude-code", "status": status, "message": "fine",
            "metrics": metrics or {}, "resets": resets or {}, "attributes": {}, "diagnostics": {},
        }
    }  # fmt: skip


async def quotas(path: Path):
    """Return the quotas of the store at `path`, in provider then account order."""
    return tuple((await read_store(path, NOW, ZoneInfo("UTC"))).quotas.values())


async def test_newest_readable_snapshot_and_metric_figures(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    metrics = {
        "usage_five_hour": {"used": 37, "limit": 100, "remaining": None, "unit": "%", "window": "5h"},
        "credits": {"used": 30, "limit": 200, "remaining": 150, "unit": "USD", "window": "month"},
        "tokens": {"used": 50, "limit": 200, "remaining": None, "unit": "tokens", "window": "1d"},
        "rpm": {"used": None, "limit": None, "remaining": 5, "unit": "requests", "window": "1m"},
        "zero": {"used": 3, "limit": 0, "remaining": None, "unit": "requests", "window": "1m"},
    }
    resets = {"usage_five_hour": "2026-08-17T15:00:00.5Z", "rpm_reset": "1786980000", "zero": "garbage"}
    with store(db) as w:
        limit_snapshot(w, "2026-08-17T11:00:00Z", "claude_code", "claude-code", payload("LIMITED"))
        limit_snapshot(w, "2026-08-17T11:59:30Z", "claude_code", "claude-code", payload("NEAR_LIMIT", metrics, resets))
    (quota,) = await quotas(db)
    assert quota.status is QuotaStatus.NEAR_LIMIT
    assert quota.message == "fine"
    assert quota.observed_at == datetime.fromisoformat("2026-08-17T11:59:30Z")
    assert quota.age_seconds == 30.0
    assert quota.stale is False
    m = quota.metrics
    assert m["usage_five_hour"].used_percent == 37.0
    assert m["usage_five_hour"].resets_at == datetime.fromisoformat("2026-08-17T15:00:00.5Z")
    assert m["credits"].used_percent == 25.0  # (limit - remaining) / limit
    assert m["tokens"].used_percent == 25.0  # used / limit
    assert m["rpm"].used_percent is None
    assert m["rpm"].resets_at == datetime.fromisoformat("2026-08-17T15:20:00Z")  # Unix seconds under `<key>_reset`
    assert m["zero"].used_percent is None
    assert m["zero"].resets_at is None
    assert m["rpm"].remaining == 5.0
    assert m["rpm"].unit == "requests"


@pytest.mark.parametrize("newest", ["{}", "not json", '{"snapshot": "x"}', "[1, 2]"])
async def test_blanked_or_broken_newest_payload_means_stale_not_empty(tmp_path: Path, newest: str) -> None:
    db = tmp_path / "telemetry.db"
    metrics = {"rate_limit_primary": {"used": 18, "limit": 100, "remaining": 82, "unit": "%", "window": "5h"}}
    with store(db) as w:
        limit_snapshot(w, "2026-08-17T10:00:00Z", "codex", "codex-cli", payload("OK", metrics))
        limit_snapshot(w, "2026-08-17T11:00:00Z", "codex", "codex-cli", newest)
    (quota,) = await quotas(db)
    assert quota.stale is True
    assert quota.status is QuotaStatus.OK
    assert quota.observed_at == datetime.fromisoformat("2026-08-17T10:00:00Z")
    assert quota.metrics["rate_limit_primary"].used_percent == 18.0


async def test_account_with_only_blanked_payloads_and_ordering(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        limit_snapshot(w, "2026-08-17T11:00:00Z", "zai", "", "{}")
        limit_snapshot(w, "2026-08-17T11:00:00Z", "cursor", "cursor-ide", payload("weird-status"))
        limit_snapshot(w, "2026-08-17T11:00:00Z", "codex", "b", payload())
        limit_snapshot(w, "2026-08-17T11:00:00Z", "codex", "a", payload("AUTH_REQUIRED"))
    result = await quotas(db)
    assert [(q.provider_id, q.account_id) for q in result] == [
        ("codex", "a"), ("codex", "b"), ("cursor", "cursor-ide"), ("zai", "default")
    ]  # fmt: skip
    assert result[0].status is QuotaStatus.AUTH_REQUIRED
    assert result[2].status is QuotaStatus.UNKNOWN
    zai = result[3]
    assert zai.stale is True
    assert zai.metrics == {}
    assert zai.status is QuotaStatus.UNKNOWN
    assert zai.observed_at == datetime.fromisoformat("2026-08-17T11:00:00Z")


async def test_a_percent_quota_with_only_remaining_is_100_minus_remaining(tmp_path: Path) -> None:
    # openusage's display shows 40 % used for a primary rate limit that reports 60 % remaining.
    db = tmp_path / "telemetry.db"
    metrics = {
        "rate_limit_primary": {"used": None, "limit": None, "remaining": 60, "unit": "%", "window": "5h"},
        "rate_limit_secondary": {"used": None, "limit": 100, "remaining": 92.5, "unit": "%", "window": "7d"},
        "both": {"used": 10, "limit": None, "remaining": 60, "unit": "%", "window": "1d"},
    }
    with store(db) as w:
        limit_snapshot(w, "2026-08-17T11:59:00Z", "codex", "codex-cli", payload("OK", metrics))
    (quota,) = await quotas(db)
    assert quota.metrics["rate_limit_primary"].used_percent == 40.0
    assert quota.metrics["rate_limit_secondary"].used_percent == 7.5
    assert quota.metrics["both"].used_percent == 10.0  # `used` wins when the provider gives it


def _five_hour(percent: float, resets_at: str) -> dict:
    metric = {"used": percent, "limit": 100, "remaining": None, "unit": "%", "window": "5h"}
    return payload("OK", {"usage_five_hour": metric, "credits": {"used": 1, "limit": 10, "unit": "USD"}},
                   {"usage_five_hour": resets_at})  # fmt: skip


@pytest.mark.parametrize(
    ("series", "resets_at", "rate", "exhausted_at"),
    [
        # 15 % an hour; 67.5 % to go from 11:50 takes 4 h 30 min.
        (
            [("11:00", 20), ("11:10", 22.5), ("11:20", 25), ("11:30", 27.5), ("11:40", 30), ("11:50", 32.5)],
            "17:00",
            15.0,
            "2026-08-17T16:20:00Z",
        ),
        # The same, but the window resets at 15:00, before it would run out.
        ([("11:00", 20), ("11:50", 32.5)], "15:00", 15.0, None),
        # A reset within the hour: only the samples after it (12 % an hour, 94 % to go from 11:40).
        (
            [("11:00", 90), ("11:10", 95), ("11:20", 2), ("11:30", 4), ("11:40", 6)],
            "20:00",
            12.0,
            "2026-08-17T19:30:00Z",
        ),
        # An older sample than an hour before the newest is left out: 20 % an hour from 11:10 to 11:40.
        ([("10:00", 10), ("11:10", 50), ("11:40", 60)], "20:00", 20.0, "2026-08-17T13:40:00Z"),
        ([("11:00", 50), ("11:30", 50), ("11:50", 50)], "20:00", 0.0, None),  # not rising
        ([("11:00", 100), ("11:30", 100.5)], "20:00", 1.0, None),  # full already: Limited says so
        ([("11:50", 40)], "20:00", None, None),  # one sample
        ([("11:48", 40), ("11:50", 41)], "20:00", None, None),  # two, less than five minutes apart
    ],
)
async def test_time_to_quota_exhaustion_from_the_recent_snapshots(
    tmp_path: Path, series: list[tuple[str, float]], resets_at: str, rate: float | None, exhausted_at: str | None
) -> None:
    db = tmp_path / "telemetry.db"
    resets = f"2026-08-17T{resets_at}:00Z"
    with store(db) as w:
        for at, percent in series:
            limit_snapshot(w, f"2026-08-17T{at}:00Z", "claude_code", "claude-code", _five_hour(percent, resets))
        limit_snapshot(w, "2026-08-17T11:05:00Z", "claude_code", "claude-code", "{}")  # blanked: no sample
    (quota,) = await quotas(db)
    metric = quota.metrics["usage_five_hour"]
    assert metric.rate_percent_per_hour == (None if rate is None else pytest.approx(rate))
    assert metric.exhausted_at == (exhausted_at and datetime.fromisoformat(exhausted_at))
    assert quota.metrics["credits"].exhausted_at is None  # money, not a percent with a reset


async def test_hundreds_of_accounts_each_have_their_own_newest_snapshot(tmp_path: Path) -> None:
    """The accounts' newest rows are read a hundred accounts a statement: each row goes to its own account."""
    db = tmp_path / "telemetry.db"
    accounts = 250
    with store(db) as w:
        for n in range(accounts):
            limit_snapshot(w, "2026-08-17T11:00:00Z", "codex", f"a{n:03d}", payload("OK"))
            # Every account has 70 snapshots, more than a first read takes; the odd ones' newest is blanked.
            for minute in range(1, 70):
                newest = minute == 69
                at = f"2026-08-17T11:{minute % 60:02d}:{minute // 60:02d}Z" if not newest else "2026-08-17T11:59:59Z"
                limit_snapshot(w, at, "codex", f"a{n:03d}", "{}" if newest and n % 2 else payload("NEAR_LIMIT"))
    result = await quotas(db)
    assert [q.account_id for q in result] == [f"a{n:03d}" for n in range(accounts)]
    assert all(q.observed_at == datetime.fromisoformat("2026-08-17T11:59:59Z") for q in result[::2])
    assert all(not q.stale and q.status is QuotaStatus.NEAR_LIMIT for q in result[::2])
    assert all(q.stale and q.observed_at < datetime.fromisoformat("2026-08-17T11:59:59Z") for q in result[1::2])


async def test_a_snapshot_is_parsed_once_and_a_payload_changed_in_place_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refresh after refresh, only the snapshots new since, or whose payload changed (blanked), are parsed again.

    The quotas, rates included, are a fresh reader's each time.
    """
    db = tmp_path / "telemetry.db"
    resets = "2026-08-17T17:00:00Z"
    with store(db) as w:  # every 30 s from 10:30: more than the hour the rate reads
        for step in range(120):
            at = f"2026-08-17T{10 + (30 + step // 2) // 60}:{(30 + step // 2) % 60:02d}:{step % 2 * 30:02d}Z"
            limit_snapshot(w, at, "claude_code", "claude-code", _five_hour(20 + step / 10, resets))
    parse = quota_rules.parse_snapshot_payload
    parsed: list[str] = []

    def counting(text: str) -> dict | None:
        parsed.append(text)
        return parse(text)

    monkeypatch.setattr(quota_rules, "parse_snapshot_payload", counting)
    reader = StoreReader(db)
    try:

        async def both() -> tuple[QuotaSnapshot, QuotaSnapshot]:
            (kept,) = (await reader.refresh(NOW, UTC_ZONE)).quotas.values()
            (fresh,) = await quotas(db)
            return kept, fresh

        kept, fresh = await both()
        assert kept == fresh
        assert kept.metrics["usage_five_hour"].rate_percent_per_hour == pytest.approx(12.0)
        parsed.clear()
        with store(db) as w:
            limit_snapshot(w, "2026-08-17T11:30:00Z", "claude_code", "claude-code", _five_hour(32.2, resets))
        kept, fresh = await both()
        assert kept == fresh
        assert kept.observed_at == datetime.fromisoformat("2026-08-17T11:30:00Z")
        assert len(parsed) == 1 + 61  # the new snapshot; then the fresh reader's hour
        parsed.clear()
        # The newest blanked in place: the one before it is the quota, stale.
        with closing(sqlite3.connect(db, isolation_level=None)) as conn:
            conn.execute(
                "UPDATE usage_raw_events SET source_payload = '{}' WHERE raw_event_id = (SELECT raw_event_id "
                "FROM usage_events WHERE event_type = 'limit_snapshot' ORDER BY occurred_at DESC LIMIT 1)"
            )
        kept, fresh = await both()
        assert kept == fresh
        assert kept.stale
        assert kept.observed_at == datetime.fromisoformat("2026-08-17T11:29:30Z")
        # The blanked payload, the one before it in whole, and the row before the hour's, which the hour now reaches;
        # then the fresh reader's 62.
        assert parsed[0] == "{}"
        assert len(parsed) == 3 + 62
    finally:
        await reader.close()
