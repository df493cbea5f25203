"""Which entities exist for a snapshot, and how each reads its state.

One definition serves the native integration and the MQTT publisher, so names, units and classes always
agree. The descriptions below are static data, one per kind of entity, each with the function that reads
its value from a snapshot; `catalog` binds them to the keys a snapshot has (accounts, quota metrics,
budgets, breakdown keys), and does that again only when those keys change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from functools import lru_cache
from typing import Any, Generic, NamedTuple, TypeAlias, TypeVar

from .clock import last_reset
from .devices import HUB, DeviceSpec, account_devices
from .health import INGESTION_PROBLEMS, ingestion_problems
from .kinds import DeviceClass, EntityCategory, Platform, StateClass
from .models import Breakdown, BudgetStatus, Measures, QuotaMetric, QuotaSnapshot, QuotaStatus, Snapshot, Window
from .naming import entity_slug, readable, unique_slugs
from .providers import KNOWN_QUOTA_METRICS, MoneyKind, money_kind, provider

CURRENCIES = frozenset({"USD", "EUR", "GBP", "CNY", "JPY", "CHF", "CAD", "AUD", "INR", "KRW"})
QUOTA_STATUS_OPTIONS = tuple(s.value.lower() for s in QuotaStatus)
# What each quota status reads as (en.json's state names): MQTT entities show these.
QUOTA_STATUS_TEXTS: dict[str, str] = {
    "ok": "OK",
    "near_limit": "Near limit",
    "limited": "Limited",
    "auth_required": "Auth required",
    "unsupported": "Unsupported",
    "error": "Error",
    "unknown": "Unknown",
}
# Units of time a quota metric may come in, as Home Assistant's duration units.
DURATION_UNITS = frozenset({"d", "h", "min", "s", "ms"})
MIB = 1024 * 1024
BREAKDOWN_OPTIONS = (Breakdown.MODEL, Breakdown.AGENT, Breakdown.TOOL, Breakdown.PROJECT)

Value: TypeAlias = float | int | str | bool | date | datetime | None
Attributes: TypeAlias = dict[str, Any]
SubjectT = TypeVar("SubjectT")


@dataclass(frozen=True, slots=True, kw_only=True)
class Description(Generic[SubjectT]):
    """One kind of entity: presentation, and how to read its state about a subject from a snapshot.

    `key`, `name` and `translation_key` may hold `{fields}` that the subject's binding fills in.
    """

    key: str
    name: str  # English, for MQTT discovery and entity ids
    value_fn: Callable[[Snapshot, SubjectT], Value]
    translation_key: str = ""  # the key itself when empty
    attributes_fn: Callable[[Snapshot, SubjectT], Attributes] | None = None
    platform: Platform = Platform.SENSOR
    device_class: DeviceClass | None = None
    state_class: StateClass | None = None
    unit: str | None = None
    entity_category: EntityCategory | None = None
    enabled_default: bool = True
    precision: int | None = None
    options: tuple[str, ...] | None = None
    # How the states read where Home Assistant cannot translate them (MQTT): state → text.
    state_texts: Mapping[str, str] | None = None
    resets_with: Window | None = None  # today, week or month: the period whose start is its last reset
    # Figures that stop being true while the machine sleeps (quotas, activity); totals keep their value.
    expires: bool = False


@dataclass(frozen=True, slots=True)
class EntitySpec:
    """One entity: a description bound to its subject, on one device."""

    description: Description[Any]
    subject: Any
    device: str
    key: str  # unique within the device; part of the unique id
    name: str
    translation_key: str
    placeholders: Mapping[str, str] = field(default_factory=dict)
    unit: str | None = None

    @property
    def platform(self) -> Platform:
        """The entity platform (sensor or binary sensor)."""
        return self.description.platform

    @property
    def has_attributes(self) -> bool:
        """Whether the entity has attributes besides its state."""
        return self.description.attributes_fn is not None

    def value(self, snapshot: Snapshot) -> Value:
        """Return the entity's state in `snapshot`."""
        return self.description.value_fn(snapshot, self.subject)

    def attributes(self, snapshot: Snapshot) -> Attributes | None:
        """Return the entity's attributes in `snapshot` (None for an entity without any)."""
        attributes_fn = self.description.attributes_fn
        return None if attributes_fn is None else attributes_fn(snapshot, self.subject)

    def last_reset(self, snapshot: Snapshot) -> datetime | None:
        """When the period the figure counts began, for figures that restart (None for the others)."""
        window = self.description.resets_with
        return None if window is None else last_reset(snapshot, window)


