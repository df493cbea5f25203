"""Where this month's spend is heading, and budgets against it (metrics.md §8).

The rest of the month is expected to go as the same hours of the same weekdays went in the last four
weeks: each remaining hour (local weekday and hour of day) costs what that hour cost on average in those
weeks. Each of the weeks alone gives one projection too; the lowest and highest of them are the range.
A store with less than a week of history has no weekly pattern yet: its average hourly spend stands in
for every remaining hour.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from .clock import period_first_days, start_of_day
from .models import Breakdown, BudgetStatus, Forecast, MonthProjection, UsageFigures, Window
from .pairs import items

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
PROFILE_WEEKS = 4
METHOD_PROFILE = "weekday_hour_profile"
METHOD_AVERAGE = "hourly_average"
METHOD_NONE = "no_history"

Slot = tuple[int, int]  # local weekday (Monday 0) and hour of day


@dataclass(frozen=True, slots=True)
class HourlyCost:
    """What one provider spent in one UTC hour."""

    provider: str
    hour: datetime
    cost_usd: float


@dataclass(frozen=True, eq=False, slots=True)
class CostHistory:
    """Hourly spend, oldest first. Equal only to itself: the caches below find it without hashing its hours."""

    costs: tuple[tuple[datetime, float], ...]


@dataclass(frozen=True, eq=False, slots=True)
class SpendHistory:
    """The whole store's hourly spend and each provider's, as the projection reads them (made once an hour)."""

    everything: CostHistory
    by_provider: Mapping[str, CostHistory]


def spend_history(hourly: Iterable[HourlyCost]) -> SpendHistory:
    """Return the whole store's hourly spend and each provider's.

    The whole store's history is every provider's: the profile adds them up slot by slot.
    """
    per_key: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for item in hourly:
        per_key[item.provider].append((item.hour, item.cost_usd))
    everything = tuple(cost for costs in per_key.values() for cost in costs)
    return SpendHistory(CostHistory(everything), {key: CostHistory(tuple(costs)) for key, costs in per_key.items()})


def profile_since(now: datetime) -> datetime:
    """Return the start of the history the projection reads: four weeks before the current UTC hour."""
    return _hour_of(now) - PROFILE_WEEKS * WEEK


def _hour_of(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def month_end(now: datetime, zone: ZoneInfo) -> datetime:
    """Return the first instant of next month in `zone`."""
    first = period_first_days(now, zone)[Window.MONTH]
    following = (first + timedelta(days=32)).replace(day=1)
    return start_of_day(following, zone)


@lru_cache(maxsize=2048)  # the same four weeks of hours, refresh after refresh
def _slot(hour: datetime, zone: ZoneInfo) -> Slot:
    local = hour.astimezone(zone)
    return local.weekday(), local.hour


@lru_cache(maxsize=2)  # the same for every refresh of the hour
def _whole_hours_left(current: datetime, end: datetime, zone: ZoneInfo) -> dict[Slot, float]:
    """How much of each weekday-hour slot is left between the end of the current hour and `end`."""
    left: dict[Slot, float] = defaultdict(float)
    hour = current + HOUR
    while hour < end:
        left[_slot(hour, zone)] += (min(hour + HOUR, end) - hour) / HOUR
        hour += HOUR
    return dict(left)


@lru_cache(maxsize=32)  # the history changes once an hour; refreshes in between ask again
def _week_profiles(costs: CostHistory, current: datetime, zone: ZoneInfo, weeks: int) -> tuple[dict[Slot, float], ...]:
    """Return what each weekday-hour slot cost in each of the last `weeks` weeks (0: the week just gone)."""
    per_week: list[dict[Slot, float]] = [defaultdict(float) for _ in range(weeks)]
    for hour, cost in costs.costs:
        back = (current - HOUR - hour) // WEEK
        if 0 <= back < weeks and hour < current:
            per_week[back][_slot(hour, zone)] += cost
    return tuple(dict(profile) for profile in per_week)


@lru_cache(maxsize=32)  # worked out once an hour: a refresh adds only what is left of the hour under way
def _rests_after_this_hour(
    costs: CostHistory, current: datetime, zone: ZoneInfo, weeks: int, end: datetime
) -> tuple[float, ...]:
    """Return what each of the last `weeks` weeks' profiles spends in the whole hours after the current one."""
    left = _whole_hours_left(current, end, zone)
    return tuple(
        sum(share * profile.get(slot, 0.0) for slot, share in left.items())
        for profile in _week_profiles(costs, current, zone, weeks)
    )


