"""Which entities exist for a snapshot, and how each gets its state: one definition for both the
native integration and the MQTT publisher (so names, units and classes always agree).

Device classes, state classes, units and categories are Home Assistant's own string values; the
adapters turn them into HA enums (native) or discovery fields (MQTT).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

from .clock import parse_time, period_start
from .models import Breakdown, BudgetStatus, Measures, QuotaMetric, QuotaSnapshot, QuotaStatus, Snapshot, Window
from .providers import KNOWN_QUOTA_METRICS, MoneyKind, money_kind, provider

HUB = "hub"
HUB_NAME = "OpenUsage"
HUB_MANUFACTURER = "OpenUsage"
HUB_MODEL = "Telemetry store"
INGESTION_STUCK_SECONDS = 60.0
CORRUPT_BACKUP_RECENT_SECONDS = 24 * 3600.0
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
_DURATION_UNITS = {"d": "d", "h": "h", "min": "min", "s": "s", "ms": "ms"}
MIB = 1024 * 1024
BREAKDOWN_OPTIONS = (Breakdown.MODEL, Breakdown.AGENT, Breakdown.TOOL, Breakdown.PROJECT)

Value: TypeAlias = float | int | str | bool | datetime | None

# Default icons by translation key (icons.json says the same for the native entities, and adds icons
# by state); entities with a device class that has its own icon have none here.
ICONS: dict[str, str] = {
    **dict.fromkeys(
        ("tokens_today", "tokens_24h", "tokens_7d", "tokens_30d", "tokens_week", "tokens_month"), "mdi:counter"
    ),
    "requests_week": "mdi:send",
    "requests_month": "mdi:send",
    "projected_month_cost": "mdi:chart-line",
    "budget_used": "mdi:wallet-outline",
    "provider_budget_used": "mdi:wallet-outline",
    "quota_runs_out": "mdi:timer-sand",
    **{f"{part}_tokens_today": "mdi:counter" for part in ("input", "output", "cache_read", "cache_write", "reasoning")},
    "requests_today": "mdi:send",
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


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A device: the hub ("OpenUsage") or one provider account."""

    key: str
    name: str
    model: str
    manufacturer: str
    provider_id: str | None = None
    account_id: str | None = None
    shown_account: str | None = None  # the account, where the name must tell it apart from another

    def name_on(self, machine: str) -> str:
        """The name with the machine it is seen from: "Claude Code (laptop)", "OpenRouter (work, laptop)"."""
        return f"{self.model} ({', '.join(filter(None, (self.shown_account, machine)))})"


@dataclass(frozen=True, slots=True, kw_only=True)
class EntitySpec:
    """One entity: identity, presentation and how to read its state from a snapshot."""

    device: str
    key: str  # unique within the device; part of the unique id
    platform: str = "sensor"
    translation_key: str
    placeholders: Mapping[str, str] = field(default_factory=dict)
    name: str  # English name, for MQTT discovery
    value: Callable[[Snapshot], Value]
    attributes: Callable[[Snapshot], dict[str, Any]] | None = None
    device_class: str | None = None
    state_class: str | None = None
    unit: str | None = None
    entity_category: str | None = None
    enabled_default: bool = True
    precision: int | None = None
    options: tuple[str, ...] | None = None
    # How the states read where Home Assistant cannot translate them (MQTT): state → text.
    state_texts: Mapping[str, str] | None = None
    resets_with: Window | None = None  # today, week or month: the period whose start is its last reset
    # Figures that stop being true while the machine sleeps (quotas, activity); totals keep their value.
    expires: bool = False


def slug(text: str, limit: int = 64) -> str:
    """Lower-case [a-z0-9_] form of a name from the store: safe in ids and MQTT topics."""
    cleaned = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 9] + "_" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return cleaned or "unknown"


def _plainness(key: str) -> tuple[int, str]:
    """How much slugging changes a key (then the key): the plainest of keys that slug alike keeps the slug."""
    return sum(not (c.islower() or c.isdigit() or c == "_") for c in key), key