def entity_id(spec: EntitySpec, device_name: str) -> str:
    """Return the entity id Home Assistant gives an entity named `spec.name` on a device named `device_name`."""
    return f"{spec.platform}.{entity_slug(f'{device_name} {spec.name}')}"


# The subjects descriptions read about, besides the hub's (None) and an account's (its key).
class MetricRef(NamedTuple):
    """One quota metric of one account, and how its money figure reads."""

    account: str
    metric: str
    money: MoneyKind | None


class BreakdownKey(NamedTuple):
    """One key of a breakdown (a model, an agent, a tool, a project)."""

    breakdown: Breakdown
    key: str


# ---- reading figures -------------------------------------------------------------------------------------


def _figure(measures: Measures | None, measure: str) -> Value:
    """One measure by name; zero where the key has no row."""
    value: int | float = getattr(measures or Measures(), measure)
    return value


def _total(window: Window, measure: str) -> Callable[[Snapshot, None], Value]:
    return lambda s, _: _figure(s.usage.totals[window], measure)


def _split(s: Snapshot, breakdown: Breakdown, window: Window, measure: str) -> Attributes:
    """Return a measure per key of a breakdown: money to the cent, as the sensors show it; keys without one left out."""
    figures = {key: getattr(pw[window], measure) for key, pw in s.usage.breakdowns[breakdown].items()}
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items() if v}


def _splits(window: Window, measure: str, *breakdowns: Breakdown) -> Callable[[Snapshot, None], Attributes]:
    return lambda s, _: {f"by_{b.value}": _split(s, b, window, measure) for b in breakdowns}


def _account_usage(window: Window, measure: str) -> Callable[[Snapshot, str], Value]:
    def value(s: Snapshot, account: str) -> Value:
        per_window = s.usage.breakdowns[Breakdown.ACCOUNT].get(account)
        return _figure(per_window[window] if per_window else None, measure)

    return value


def _breakdown_today(measure: str) -> Callable[[Snapshot, BreakdownKey], Value]:
    def value(s: Snapshot, subject: BreakdownKey) -> Value:
        per_window = s.usage.breakdowns[subject.breakdown].get(subject.key)
        return _figure(per_window[Window.TODAY] if per_window else None, measure)

    return value


def _mib(size: int) -> float:
    """Return a file size in MiB, as people read store sizes (to the KiB)."""
    return round(size / MIB, 3)


def _oldest_spool_age(s: Snapshot, _: None) -> int | None:
    ages = [a for a in (s.spool.hook_spool_oldest_age_seconds, s.spool.spool_oldest_age_seconds) if a is not None]
    return round(max(ages)) if ages else None


def _ingestion_attributes(s: Snapshot, _: None) -> Attributes:
    problems = ingestion_problems(s)
    return {name: name in problems for name in INGESTION_PROBLEMS}


def _projection_attributes(s: Snapshot, _: None) -> Attributes:
    """How the projection was made, its range, and each provider's (metrics.md §8)."""
    month = s.forecast.month
    return {
        "spent": round(month.spent_usd, 2),
        "low": round(month.low_usd, 2),
        "high": round(month.high_usd, 2),
        "method": month.method,
        "weeks_of_history": month.weeks,
        "by_provider": {key: round(p.projected_usd, 2) for key, p in s.forecast.by_provider.items()},
    }


def _budget(s: Snapshot, who: str | None) -> BudgetStatus | None:
    return next((b for b in s.budgets if b.provider == who), None)


def _budget_figure(read: Callable[[BudgetStatus], Value]) -> Callable[[Snapshot, str | None], Value]:
    def value(s: Snapshot, who: str | None) -> Value:
        found = _budget(s, who)
        return None if found is None else read(found)

    return value


def _budget_attributes(s: Snapshot, who: str | None) -> Attributes:
    found = _budget(s, who)
    if found is None:
        return {}
    return {"budget": found.amount_usd, "spent": round(found.spent_usd, 2), "projected": round(found.projected_usd, 2)}


def _quota_figure(read: Callable[[QuotaSnapshot], Value]) -> Callable[[Snapshot, str], Value]:
    def value(s: Snapshot, account: str) -> Value:
        quota = s.quotas.get(account)
        return None if quota is None else read(quota)

    return value


