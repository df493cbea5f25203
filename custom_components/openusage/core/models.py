"""Plain dataclasses the core hands out: one refresh of the openusage store becomes one `Snapshot`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TypeAlias


class Window(StrEnum):
    """The usage windows of metrics.md §1: rolling ones, all time, and the calendar week and month."""

    TODAY = "today"
    H24 = "24h"
    D7 = "7d"
    D30 = "30d"
    ALL = "all"
    WEEK = "week"
    MONTH = "month"


ALL_WINDOWS: tuple[Window, ...] = tuple(Window)
# The windows that start at a calendar date and may reach back into openusage's rollup days.
PERIOD_WINDOWS: tuple[Window, ...] = (Window.WEEK, Window.MONTH)
# Agent, tool and project breakdowns have no `all` window: rollup rows carry none of those dimensions.
RECENT_WINDOWS: tuple[Window, ...] = (Window.TODAY, Window.H24, Window.D7, Window.D30, *PERIOD_WINDOWS)


class Breakdown(StrEnum):
    """The keys a usage figure can be split by (metrics.md §3)."""

    PROVIDER = "provider"
    ACCOUNT = "account"
    MODEL = "model"
    AGENT = "agent"
    TOOL = "tool"
    PROJECT = "project"


BREAKDOWN_WINDOWS: dict[Breakdown, tuple[Window, ...]] = {
    Breakdown.PROVIDER: ALL_WINDOWS,
    Breakdown.ACCOUNT: ALL_WINDOWS,
    Breakdown.MODEL: ALL_WINDOWS,
    Breakdown.AGENT: RECENT_WINDOWS,
    Breakdown.TOOL: RECENT_WINDOWS,
    Breakdown.PROJECT: RECENT_WINDOWS,
}

MEASURE_FIELDS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "total_tokens",
    "cost_usd",
    "requests",
    "messages",
    "errors",
    "tool_calls",
    "tool_errors",
    "sessions",
)
# The measures each breakdown reports (metrics.md §7: M, T and P).
BREAKDOWN_FIELDS: dict[Breakdown, tuple[str, ...]] = {
    Breakdown.PROVIDER: MEASURE_FIELDS,
    Breakdown.ACCOUNT: MEASURE_FIELDS,
    Breakdown.MODEL: MEASURE_FIELDS,
    Breakdown.AGENT: MEASURE_FIELDS,
    Breakdown.TOOL: ("tool_calls", "tool_errors"),
    Breakdown.PROJECT: ("requests", "cost_usd", "total_tokens"),
}


@dataclass(frozen=True, slots=True)
class Measures:
    """Usage measured over one window for one key (metrics.md §2)."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    requests: int = 0
    messages: int = 0
    errors: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    sessions: int = 0


WindowedMeasures: TypeAlias = dict[Window, Measures]


@dataclass(frozen=True, slots=True)
class UsageFigures:
    """Totals and every breakdown, each per window."""

    totals: WindowedMeasures
    breakdowns: dict[Breakdown, dict[str, WindowedMeasures]]
    active_sessions: int


@dataclass(frozen=True, slots=True)
class QuotaMetric:
    """One metric of a provider's limit snapshot (metrics.md §4)."""

    used: float | None
    limit: float | None
    remaining: float | None
    unit: str | None
    window: str | None
    used_percent: float | None
    resets_at: datetime | None
    # Percent quotas with a reset: the recent rate (percent an hour) and when it reaches 100 % at that rate,
    # unknown when it does not rise or the window resets first (metrics.md §4).
    rate_percent_per_hour: float | None = None
    exhausted_at: datetime | None = None


class QuotaStatus(StrEnum):
    """Status of a provider's limit snapshot, as openusage reports it."""

    OK = "OK"
    NEAR_LIMIT = "NEAR_LIMIT"
    LIMITED = "LIMITED"
    AUTH_REQUIRED = "AUTH_REQUIRED"
    UNSUPPORTED = "UNSUPPORTED"
    ERROR = "ERROR"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class QuotaSnapshot:
    """The newest readable limit snapshot of one (provider, account)."""

    provider_id: str
    account_id: str
    status: QuotaStatus
    message: str
    observed_at: datetime | None  # None only for an account whose snapshots are all unreadable and undated
    age_seconds: float
    stale: bool
    metrics: dict[str, QuotaMetric] = field(default_factory=dict)
    metrics_left_out: int = 0  # beyond the cap on metrics per account (quotas.MAX_METRICS_PER_ACCOUNT)

    @property
    def account(self) -> str:
        """The account's key, as in the account breakdown and the device keys."""
        return account_key(self.provider_id, self.account_id)


def account_key(provider_id: str, account_id: str) -> str:
    """Return the key of one provider account: `claude_code/default`."""
    return f"{provider_id}/{account_id}"


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """Facts about the store file itself (metrics.md §5)."""

    db_size_bytes: int
    wal_size_bytes: int
    last_event_at: datetime | None
    last_snapshot_at: datetime | None
    oldest_raw_day: date | None
    rollup_watermark: date | None
    tables: tuple[str, ...]
    corrupt_backup_at: datetime | None
    rows_left_out: int = 0  # usage rows with no proper time or with impossible figures, in no figure


@dataclass(frozen=True, slots=True)
class SpoolHealth:
    """Backlog of the two spool folders (metrics.md §5).

    A count is None when its folder exists but cannot be read: the backlog is then unknown, not zero.
    """

    hook_spool_files: int | None = 0
    hook_spool_oldest_age_seconds: float | None = None
    hook_spool_tmp_files: int | None = 0
    spool_pending: int | None = 0
    spool_failed: int | None = 0
    spool_malformed: int | None = 0
    spool_oldest_age_seconds: float | None = None
    spool_last_error: str | None = None


@dataclass(frozen=True, slots=True)
class MonthProjection:
    """The spend of this month so far and where it is heading by the month's end (metrics.md §8)."""

    spent_usd: float
    projected_usd: float
    low_usd: float  # the lowest and highest projection of the single weeks the method reads
    high_usd: float
    method: str  # weekday_hour_profile, hourly_average (under a week of history) or no_history
    weeks: int  # weeks of history the weekday-hour profile read


@dataclass(frozen=True, slots=True)
class Forecast:
    """The month projection of the whole store, and of each provider."""

    month: MonthProjection
    by_provider: dict[str, MonthProjection]


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One monthly budget (the whole store's when `provider` is None) against this month's spend."""

    provider: str | None
    amount_usd: float
    spent_usd: float
    used_percent: float
    projected_usd: float
    over: bool
    projected_over: bool


_NO_PROJECTION = MonthProjection(0.0, 0.0, 0.0, 0.0, "no_history", 0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every figure of one refresh, computed from one consistent state of the store."""

    now: datetime
    time_zone: str
    usage: UsageFigures
    quotas: dict[str, QuotaSnapshot]  # by account key, in key order
    store: StoreHealth
    spool: SpoolHealth
    forecast: Forecast = field(default_factory=lambda: Forecast(_NO_PROJECTION, {}))
    budgets: tuple[BudgetStatus, ...] = ()