def unique_slugs(keys: Iterable[str], taken: Collection[str] = ()) -> dict[str, str]:
    """A slug per key that no other key has, nor a `taken` one: of keys that slug alike (`a.b`, `a_b`,
    `A-B`), the plainest keeps the plain slug and the others add a hash of their own text."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(slug(key), []).append(key)
    found: dict[str, str] = {}
    for plain, members in groups.items():
        members.sort(key=_plainness)
        for index, key in enumerate(members):
            unique = index == 0 and plain not in taken
            found[key] = plain if unique else f"{plain}_{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    return found


def metric_slugs(quota: QuotaSnapshot) -> dict[str, str]:
    """Each quota metric's part of its entities' keys: one of its own, apart from Quota status's."""
    return unique_slugs(quota.metrics, taken={"status"})


def entity_slug(text: str) -> str:
    """The part of an entity id Home Assistant makes of a name: accents dropped, lower case, runs of
    anything else as `_` (as its `slugify`)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_") or "unknown"


def entity_id(spec: EntitySpec, device_name: str) -> str:
    """The entity id Home Assistant gives an entity named `spec.name` on a device named `device_name`."""
    return f"{spec.platform}.{entity_slug(f'{device_name} {spec.name}')}"


def readable(key: str) -> str:
    """A metric key as words: `usage_five_hour` → `Usage five hour`."""
    words = re.sub(r"[_\-]+", " ", key).strip()
    return words[:1].upper() + words[1:] if words else key


def last_reset(snapshot: Snapshot, window: Window = Window.TODAY) -> datetime:
    """When the period `window` stands for (today, this week, this month) began, in the snapshot's zone."""
    now = parse_time(snapshot.now)
    assert now is not None
    return period_start(window, now, ZoneInfo(snapshot.time_zone))


def _figure(measures: Measures | None, measure: str) -> Value:
    """One measure by name; zero where the key has no row."""
    value: int | float = getattr(measures or Measures(), measure)
    return value


def _total(window: Window, measure: str) -> Callable[[Snapshot], Value]:
    return lambda s: _figure(s.usage.totals[window], measure)


def _split(breakdown: Breakdown, window: Window, measure: str) -> Callable[[Snapshot], dict[str, Any]]:
    def attributes(s: Snapshot) -> dict[str, Any]:
        per_key = s.usage.breakdowns[breakdown]
        figures = {key: getattr(pw[window], measure) for key, pw in per_key.items()}
        # Money to the cent, as the sensors show it; keys without a figure are left out.
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items() if v}

    return attributes


def _breakdown_attributes(window: Window, measure: str, *breakdowns: Breakdown) -> Callable[[Snapshot], dict[str, Any]]:
    def attributes(s: Snapshot) -> dict[str, Any]:
        return {f"by_{b.value}": _split(b, window, measure)(s) for b in breakdowns}

    return attributes


def _timestamp(text: str | None) -> datetime | None:
    return parse_time(text) if text else None


def ingestion_problems(snapshot: Snapshot) -> list[str]:
    """Why ingestion looks unhealthy (empty when it does not)."""
    spool, store = snapshot.spool, snapshot.store
    problems = []
    age = spool.hook_spool_oldest_age_seconds
    if age is not None and age > INGESTION_STUCK_SECONDS:
        problems.append("hook_spool_stuck")
    if spool.spool_failed:
        problems.append("spool_failed")
    backup = _timestamp(store.corrupt_backup_at)
    now = parse_time(snapshot.now)
    if backup and now and (now - backup).total_seconds() < CORRUPT_BACKUP_RECENT_SECONDS:
        problems.append("corrupt_store_reset")
    return problems