def _limited(quota: QuotaSnapshot) -> bool:
    full = any(m.used_percent is not None and m.used_percent >= 100 for m in quota.metrics.values())
    return quota.status is QuotaStatus.LIMITED or full


def _status_attributes(s: Snapshot, account: str) -> Attributes:
    quota = s.quotas.get(account)
    if quota is None:
        return {}
    shown = {"message": quota.message, "observed_at": quota.observed_at, "stale": quota.stale}
    return {**shown, "metrics_left_out": quota.metrics_left_out} if quota.metrics_left_out else shown


def _metric(s: Snapshot, ref: MetricRef) -> QuotaMetric | None:
    quota = s.quotas.get(ref.account)
    return None if quota is None else quota.metrics.get(ref.metric)


def _metric_field(read: Callable[[QuotaMetric, MetricRef], Value]) -> Callable[[Snapshot, MetricRef], Value]:
    def value(s: Snapshot, ref: MetricRef) -> Value:
        metric = _metric(s, ref)
        return None if metric is None else read(metric, ref)

    return value


def metric_reading(metric: QuotaMetric, kind: MoneyKind | None) -> float | None:
    """Return the figure a quota metric's sensor shows.

    Percent used, or in the metric's own unit the money left (a balance), spent or allowed (a limit), or
    the amount used.
    """
    used, limit, remaining = metric.used, metric.limit, metric.remaining
    both = limit is not None and (used is not None or remaining is not None)
    if kind is None and metric.unit == "%":
        return None if metric.used_percent is None else round(metric.used_percent, 2)
    if kind is MoneyKind.BALANCE:
        if remaining is not None:
            return remaining
        # A balance that comes as `used` alone (Codex's credit balance) is the balance itself.
        return limit - used if both and used is not None and limit is not None else used
    if kind is MoneyKind.LIMIT:
        if limit is not None:
            return limit
        return used + remaining if used is not None and remaining is not None else None
    if used is not None:
        return used
    return limit - remaining if both and limit is not None and remaining is not None else None


def _metric_attributes(s: Snapshot, ref: MetricRef) -> Attributes:
    m = _metric(s, ref)
    if m is None:
        return {}
    percent = None if m.used_percent is None else round(m.used_percent, 2)
    return {"window": m.window, "used": m.used, "limit": m.limit, "remaining": m.remaining, "unit": m.unit,
            "used_percent": percent, "resets_at": m.resets_at}  # fmt: skip


def _rate_attributes(s: Snapshot, ref: MetricRef) -> Attributes:
    m = _metric(s, ref)
    return {"rate_percent_per_hour": None if m is None else m.rate_percent_per_hour}


# ---- the descriptions ------------------------------------------------------------------------------------

_TODAY, _H24, _D7, _D30, _ALL, _WEEK, _MONTH = (Window.TODAY, Window.H24, Window.D7, Window.D30, Window.ALL,
                                                Window.WEEK, Window.MONTH)  # fmt: skip
_EVERY_SPLIT = (Breakdown.PROVIDER, Breakdown.MODEL, Breakdown.AGENT, Breakdown.PROJECT)
_COST_SPLIT = (Breakdown.PROVIDER, Breakdown.MODEL)
_MONEY: dict[str, Any] = {"device_class": DeviceClass.MONETARY, "unit": "USD", "precision": 2}
_TOKENS: dict[str, Any] = {"unit": "tokens"}
_DIAGNOSTIC: dict[str, Any] = {"state_class": StateClass.MEASUREMENT, "entity_category": EntityCategory.DIAGNOSTIC}
_SIZE: dict[str, Any] = {**_DIAGNOSTIC, "device_class": DeviceClass.DATA_SIZE, "unit": "MiB", "precision": 1}
_AGE: dict[str, Any] = {**_DIAGNOSTIC, "device_class": DeviceClass.DURATION, "unit": "s", "precision": 0}
_TOKEN_PARTS = (("input", "Input"), ("output", "Output"), ("cache_read", "Cache read"),
                ("cache_write", "Cache write"), ("reasoning", "Reasoning"))  # fmt: skip

HubDescription: TypeAlias = Description[None]

