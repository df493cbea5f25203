"""The month-end projection and budgets (metrics.md §8) on hand-made stores with known answers."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from custom_components.openusage.core.reader import ReadOptions, read_store
from custom_components.openusage.core.snapshot_json import snapshot_to_json
from tests.constants import NOW, WARSAW
from tests.constants import UTC_ZONE as UTC
from tests.storebuilder import message, store


def _hourly(w, first: datetime, hours: int, cost: float, **fields: object) -> None:
    for i in range(hours):
        at = first + timedelta(hours=i, minutes=30)
        message(w, f"{at:%Y-%m-%dT%H:%M:%SZ}", message_id=f"{first:%m%d%H}-{i}-{fields}", cost_usd=cost, **fields)


async def test_a_steady_spend_projects_every_remaining_hour_at_the_same_cost(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        _hourly(w, NOW - timedelta(days=28), 28 * 24, 1.0)
    budgets = {None: 500.0, "claude_code": 1000.0, "codex": 50.0}
    snapshot = await read_store(db, NOW, UTC, ReadOptions(budgets=budgets))
    month = snapshot.forecast.month
    # 16 days and 12 hours of August at $1 an hour so far; 14 days and 12 hours to come.
    assert month.spent_usd == pytest.approx(396)
    assert (month.projected_usd, month.low_usd, month.high_usd) == pytest.approx((744, 744, 744))
    assert (month.method, month.weeks) == ("weekday_hour_profile", 4)
    assert snapshot.forecast.by_provider["claude_code"].projected_usd == pytest.approx(744)
    whole, claude, codex = snapshot.budgets
    # metrics.md §8: a provider budget with no spend reads 0, its projection too.
    assert (codex.spent_usd, codex.used_percent, codex.projected_usd, codex.projected_over) == (0, 0, 0, False)
    assert (whole.provider, whole.used_percent, whole.over, whole.projected_over) == (
        None,
        pytest.approx(79.2),
        False,
        True,
    )
    assert (claude.provider, claude.used_percent, claude.projected_over) == ("claude_code", pytest.approx(39.6), False)
    document = snapshot_to_json(snapshot)
    assert document["forecast"]["month"]["projected_usd"] == pytest.approx(744)
    assert document["budgets"][0] == {
        "provider": None, "amount_usd": 500.0, "spent_usd": pytest.approx(396), "used_percent": pytest.approx(79.2),
        "projected_usd": pytest.approx(744), "over": False, "projected_over": True,
    }  # fmt: skip


async def test_the_rest_follows_the_weekday_hours_and_the_weeks_give_the_range(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-07-20T12:00:00Z", message_id="history-starts", cost_usd=0.0)
        # Mondays 09:30: $40, $30, $20 and $10 in the four weeks before now.
        for day, cost in (("07-27", 40.0), ("08-03", 30.0), ("08-10", 20.0), ("08-17", 10.0)):
            message(w, f"2026-{day}T09:30:00Z", message_id=day, cost_usd=cost)
        message(w, "2026-08-17T11:50:00Z", message_id="codex", provider_id="codex", account_id="", cost_usd=1.0)
    forecast = (await read_store(db, NOW, UTC, ReadOptions())).forecast
    # Two Mondays at 09:00 are left in August (24th and 31st): each week alone says 2 × its Monday.
    spent = 30 + 20 + 10 + 1
    assert forecast.month.spent_usd == pytest.approx(spent)
    assert forecast.month.low_usd == pytest.approx(spent + 2 * 10 + 2 * 1)
    assert forecast.month.high_usd == pytest.approx(spent + 2 * 40 + 0)
    # Codex spent $1 at 11:00 on a Monday, in the week just gone: a quarter of $1 on two more Mondays.
    assert forecast.month.projected_usd == pytest.approx(spent + 2 * 25 + 2 * 0.25)
    assert forecast.by_provider["codex"].projected_usd == pytest.approx(1 + 0.5)
    assert forecast.by_provider["claude_code"].projected_usd == pytest.approx(60 + 50)


async def test_a_store_younger_than_a_week_projects_its_hourly_average(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        _hourly(w, NOW - timedelta(days=2), 48, 2.0)
    month = (await read_store(db, NOW, UTC, ReadOptions())).forecast.month
    assert (month.method, month.weeks) == ("hourly_average", 0)
    assert month.projected_usd == pytest.approx(96 + 2 * (14 * 24 + 12))
    assert month.low_usd == month.high_usd == month.projected_usd
    empty = tmp_path / "empty.db"
    with store(empty):
        pass
    nothing = (await read_store(empty, NOW, UTC, ReadOptions(budgets={None: 10.0}))).forecast.month
    assert (nothing.method, nothing.projected_usd) == ("no_history", 0)


async def test_october_in_warsaw_has_745_hours(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    now = datetime.fromisoformat("2026-10-20T12:15:00+00:00")
    with store(db) as w:
        _hourly(w, datetime.fromisoformat("2026-09-21T12:00:00+00:00"), 29 * 24, 1.0)
    month = (await read_store(db, now, WARSAW, ReadOptions())).forecast.month
    # October began at 22:00 UTC on 30 September (summer time) and ends at 23:00 UTC on the 31st (winter
    # time): 745 hours. So far: 19 days and 14 hours plus the row at 12:30 not yet (470 rows); the current
    # hour counts three quarters.
    assert month.spent_usd == pytest.approx(470)
    assert month.projected_usd == pytest.approx(745 - 0.25)