def _hub_entities() -> list[EntitySpec]:
    t, h24, d7, d30, all_ = Window.TODAY, Window.H24, Window.D7, Window.D30, Window.ALL
    cost_split = _breakdown_attributes
    every_split = (Breakdown.PROVIDER, Breakdown.MODEL, Breakdown.AGENT, Breakdown.PROJECT)
    periods = ((t, "cost_today", "Cost today", every_split),
               (Window.WEEK, "cost_week", "Cost this week", (Breakdown.PROVIDER, Breakdown.MODEL)),
               (Window.MONTH, "cost_month", "Cost this month", every_split))  # fmt: skip
    specs = [
        *(
            _money(
                HUB,
                key,
                name,
                _total(window, "cost_usd"),
                state_class="total",
                resets_with=window,
                attributes=cost_split(window, "cost_usd", *splits),
            )
            for window, key, name, splits in periods
        ),
        _money(HUB, "projected_month_cost", "Projected month cost", _projected, attributes=_projection_attributes),
        _money(
            HUB,
            "cost_7d",
            "Cost 7 days",
            _total(d7, "cost_usd"),
            attributes=cost_split(d7, "cost_usd", Breakdown.PROVIDER, Breakdown.MODEL),
        ),
        _money(
            HUB,
            "cost_30d",
            "Cost 30 days",
            _total(d30, "cost_usd"),
            attributes=cost_split(d30, "cost_usd", *every_split),
        ),
        _money(
            HUB,
            "cost_all_time",
            "Cost all time",
            _total(all_, "cost_usd"),
            state_class="total",
            attributes=cost_split(all_, "cost_usd", Breakdown.PROVIDER, Breakdown.MODEL),
        ),
        EntitySpec(
            device=HUB,
            key="tokens_today",
            translation_key="tokens_today",
            name="Tokens today",
            value=_total(t, "total_tokens"),
            state_class="total_increasing",
            attributes=cost_split(t, "total_tokens", Breakdown.MODEL, Breakdown.AGENT),
            unit="tokens",
        ),
    ]
    for part, label in (("input", "Input"), ("output", "Output"), ("cache_read", "Cache read"),
                        ("cache_write", "Cache write"), ("reasoning", "Reasoning")):  # fmt: skip
        specs.append(_hub(f"{part}_tokens_today", f"{label} tokens today", _total(t, f"{part}_tokens"),
                          state_class="total_increasing", enabled_default=False, unit="tokens"))  # fmt: skip
    for window, label in ((h24, "24 hours"), (d7, "7 days"), (d30, "30 days")):
        specs.append(_hub(f"tokens_{window}", f"Tokens {label}", _total(window, "total_tokens"),
                          state_class="measurement", unit="tokens"))  # fmt: skip
    for window, label in ((Window.WEEK, "this week"), (Window.MONTH, "this month")):
        for measure, kind, unit in (("total_tokens", "tokens", "tokens"), ("requests", "requests", None)):
            specs.append(_hub(f"{kind}_{window}", f"{kind.capitalize()} {label}", _total(window, measure),
                              state_class="total", resets_with=window, unit=unit))  # fmt: skip
    counters = (
        ("requests_today", "Requests today", t, "requests", "total_increasing", None),
        ("messages_today", "Messages today", t, "messages", "total_increasing", None),
        ("errors_today", "Errors today", t, "errors", "total_increasing", None),
        ("errors_24h", "Errors 24 hours", h24, "errors", "measurement", None),
        (
            "tool_calls_today",
            "Tool calls today",
            t,
            "tool_calls",
            "total_increasing",
            _breakdown_attributes(t, "tool_calls", Breakdown.TOOL),
        ),
        ("sessions_today", "Sessions today", t, "sessions", "total_increasing", None),
    )
    for key, name, window, measure, state_class, attrs in counters:
        specs.append(
            EntitySpec(
                device=HUB,
                key=key,
                translation_key=key,
                name=name,
                value=_total(window, measure),
                state_class=state_class,
                attributes=attrs,
            )
        )
    specs += [
        EntitySpec(
            device=HUB,
            key="active_sessions",
            translation_key="active_sessions",
            name="Active sessions",
            value=lambda s: s.usage.active_sessions,
            state_class="measurement",
            expires=True,
        ),
        EntitySpec(
            device=HUB,
            key="last_activity",
            translation_key="last_activity",
            name="Last activity",
            value=lambda s: _timestamp(s.store.last_event_at),
            device_class="timestamp",
        ),
        _diagnostic("store_size", "Store size", lambda s: _mib(s.store.db_size_bytes), **_SIZE),
        _diagnostic("wal_size", "WAL size", lambda s: _mib(s.store.wal_size_bytes), **_SIZE),
        _diagnostic("hook_spool_files", "Hook spool files", lambda s: s.spool.hook_spool_files),
        # Usage rows with no proper time or impossible figures: in no figure (metrics.md §2.9).
        _diagnostic("rows_left_out", "Rows left out", lambda s: s.store.rows_left_out),
        _diagnostic("spool_pending", "Spool pending", lambda s: s.spool.spool_pending),
        _diagnostic(
            "spool_failed",
            "Spool failed",
            lambda s: s.spool.spool_failed,
            attributes=lambda s: {"last_error": s.spool.spool_last_error},
        ),
        EntitySpec(
            device=HUB,
            key="oldest_spool_age",
            translation_key="oldest_spool_age",
            name="Oldest spool age",
            value=_oldest_spool_age,
            device_class="duration",
            unit="s",
            state_class="measurement",
            entity_category="diagnostic",
            precision=0,
        ),
        EntitySpec(
            device=HUB,
            key="last_quota_snapshot",
            translation_key="last_quota_snapshot",
            name="Last quota snapshot",
            value=lambda s: _timestamp(s.store.last_snapshot_at),
            device_class="timestamp",
            entity_category="diagnostic",
        ),
        EntitySpec(
            device=HUB,
            key="rollup_watermark",
            translation_key="rollup_watermark",
            name="Rollup watermark",
            value=lambda s: s.store.rollup_watermark,
            device_class="date",
            entity_category="diagnostic",
        ),
        EntitySpec(
            device=HUB,
            key="ingestion_problem",
            platform="binary_sensor",
            translation_key="ingestion_problem",
            name="Ingestion problem",
            value=lambda s: bool(ingestion_problems(s)),
            device_class="problem",
            entity_category="diagnostic",
            attributes=_ingestion_attributes,
        ),
    ]
    return specs