HUB_DESCRIPTIONS: tuple[HubDescription, ...] = (
    HubDescription(key="cost_today", name="Cost today", value_fn=_total(_TODAY, "cost_usd"), **_MONEY,
                   state_class=StateClass.TOTAL, resets_with=_TODAY,
                   attributes_fn=_splits(_TODAY, "cost_usd", *_EVERY_SPLIT)),
    HubDescription(key="cost_week", name="Cost this week", value_fn=_total(_WEEK, "cost_usd"), **_MONEY,
                   state_class=StateClass.TOTAL, resets_with=_WEEK,
                   attributes_fn=_splits(_WEEK, "cost_usd", *_COST_SPLIT)),
    HubDescription(key="cost_month", name="Cost this month", value_fn=_total(_MONTH, "cost_usd"), **_MONEY,
                   state_class=StateClass.TOTAL, resets_with=_MONTH,
                   attributes_fn=_splits(_MONTH, "cost_usd", *_EVERY_SPLIT)),
    HubDescription(key="projected_month_cost", name="Projected month cost", **_MONEY,
                   value_fn=lambda s, _: round(s.forecast.month.projected_usd, 2),
                   attributes_fn=_projection_attributes),
    HubDescription(key="cost_7d", name="Cost 7 days", value_fn=_total(_D7, "cost_usd"), **_MONEY,
                   attributes_fn=_splits(_D7, "cost_usd", *_COST_SPLIT)),
    HubDescription(key="cost_30d", name="Cost 30 days", value_fn=_total(_D30, "cost_usd"), **_MONEY,
                   attributes_fn=_splits(_D30, "cost_usd", *_EVERY_SPLIT)),
    HubDescription(key="cost_all_time", name="Cost all time", value_fn=_total(_ALL, "cost_usd"), **_MONEY,
                   state_class=StateClass.TOTAL, attributes_fn=_splits(_ALL, "cost_usd", *_COST_SPLIT)),
    HubDescription(key="tokens_today", name="Tokens today", value_fn=_total(_TODAY, "total_tokens"), **_TOKENS,
                   state_class=StateClass.TOTAL_INCREASING,
                   attributes_fn=_splits(_TODAY, "total_tokens", Breakdown.MODEL, Breakdown.AGENT)),
    *(HubDescription(key=f"{part}_tokens_today", name=f"{label} tokens today", **_TOKENS,
                     value_fn=_total(_TODAY, f"{part}_tokens"), state_class=StateClass.TOTAL_INCREASING,
                     enabled_default=False)
      for part, label in _TOKEN_PARTS),
    *(HubDescription(key=f"tokens_{window}", name=f"Tokens {label}", value_fn=_total(window, "total_tokens"),
                     state_class=StateClass.MEASUREMENT, **_TOKENS)
      for window, label in ((_H24, "24 hours"), (_D7, "7 days"), (_D30, "30 days"))),
    *(HubDescription(key=f"{kind}_{window}", name=f"{kind.capitalize()} {label}", value_fn=_total(window, measure),
                     state_class=StateClass.TOTAL, resets_with=window, unit=unit)
      for window, label in ((_WEEK, "this week"), (_MONTH, "this month"))
      for measure, kind, unit in (("total_tokens", "tokens", "tokens"), ("requests", "requests", None))),
    HubDescription(key="requests_today", name="Requests today", value_fn=_total(_TODAY, "requests"),
                   state_class=StateClass.TOTAL_INCREASING),
    HubDescription(key="messages_today", name="Messages today", value_fn=_total(_TODAY, "messages"),
                   state_class=StateClass.TOTAL_INCREASING),
    HubDescription(key="errors_today", name="Errors today", value_fn=_total(_TODAY, "errors"),
                   state_class=StateClass.TOTAL_INCREASING),
    HubDescription(key="errors_24h", name="Errors 24 hours", value_fn=_total(_H24, "errors"),
                   state_class=StateClass.MEASUREMENT),
    HubDescription(key="tool_calls_today", name="Tool calls today", value_fn=_total(_TODAY, "tool_calls"),
                   state_class=StateClass.TOTAL_INCREASING,
                   attributes_fn=_splits(_TODAY, "tool_calls", Breakdown.TOOL)),
    HubDescription(key="sessions_today", name="Sessions today", value_fn=_total(_TODAY, "sessions"),
                   state_class=StateClass.TOTAL_INCREASING),
    HubDescription(key="active_sessions", name="Active sessions", value_fn=lambda s, _: s.usage.active_sessions,
                   state_class=StateClass.MEASUREMENT, expires=True),
    HubDescription(key="last_activity", name="Last activity", value_fn=lambda s, _: s.store.last_event_at,
                   device_class=DeviceClass.TIMESTAMP),
    HubDescription(key="store_size", name="Store size", value_fn=lambda s, _: _mib(s.store.db_size_bytes), **_SIZE),
    HubDescription(key="wal_size", name="WAL size", value_fn=lambda s, _: _mib(s.store.wal_size_bytes), **_SIZE),
    HubDescription(key="hook_spool_files", name="Hook spool files", value_fn=lambda s, _: s.spool.hook_spool_files,
                   **_DIAGNOSTIC),
    # Usage rows with no proper time or impossible figures: in no figure (metrics.md §2.9).
    HubDescription(key="rows_left_out", name="Rows left out", value_fn=lambda s, _: s.store.rows_left_out,
                   **_DIAGNOSTIC),
    HubDescription(key="spool_pending", name="Spool pending", value_fn=lambda s, _: s.spool.spool_pending,
                   **_DIAGNOSTIC),
    HubDescription(key="spool_failed", name="Spool failed", value_fn=lambda s, _: s.spool.spool_failed,
                   attributes_fn=lambda s, _: {"last_error": s.spool.spool_last_error}, **_DIAGNOSTIC),
    HubDescription(key="oldest_spool_age", name="Oldest spool age", value_fn=_oldest_spool_age, **_AGE),
    HubDescription(key="last_quota_snapshot", name="Last quota snapshot",
                   value_fn=lambda s, _: s.store.last_snapshot_at, device_class=DeviceClass.TIMESTAMP,
                   entity_category=EntityCategory.DIAGNOSTIC),
    HubDescription(key="rollup_watermark", name="Rollup watermark", value_fn=lambda s, _: s.store.rollup_watermark,
                   device_class=DeviceClass.DATE, entity_category=EntityCategory.DIAGNOSTIC),
    HubDescription(key="ingestion_problem", name="Ingestion problem", platform=Platform.BINARY_SENSOR,
                   value_fn=lambda s, _: bool(ingestion_problems(s)), device_class=DeviceClass.PROBLEM,
                   entity_category=EntityCategory.DIAGNOSTIC, attributes_fn=_ingestion_attributes),
)  # fmt: skip