def project_month(
    spent: float,
    costs: CostHistory,
    now: datetime,
    zone: ZoneInfo,
    history_from: datetime | None,
) -> MonthProjection:
    """Return this month's spend so far plus the expected rest, from the hourly `costs` of the last four weeks.

    Hours before `history_from`, the store's oldest usage, are no history.
    """
    if history_from is None:
        return MonthProjection(spent, spent, spent, spent, METHOD_NONE, 0)
    current = _hour_of(now)
    start = max(profile_since(now), _hour_of(history_from))
    weeks = min(PROFILE_WEEKS, max(0, (current - start) // WEEK))
    end = month_end(now, zone)
    this_hour = (min(current + HOUR, end) - now) / HOUR  # what is left of the hour under way
    if weeks:
        profiles = _week_profiles(costs, current, zone, weeks)
        slot = _slot(current, zone)
        rests = [
            later + this_hour * profile.get(slot, 0.0)
            for later, profile in zip(_rests_after_this_hour(costs, current, zone, weeks, end), profiles, strict=True)
        ]
        mean = sum(rests) / weeks
        return MonthProjection(spent, spent + mean, spent + min(rests), spent + max(rests), METHOD_PROFILE, weeks)
    hours = (current - start) // HOUR
    if hours <= 0:
        return MonthProjection(spent, spent, spent, spent, METHOD_NONE, 0)
    rate = sum(cost for hour, cost in costs.costs if start <= hour < current) / hours
    rest = rate * (this_hour + sum(_whole_hours_left(current, end, zone).values()))
    return MonthProjection(spent, spent + rest, spent + rest, spent + rest, METHOD_AVERAGE, 0)


_NO_HISTORY = CostHistory(())


def month_forecast(
    usage: UsageFigures,
    history: SpendHistory,
    now: datetime,
    zone: ZoneInfo,
    history_from: datetime | None,
) -> Forecast:
    """Return the month projection of the whole store and of each provider with spend this month or lately."""
    per_key = history.by_provider
    providers = usage.breakdowns[Breakdown.PROVIDER]
    keys = set(per_key) | {k for k, w in providers.items() if w[Window.MONTH].cost_usd}

    def spent(key: str) -> float:
        windows = providers.get(key)
        return windows[Window.MONTH].cost_usd if windows else 0.0

    return Forecast(
        month=project_month(usage.totals[Window.MONTH].cost_usd, history.everything, now, zone, history_from),
        by_provider={
            key: project_month(spent(key), per_key.get(key, _NO_HISTORY), now, zone, history_from)
            for key in sorted(keys)
        },
    )


def parse_budget(text: str) -> tuple[str, float]:
    """`provider=amount` (a monthly budget in USD for one provider). Raises ValueError saying what is wrong."""
    name, sep, amount = text.partition("=")
    try:
        value = float(amount)
    except ValueError:
        value = math.nan
    if not sep or not name.strip() or not math.isfinite(value) or value < 0:
        raise ValueError(f"expected PROVIDER=AMOUNT with an amount of 0 or more, got {text!r}")
    return name.strip().lower(), value


def budget_map(total: float, providers: Mapping[str, float]) -> dict[str | None, float]:
    """Return the budgets a refresh reads: the whole store's (when above 0) under None, the providers' by id."""
    budgets: dict[str | None, float] = dict(providers.items())
    if total > 0:
        budgets[None] = total
    return budgets


def parse_budgets(text: str) -> dict[str, float]:
    """Parse provider budgets, one `provider=amount` per line (or comma-separated); raise ValueError if bad."""
    return dict(parse_budget(item) for item in items(text))


def budget_statuses(
    budgets: Mapping[str | None, float], usage: UsageFigures, projection: Forecast
) -> tuple[BudgetStatus, ...]:
    """Each monthly budget (None: the whole store's; else a provider's) against the spend and the projection."""
    statuses = []
    for provider, amount in sorted(budgets.items(), key=lambda item: (item[0] is not None, item[0] or "")):
        if amount <= 0:
            continue
        if provider is None:
            spent, projected = usage.totals[Window.MONTH].cost_usd, projection.month.projected_usd
        else:
            windows = usage.breakdowns[Breakdown.PROVIDER].get(provider)
            spent = windows[Window.MONTH].cost_usd if windows else 0.0
            found = projection.by_provider.get(provider)
            projected = found.projected_usd if found else spent
        statuses.append(
            BudgetStatus(
                provider=provider,
                amount_usd=amount,
                spent_usd=spent,
                used_percent=spent / amount * 100,
                projected_usd=projected,
                over=spent > amount,
                projected_over=projected > amount,
            )
        )
    return tuple(statuses)