def _projected(s: Snapshot) -> Value:
    return round(s.forecast.month.projected_usd, 2)


def _projection_attributes(s: Snapshot) -> dict[str, Any]:
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


def _budget(s: Snapshot, provider: str | None) -> BudgetStatus | None:
    return next((b for b in s.budgets if b.provider == provider), None)


def budget_slugs(budgets: Iterable[BudgetStatus]) -> dict[str, str]:
    """The part of each provider budget's entity keys that names its provider."""
    return unique_slugs(b.provider for b in budgets if b.provider is not None)


def _budget_entities(snapshot: Snapshot) -> list[EntitySpec]:
    """A budget's share used and its two problems, for the whole store and for each provider with one."""
    specs = []
    slugs = budget_slugs(snapshot.budgets)
    for status in snapshot.budgets:
        who = status.provider
        if who is None:
            prefix, key, placeholders, words = "", "", {}, ("Budget used", "Over budget", "Projected over budget")
        else:
            name = provider(who).name
            prefix, key, placeholders = "provider_", f"_{slugs[who]}", {"provider": name}
            words = (f"{name} budget used", f"{name} over budget", f"{name} projected over budget")

        def used(s: Snapshot, who: str | None = who) -> Value:
            found = _budget(s, who)
            return None if found is None else round(found.used_percent, 2)

        def attributes(s: Snapshot, who: str | None = who) -> dict[str, Any]:
            found = _budget(s, who)
            if found is None:
                return {}
            return {"budget": found.amount_usd, "spent": round(found.spent_usd, 2),
                    "projected": round(found.projected_usd, 2)}  # fmt: skip

        def over(s: Snapshot, who: str | None = who) -> Value:
            found = _budget(s, who)
            return None if found is None else found.over

        def projected_over(s: Snapshot, who: str | None = who) -> Value:
            found = _budget(s, who)
            return None if found is None else found.projected_over

        specs.append(
            EntitySpec(device=HUB, key=f"budget_used{key}", translation_key=f"{prefix}budget_used",
                       placeholders=placeholders, name=words[0], value=used, attributes=attributes, unit="%",
                       state_class="measurement", precision=1)
        )  # fmt: skip
        for problem, name, value in (("over", words[1], over), ("projected_over", words[2], projected_over)):
            specs.append(
                EntitySpec(device=HUB, key=f"{problem}_budget{key}", platform="binary_sensor",
                           translation_key=f"{prefix}{problem}_budget", placeholders=placeholders, name=name,
                           value=value, device_class="problem", attributes=attributes)
            )  # fmt: skip
    return specs