# A budget's share used and its two problems: the whole store's (subject None), then each provider's.
_BUDGET_FIGURES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("budget_used", "budget used", {"value_fn": _budget_figure(lambda b: round(b.used_percent, 2)), "unit": "%",
                                    "state_class": StateClass.MEASUREMENT, "precision": 1}),
    ("over_budget", "over budget", {"value_fn": _budget_figure(lambda b: b.over),
                                    "platform": Platform.BINARY_SENSOR, "device_class": DeviceClass.PROBLEM}),
    ("projected_over_budget", "projected over budget",
     {"value_fn": _budget_figure(lambda b: b.projected_over), "platform": Platform.BINARY_SENSOR,
      "device_class": DeviceClass.PROBLEM}),
)  # fmt: skip
STORE_BUDGET_DESCRIPTIONS: tuple[Description[str | None], ...] = tuple(
    Description(key=key, name=words.capitalize(), attributes_fn=_budget_attributes, **kind)
    for key, words, kind in _BUDGET_FIGURES
)
PROVIDER_BUDGET_DESCRIPTIONS: tuple[Description[str | None], ...] = tuple(
    Description(key=f"{key}_{{slug}}", name=f"{{provider}} {words}", translation_key=f"provider_{key}",
                attributes_fn=_budget_attributes, **kind)
    for key, words, kind in _BUDGET_FIGURES
)  # fmt: skip