def _money(device: str, key: str, name: str, value: Callable[[Snapshot], Value], **presentation: Any) -> EntitySpec:
    """A cost in US dollars (what openusage records cost in)."""
    return EntitySpec(
        device=device,
        key=key,
        translation_key=key,
        name=name,
        value=value,
        device_class="monetary",
        unit="USD",
        precision=2,
        **presentation,
    )


def _hub(key: str, name: str, value: Callable[[Snapshot], Value], **presentation: Any) -> EntitySpec:
    """A figure of the hub, its key its translation key."""
    return EntitySpec(device=HUB, key=key, translation_key=key, name=name, value=value, **presentation)


def _diagnostic(key: str, name: str, value: Callable[[Snapshot], Value], **presentation: Any) -> EntitySpec:
    """A hub health figure: a diagnostic measurement."""
    return EntitySpec(
        device=HUB,
        key=key,
        translation_key=key,
        name=name,
        value=value,
        state_class="measurement",
        entity_category="diagnostic",
        **presentation,
    )


_SIZE: dict[str, Any] = {"device_class": "data_size", "unit": "MiB", "precision": 1}


def _mib(size: int) -> float:
    """A file size in MiB, as people read store sizes (to the KiB)."""
    return round(size / MIB, 3)


def _oldest_spool_age(s: Snapshot) -> int | None:
    ages = [a for a in (s.spool.hook_spool_oldest_age_seconds, s.spool.spool_oldest_age_seconds) if a is not None]
    return round(max(ages)) if ages else None


def _ingestion_attributes(s: Snapshot) -> dict[str, Any]:
    problems = ingestion_problems(s)
    return {name: name in problems for name in ("hook_spool_stuck", "spool_failed", "corrupt_store_reset")}


HUB_ENTITIES: tuple[EntitySpec, ...] = tuple(_hub_entities())


def account_key(provider_id: str, account_id: str) -> str:
    return f"{provider_id}/{account_id}"


def account_device(provider_id: str, account_id: str, accounts: int) -> DeviceSpec:
    """A provider account's device, named after the provider ("Claude Code"). Where the provider has more
    than one account (`accounts`), those other than openusage's default one carry their id
    ("OpenRouter (work)")."""
    known = provider(provider_id)
    shown_account = None if accounts == 1 or account_id == known.default_account else account_id
    return DeviceSpec(
        key=account_key(provider_id, account_id),
        name=known.name if shown_account is None else f"{known.name} ({shown_account})",
        model=known.name,
        manufacturer=known.maker,
        provider_id=provider_id,
        account_id=account_id,
        shown_account=shown_account,
    )


def account_devices(snapshot: Snapshot) -> dict[str, DeviceSpec]:
    """One device per (provider, account) with usage or a quota in the store."""
    pairs = {tuple(key.partition("/")[::2]) for key in snapshot.usage.breakdowns[Breakdown.ACCOUNT]}
    pairs |= {(q.provider_id, q.account_id) for q in snapshot.quotas}
    accounts = Counter(provider_id for provider_id, _ in pairs)
    return {
        account_key(provider_id, account_id): account_device(provider_id, account_id, accounts[provider_id])
        for provider_id, account_id in sorted(pairs)
    }


def _quota(snapshot: Snapshot, device: str) -> QuotaSnapshot | None:
    for quota in snapshot.quotas:
        if account_key(quota.provider_id, quota.account_id) == device:
            return quota
    return None


def _metric(snapshot: Snapshot, device: str, key: str) -> QuotaMetric | None:
    quota = _quota(snapshot, device)
    return quota.metrics.get(key) if quota else None


def _account_usage(device: str, window: Window, measure: str) -> Callable[[Snapshot], Value]:
    def value(s: Snapshot) -> Value:
        per_window = s.usage.breakdowns[Breakdown.ACCOUNT].get(device)
        return _figure(per_window[window] if per_window else None, measure)

    return value


def _metric_reading(metric: QuotaMetric, kind: MoneyKind | None) -> float | None:
    """The figure a quota metric's sensor shows: percent used, or in the metric's own unit the money
    left (a balance), spent or allowed (a limit), or the amount used."""
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


def _metric_entities(device: DeviceSpec, key: str, metric: QuotaMetric, key_slug: str) -> list[EntitySpec]:
    unit = metric.unit or None
    currency = (unit or "").upper() if (unit or "").upper() in CURRENCIES else None
    kind = money_kind(device.provider_id or "", key, metric.window) if currency else None
    # A provider whose "balance" counts what was spent gets a name that says so.
    name_key = f"{key}_spent" if kind is MoneyKind.SPEND and "balance" in key else key
    known = name_key in KNOWN_QUOTA_METRICS
    translation = f"quota_{name_key}" if known else "quota_metric"
    placeholders = {} if known else {"metric": readable(key)}
    name = KNOWN_QUOTA_METRICS.get(name_key) or readable(key)
    dev = device.key

    def attributes(s: Snapshot) -> dict[str, Any]:
        m = _metric(s, dev, key)
        if m is None:
            return {}
        return {"window": m.window, "used": m.used, "limit": m.limit, "remaining": m.remaining, "unit": m.unit,
                "used_percent": None if m.used_percent is None else round(m.used_percent, 2),
                "resets_at": m.resets_at}  # fmt: skip

    def reading(s: Snapshot) -> Value:
        m = _metric(s, dev, key)
        return None if m is None else _metric_reading(m, kind)

    presentation: dict[str, Any]
    if currency:
        presentation = {"device_class": "monetary", "unit": currency, "precision": 2}
    elif unit == "%":
        presentation = {"unit": "%", "state_class": "measurement", "precision": 1}
    elif unit in _DURATION_UNITS:
        presentation = {"device_class": "duration", "unit": _DURATION_UNITS[unit], "state_class": "measurement"}
    else:  # a rate (USD/h), a count (tokens, requests, credits, …) or no unit at all
        presentation = {"unit": unit, "state_class": "measurement"}
    specs = [
        EntitySpec(
            device=dev,
            key=f"quota_{key_slug}",
            translation_key=translation,
            placeholders=placeholders,
            name=name,
            value=reading,
            attributes=attributes,
            expires=True,
            **presentation,
        )
    ]
    if metric.resets_at is not None and unit == "%":

        def runs_out(s: Snapshot) -> Value:
            m = _metric(s, dev, key)
            return _timestamp(m.exhausted_at) if m else None

        def rate(s: Snapshot) -> dict[str, Any]:
            m = _metric(s, dev, key)
            return {"rate_percent_per_hour": m.rate_percent_per_hour if m else None}

        specs.append(
            EntitySpec(
                device=dev,
                key=f"runs_out_{key_slug}",
                translation_key="quota_runs_out",
                placeholders={"metric": name},
                name=f"{name} runs out",
                value=runs_out,
                attributes=lambda s: {
                    "rate_percent_per_hour": getattr(_metric(s, dev, key), "rate_percent_per_hour", None)
                },
                device_class="timestamp",
                expires=True,
            )
        )
    if metric.resets_at is not None:

        def reset(s: Snapshot) -> Value:
            m = _metric(s, dev, key)
            return _timestamp(m.resets_at) if m else None

        specs.append(
            EntitySpec(
                device=dev,
                key=f"reset_{key_slug}",
                translation_key=f"{translation}_reset",
                placeholders=placeholders,
                name=f"{name} reset",
                value=reset,
                device_class="timestamp",
            )
        )
    return specs