ACCOUNT_DESCRIPTIONS: tuple[Description[str], ...] = (
    Description(key="cost_today", name="Cost today", value_fn=_account_usage(_TODAY, "cost_usd"), **_MONEY,
                state_class=StateClass.TOTAL, resets_with=_TODAY),
    Description(key="cost_month", name="Cost this month", value_fn=_account_usage(_MONTH, "cost_usd"), **_MONEY,
                state_class=StateClass.TOTAL, resets_with=_MONTH),
    Description(key="cost_30d", name="Cost 30 days", value_fn=_account_usage(_D30, "cost_usd"), **_MONEY),
    Description(key="tokens_today", name="Tokens today", value_fn=_account_usage(_TODAY, "total_tokens"),
                state_class=StateClass.TOTAL_INCREASING, **_TOKENS),
    Description(key="requests_today", name="Requests today", value_fn=_account_usage(_TODAY, "requests"),
                state_class=StateClass.TOTAL_INCREASING),
)  # fmt: skip
# An account with a quota in the store has these too.
QUOTA_DESCRIPTIONS: tuple[Description[str], ...] = (
    Description(key="quota_status", name="Quota status", value_fn=_quota_figure(lambda q: q.status.value.lower()),
                device_class=DeviceClass.ENUM, options=QUOTA_STATUS_OPTIONS, state_texts=QUOTA_STATUS_TEXTS,
                attributes_fn=_status_attributes, expires=True),
    Description(key="snapshot_age", name="Snapshot age", value_fn=_quota_figure(lambda q: round(q.age_seconds)),
                **_AGE),
    Description(key="limited", name="Limited", value_fn=_quota_figure(_limited), platform=Platform.BINARY_SENSOR,
                device_class=DeviceClass.PROBLEM, expires=True),
)  # fmt: skip


class MetricKind(Enum):
    """What a quota metric's unit makes of its sensor."""

    PERCENT = "percent"
    MONEY = "money"
    DURATION = "duration"
    OTHER = "other"  # a rate (USD/h), a count (tokens, requests, credits, …) or no unit at all


# A quota metric's reading, by the kind its unit says; a unit of None is the metric's own unit. The name is
# the metric's ("5-hour usage", or its key as words), the translation key `quota_<metric>` or `quota_metric`.
_READING: dict[str, Any] = {"key": "quota_{slug}", "name": "{metric}", "translation_key": "quota_{known}",
                            "value_fn": _metric_field(lambda m, ref: metric_reading(m, ref.money)),
                            "attributes_fn": _metric_attributes, "expires": True}  # fmt: skip
METRIC_READINGS: dict[MetricKind, Description[MetricRef]] = {
    MetricKind.PERCENT: Description(**_READING, unit="%", state_class=StateClass.MEASUREMENT, precision=1),
    MetricKind.MONEY: Description(**_READING, device_class=DeviceClass.MONETARY, precision=2),
    MetricKind.DURATION: Description(**_READING, device_class=DeviceClass.DURATION, state_class=StateClass.MEASUREMENT),
    MetricKind.OTHER: Description(**_READING, state_class=StateClass.MEASUREMENT),
}
# A percent metric with a reset: when it runs out at its recent rate.
METRIC_RUNS_OUT: Description[MetricRef] = Description(
    key="runs_out_{slug}", name="{metric} runs out", translation_key="quota_runs_out",
    value_fn=_metric_field(lambda m, _: m.exhausted_at), attributes_fn=_rate_attributes,
    device_class=DeviceClass.TIMESTAMP, expires=True,
)  # fmt: skip
# Any metric with a reset: when it resets.
METRIC_RESET: Description[MetricRef] = Description(
    key="reset_{slug}", name="{metric} reset", translation_key="quota_{known}_reset",
    value_fn=_metric_field(lambda m, _: m.resets_at), device_class=DeviceClass.TIMESTAMP,
)  # fmt: skip

# Per breakdown, a figure for each of its keys today; the key names the entity ("{model}", "{tool}", …).
BREAKDOWN_DESCRIPTIONS: dict[Breakdown, Description[BreakdownKey]] = {
    breakdown: Description(key=f"{breakdown}_{{slug}}_cost_today", name=f"{label} cost today ({{{breakdown}}})",
                           translation_key=f"{breakdown}_cost_today", value_fn=_breakdown_today("cost_usd"),
                           **_MONEY, state_class=StateClass.TOTAL, resets_with=_TODAY)
    for breakdown, label in ((Breakdown.MODEL, "Model"), (Breakdown.AGENT, "Agent"), (Breakdown.PROJECT, "Project"))
} | {
    Breakdown.TOOL: Description(key="tool_{slug}_tool_calls_today", name="Tool calls today ({tool})",
                                translation_key="tool_tool_calls_today", value_fn=_breakdown_today("tool_calls"),
                                state_class=StateClass.TOTAL_INCREASING),
}  # fmt: skip