def account_entities(snapshot: Snapshot, device: DeviceSpec) -> list[EntitySpec]:
    key = device.key
    specs = [
        *(
            _money(
                key,
                f"cost_{window}",
                name,
                _account_usage(key, window, "cost_usd"),
                state_class="total",
                resets_with=window,
            )
            for window, name in ((Window.TODAY, "Cost today"), (Window.MONTH, "Cost this month"))
        ),
        _money(key, "cost_30d", "Cost 30 days", _account_usage(key, Window.D30, "cost_usd")),
        EntitySpec(
            device=key,
            key="tokens_today",
            translation_key="tokens_today",
            name="Tokens today",
            value=_account_usage(key, Window.TODAY, "total_tokens"),
            unit="tokens",
            state_class="total_increasing",
        ),
        EntitySpec(
            device=key,
            key="requests_today",
            translation_key="requests_today",
            name="Requests today",
            value=_account_usage(key, Window.TODAY, "requests"),
            state_class="total_increasing",
        ),
    ]
    quota = _quota(snapshot, key)
    if quota is None:
        return specs

    def status(s: Snapshot) -> Value:
        q = _quota(s, key)
        return q.status.value.lower() if q else None

    def age(s: Snapshot) -> Value:
        q = _quota(s, key)
        return round(q.age_seconds) if q else None

    def limited(s: Snapshot) -> Value:
        q = _quota(s, key)
        if q is None:
            return None
        full = any(m.used_percent is not None and m.used_percent >= 100 for m in q.metrics.values())
        return q.status is QuotaStatus.LIMITED or full

    specs += [
        EntitySpec(
            device=key,
            key="quota_status",
            translation_key="quota_status",
            name="Quota status",
            value=status,
            device_class="enum",
            options=QUOTA_STATUS_OPTIONS,
            state_texts=QUOTA_STATUS_TEXTS,
            attributes=lambda s: _status_attributes(s, key),
            expires=True,
        ),
        EntitySpec(
            device=key,
            key="snapshot_age",
            translation_key="snapshot_age",
            name="Snapshot age",
            value=age,
            device_class="duration",
            unit="s",
            state_class="measurement",
            entity_category="diagnostic",
            precision=0,
        ),
        EntitySpec(
            device=key,
            key="limited",
            platform="binary_sensor",
            translation_key="limited",
            name="Limited",
            value=limited,
            device_class="problem",
            expires=True,
        ),
    ]
    slugs = metric_slugs(quota)
    for metric_key, metric in quota.metrics.items():
        specs += _metric_entities(device, metric_key, metric, slugs[metric_key])
    return specs


def _status_attributes(s: Snapshot, device: str) -> dict[str, Any]:
    q = _quota(s, device)
    if q is None:
        return {}
    shown = {"message": q.message, "observed_at": q.observed_at, "stale": q.stale}
    return {**shown, "metrics_left_out": q.metrics_left_out} if q.metrics_left_out else shown


# Per breakdown: the measure, its unit, the kind in the key, and the English name ("{key}" stands for the key).
BREAKDOWN_SENSORS: dict[Breakdown, tuple[str, str | None, str, str]] = {
    Breakdown.MODEL: ("cost_usd", "USD", "cost", "Model cost today ({key})"),
    Breakdown.AGENT: ("cost_usd", "USD", "cost", "Agent cost today ({key})"),
    Breakdown.PROJECT: ("cost_usd", "USD", "cost", "Project cost today ({key})"),
    Breakdown.TOOL: ("tool_calls", None, "tool_calls", "Tool calls today ({key})"),
}


def _breakdown_entities(snapshot: Snapshot, breakdown: Breakdown) -> list[EntitySpec]:
    specs = []
    measure, unit, kind, name = BREAKDOWN_SENSORS[breakdown]
    keys = snapshot.usage.breakdowns[breakdown]
    slugs = unique_slugs(keys)  # models `gpt-5` and `gpt_5` stay two sensors
    for key in keys:

        def value(s: Snapshot, key: str = key) -> Value:
            per_window = s.usage.breakdowns[breakdown].get(key)
            return _figure(per_window[Window.TODAY] if per_window else None, measure)

        specs.append(
            EntitySpec(
                device=HUB,
                key=f"{breakdown.value}_{slugs[key]}_{kind}_today",
                translation_key=f"{breakdown.value}_{kind}_today",
                placeholders={breakdown.value: key},
                name=name.format(key=key),
                value=value,
                device_class="monetary" if unit == "USD" else None,
                unit=unit,
                precision=2 if unit == "USD" else None,
                state_class="total" if unit == "USD" else "total_increasing",
                resets_with=Window.TODAY if unit == "USD" else None,
            )
        )
    return specs


def catalog(snapshot: Snapshot, breakdown_sensors: frozenset[Breakdown] = frozenset()) -> list[EntitySpec]:
    """Every entity the snapshot supports, hub first, then each account device."""
    specs = [*HUB_ENTITIES, *_budget_entities(snapshot)]
    for breakdown in BREAKDOWN_OPTIONS:
        if breakdown in breakdown_sensors:
            specs += _breakdown_entities(snapshot, breakdown)
    for device in account_devices(snapshot).values():
        specs += account_entities(snapshot, device)
    return specs