# Every description, for the checks of translations and icons.
DESCRIPTIONS: tuple[Description[Any], ...] = (
    *HUB_DESCRIPTIONS,
    *STORE_BUDGET_DESCRIPTIONS,
    *PROVIDER_BUDGET_DESCRIPTIONS,
    *ACCOUNT_DESCRIPTIONS,
    *QUOTA_DESCRIPTIONS,
    *METRIC_READINGS.values(),
    METRIC_RUNS_OUT,
    METRIC_RESET,
    *BREAKDOWN_DESCRIPTIONS.values(),
)


# ---- binding the descriptions to a snapshot's keys ----------------------------------------------------------


class MetricShape(NamedTuple):
    """What of a quota metric decides its entities: its slug, unit, money kind and whether it resets."""

    key: str
    slug: str
    unit: str | None
    kind: MetricKind
    money: MoneyKind | None
    resets: bool


class AccountShape(NamedTuple):
    """An account device and, when it has a quota, the shape of each of its metrics."""

    device: DeviceSpec
    metrics: tuple[MetricShape, ...] | None


class Keys(NamedTuple):
    """Every key of a snapshot that decides which entities exist: equal keys, equal entities."""

    budgets: tuple[str | None, ...]
    breakdowns: tuple[tuple[Breakdown, tuple[str, ...]], ...]
    accounts: tuple[AccountShape, ...]


def _bind(description: Description[SubjectT], subject: SubjectT, device: str, *, unit: str | None = None,
          placeholders: Mapping[str, str] | None = None, **fields: str) -> EntitySpec:  # fmt: skip
    """Bind a description to its subject on a device, filling `{fields}` into its key and names."""
    return EntitySpec(
        description=description,
        subject=subject,
        device=device,
        key=description.key.format(**fields),
        name=description.name.format(**fields),
        translation_key=(description.translation_key or description.key).format(**fields),
        placeholders=placeholders or {},
        unit=unit if description.unit is None else description.unit,
    )


def metric_slugs(quota: QuotaSnapshot) -> dict[str, str]:
    """Each quota metric's part of its entities' keys: one of its own, apart from Quota status's."""
    return unique_slugs(quota.metrics, taken={"status"})


def budget_slugs(budgets: tuple[BudgetStatus, ...] | tuple[str | None, ...]) -> dict[str, str]:
    """Return the part of each provider budget's entity keys that names its provider."""
    providers = (b.provider if isinstance(b, BudgetStatus) else b for b in budgets)
    return unique_slugs(p for p in providers if p is not None)


def _metric_shape(device: DeviceSpec, key: str, metric: QuotaMetric, key_slug: str) -> MetricShape:
    unit = metric.unit or None
    currency = (unit or "").upper() if (unit or "").upper() in CURRENCIES else None
    if currency:
        kind, unit = MetricKind.MONEY, currency
    elif unit == "%":
        kind = MetricKind.PERCENT
    else:
        kind = MetricKind.DURATION if unit in DURATION_UNITS else MetricKind.OTHER
    money = money_kind(device.provider_id or "", key, metric.window) if currency else None
    return MetricShape(key, key_slug, unit, kind, money, metric.resets_at is not None)


def keys_of(snapshot: Snapshot, breakdown_sensors: frozenset[Breakdown]) -> Keys:
    """Return the keys of `snapshot` that decide its entities."""
    accounts = []
    for key, device in account_devices(snapshot).items():
        quota = snapshot.quotas.get(key)
        metrics = None
        if quota is not None:
            slugs = metric_slugs(quota)
            metrics = tuple(_metric_shape(device, k, m, slugs[k]) for k, m in quota.metrics.items())
        accounts.append(AccountShape(device, metrics))
    breakdowns = tuple((b, tuple(snapshot.usage.breakdowns[b])) for b in BREAKDOWN_OPTIONS if b in breakdown_sensors)
    return Keys(tuple(b.provider for b in snapshot.budgets), breakdowns, tuple(accounts))


def _metric_entities(device: str, shape: MetricShape) -> list[EntitySpec]:
    ref = MetricRef(device, shape.key, shape.money)
    # A provider whose "balance" counts what was spent gets a name that says so.
    name_key = f"{shape.key}_spent" if shape.money is MoneyKind.SPEND and "balance" in shape.key else shape.key
    known = name_key in KNOWN_QUOTA_METRICS
    metric = KNOWN_QUOTA_METRICS.get(name_key) or readable(shape.key)
    fields = {"slug": shape.slug, "metric": metric, "known": name_key if known else "metric"}
    shown = {} if known else {"metric": readable(shape.key)}
    specs = [_bind(METRIC_READINGS[shape.kind], ref, device, unit=shape.unit, placeholders=shown, **fields)]
    if shape.resets and shape.kind is MetricKind.PERCENT:
        specs.append(_bind(METRIC_RUNS_OUT, ref, device, placeholders={"metric": metric}, **fields))
    if shape.resets:
        specs.append(_bind(METRIC_RESET, ref, device, placeholders=shown, **fields))
    return specs


@lru_cache(maxsize=8)
def entities_for(keys: Keys) -> tuple[EntitySpec, ...]:
    """Every entity for a set of keys: hub first, then each account device."""
    specs = [_bind(d, None, HUB) for d in HUB_DESCRIPTIONS]
    slugs = budget_slugs(keys.budgets)
    for who in keys.budgets:
        if who is None:
            specs += (_bind(d, who, HUB) for d in STORE_BUDGET_DESCRIPTIONS)
        else:
            name = provider(who).name
            specs += (_bind(d, who, HUB, placeholders={"provider": name}, slug=slugs[who], provider=name)
                      for d in PROVIDER_BUDGET_DESCRIPTIONS)  # fmt: skip
    for breakdown, breakdown_keys in keys.breakdowns:
        description = BREAKDOWN_DESCRIPTIONS[breakdown]
        key_slugs = unique_slugs(breakdown_keys)  # models `gpt-5` and `gpt_5` stay two sensors
        specs += (_bind(description, BreakdownKey(breakdown, key), HUB, placeholders={breakdown.value: key},
                        slug=key_slugs[key], **{breakdown.value: key})
                  for key in breakdown_keys)  # fmt: skip
    for account in keys.accounts:
        device = account.device.key
        specs += (_bind(d, device, device) for d in ACCOUNT_DESCRIPTIONS)
        if account.metrics is not None:
            specs += (_bind(d, device, device) for d in QUOTA_DESCRIPTIONS)
            for shape in account.metrics:
                specs += _metric_entities(device, shape)
    return tuple(specs)


def catalog(snapshot: Snapshot, breakdown_sensors: frozenset[Breakdown] = frozenset()) -> tuple[EntitySpec, ...]:
    """Every entity the snapshot supports, hub first, then each account device."""
    return entities_for(keys_of(snapshot, breakdown_sensors))


# Default icons by translation key (icons.json says the same for the native entities, and adds icons by
# state); entities with a device class that has its own icon have none here.
ICONS: dict[str, str] = {
    **dict.fromkeys((f"tokens_{w}" for w in ("today", "24h", "7d", "30d", "week", "month")), "mdi:counter"),
    **{f"{part}_tokens_today": "mdi:counter" for part, _ in _TOKEN_PARTS},
    **dict.fromkeys(("requests_today", "requests_week", "requests_month"), "mdi:send"),
    "projected_month_cost": "mdi:chart-line",
    "budget_used": "mdi:wallet-outline",
    "provider_budget_used": "mdi:wallet-outline",
    "quota_runs_out": "mdi:timer-sand",
    "messages_today": "mdi:message-text-outline",
    "errors_today": "mdi:alert-circle-outline",
    "errors_24h": "mdi:alert-circle-outline",
    "tool_calls_today": "mdi:tools",
    "tool_tool_calls_today": "mdi:tools",
    "sessions_today": "mdi:console",
    "active_sessions": "mdi:console-line",
    "last_activity": "mdi:clock-outline",
    "store_size": "mdi:database",
    "wal_size": "mdi:database-clock",
    "hook_spool_files": "mdi:tray-full",
    "spool_pending": "mdi:tray-full",
    "spool_failed": "mdi:tray-alert",
    "rollup_watermark": "mdi:calendar-check",
    "rows_left_out": "mdi:table-remove",
    "quota_status": "mdi:gauge",
    "limited": "mdi:speedometer",
    **{f"quota_{key}": "mdi:gauge" for key in (*KNOWN_QUOTA_METRICS, "metric")},
    **{f"quota_{key}_reset": "mdi:timer-refresh-outline" for key in (*KNOWN_QUOTA_METRICS, "metric")},
}
