"""Long-term statistics of hourly cost, tokens and requests.

They are the hourly cost, tokens and requests, in total and per provider, imported as external statistics back to the
oldest day in the store, then kept current every hour.

Each statistic continues from its own last imported hour, so a restart, a reload or a store that has since lost old raw
rows neither duplicates nor drops an hour.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from homeassistant.components.recorder.models import StatisticData, StatisticMeanType, StatisticMetaData
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_last_statistics,
    get_metadata,
    statistics_during_period,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
from homeassistant.util import dt as dt_util

from .const import CONF_STATISTIC_PREFIX, DOMAIN
from .coordinator import OpenUsageConfigEntry
from .core.devices import HUB_DEVICE
from .core.history import HourlyUsage, read_hourly_usage
from .core.naming import slug
from .core.providers import provider as provider_names
from .core.reader import StoreError

_LOGGER = logging.getLogger(__name__)
TOTAL = "total"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

# (measure, unit, name, value)
MEASURES: tuple[tuple[str, str | None, str, Callable[[HourlyUsage], float]], ...] = (
    ("cost", "USD", "cost", lambda u: u.cost_usd),
    ("tokens", "tokens", "tokens", lambda u: float(u.tokens)),
    ("requests", None, "requests", lambda u: float(u.requests)),
)


def statistic_prefix_for(hass: HomeAssistant) -> str:
    """Return the statistic prefix of a new entry.

    It is none for the first store, so that its statistics have the ids the shipped dashboard names
    (`openusage:total_cost`); `store2_`, `store3_`, … for the next ones.
    """
    taken = {e.data.get(CONF_STATISTIC_PREFIX) for e in hass.config_entries.async_entries(DOMAIN)}
    number = 1
    while (prefix := "" if number == 1 else f"store{number}_") in taken:
        number += 1
    return prefix


def statistic_prefix(entry: OpenUsageConfigEntry) -> str:
    """Return the start of the entry's statistic ids."""
    return f"{DOMAIN}:{entry.data[CONF_STATISTIC_PREFIX]}"


def statistic_id(entry: OpenUsageConfigEntry, provider: str, measure: str) -> str:
    """Return the statistic id of one measure of a provider (or of the whole store)."""
    return f"{statistic_prefix(entry)}{slug(provider)}_{measure}"


def _metadata(
    entry: OpenUsageConfigEntry, provider: str, measure: str, unit: str | None, label: str
) -> StatisticMetaData:
    who = HUB_DEVICE.label if provider == TOTAL else provider_names(provider).name
    store = f" ({entry.title})" if entry.data[CONF_STATISTIC_PREFIX] else ""  # a second store tells its own apart
    metadata: dict[str, Any] = {
        "has_sum": True,
        "mean_type": StatisticMeanType.NONE,
        "name": f"{who} {label}{store}",
        "source": DOMAIN,
        "statistic_id": statistic_id(entry, provider, measure),
        "unit_of_measurement": unit,
    }
    if "unit_class" in StatisticMetaData.__annotations__:  # Home Assistant 2025.10 and later
        metadata["unit_class"] = None
    return cast(StatisticMetaData, metadata)


async def _last(hass: HomeAssistant, ids: list[str]) -> dict[str, tuple[datetime, float]]:
    """Each statistic's last imported hour and running sum."""

    def read() -> dict[str, tuple[datetime, float]]:
        found: dict[str, tuple[datetime, float]] = {}
        for sid in ids:
            last = get_last_statistics(hass, 1, sid, True, {"sum"}).get(sid)
            if last:
                found[sid] = (dt_util.utc_from_timestamp(last[0]["start"]), float(last[0]["sum"] or 0.0))
        return found

    return await get_instance(hass).async_add_executor_job(read)


async def _known_ids(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> list[str]:
    """Return the statistics this entry imported (the first store's prefix is empty: not those of the others)."""
    prefix = statistic_prefix(entry)
    others = tuple(
        statistic_prefix(e)
        for e in hass.config_entries.async_entries(DOMAIN)
        if e.entry_id != entry.entry_id and CONF_STATISTIC_PREFIX in e.data and e.data[CONF_STATISTIC_PREFIX]
    )
    metadata = await get_instance(hass).async_add_executor_job(lambda: get_metadata(hass, statistic_source=DOMAIN))
    await _adopt_earlier_ids(hass, entry, metadata)
    return sorted(sid for sid in metadata if sid.startswith(prefix) and not (others and sid.startswith(others)))


async def _adopt_earlier_ids(hass: HomeAssistant, entry: OpenUsageConfigEntry, metadata: dict[str, Any]) -> None:
    """Move statistics imported under the entry id (by version 1.1 entries) to its stable ids, with their history.

    The recorder renames only its own statistics, so their hours are
    copied, then cleared.
    """
    earlier = f"{DOMAIN}:{slug(entry.entry_id)}_"
    old_ids = sorted(sid for sid in metadata if sid.startswith(earlier))
    if not old_ids:
        return
    recorder = get_instance(hass)
    history = await recorder.async_add_executor_job(
        lambda: statistics_during_period(hass, EPOCH, None, set(old_ids), "hour", None, {"state", "sum"})
    )
    for old in old_ids:
        provider, _, measure = old.removeprefix(earlier).rpartition("_")
        found = next((m for m in MEASURES if m[0] == measure), None)
        rows = [
            StatisticData(start=dt_util.utc_from_timestamp(r["start"]), state=r["state"] or 0.0, sum=r["sum"] or 0.0)
            for r in history.get(old, [])
        ]
        if found is not None and rows:
            async_add_external_statistics(hass, _metadata(entry, provider, measure, found[1], found[2]), rows)
            metadata[statistic_id(entry, provider, measure)] = metadata[old]
        del metadata[old]
    recorder.async_clear_statistics(old_ids)
    await recorder.async_block_till_done()


async def async_update_statistics(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> int:
    """Import every complete hour not yet imported; returns how many statistic rows were written."""
    coordinator = entry.runtime_data
    until = dt_util.utcnow().replace(minute=0, second=0, microsecond=0)  # complete hours only
    totals = [statistic_id(entry, TOTAL, m) for m, *_ in MEASURES]
    last = await _last(hass, sorted({*totals, *await _known_ids(hass, entry)}))
    # The totals are written last, so they tell from where to read again.
    since = min(last[sid][0] for sid in totals) + timedelta(hours=1) if all(sid in last for sid in totals) else EPOCH
    try:
        usage = await read_hourly_usage(coordinator.path, since, until, coordinator.reader.options)
    except StoreError as err:
        _LOGGER.debug("statistics not updated: %s", err)
        return 0

    per_hour: dict[tuple[str, datetime], list[HourlyUsage]] = defaultdict(list)
    for row in usage:
        per_hour[(TOTAL, row.start)].append(row)
        per_hour[(row.provider, row.start)].append(row)
    providers = [*sorted({p for p, _ in per_hour} - {TOTAL}), TOTAL]
    written = 0
    for provider in providers:
        hours = sorted(h for p, h in per_hour if p == provider)
        for measure, unit, label, value in MEASURES:
            sid = statistic_id(entry, provider, measure)
            last_start, running = last.get(sid, (None, 0.0))
            rows: list[StatisticData] = []
            for hour in hours:
                if last_start is not None and hour <= last_start:
                    continue  # imported before
                amount = sum(value(u) for u in per_hour[(provider, hour)])
                running += amount
                rows.append(StatisticData(start=hour, state=amount, sum=running))
            if rows:
                async_add_external_statistics(hass, _metadata(entry, provider, measure, unit, label), rows)
                written += len(rows)
    return written


async def async_clear_statistics(hass: HomeAssistant, entry: OpenUsageConfigEntry) -> None:
    """Remove every statistic this entry imported."""
    ids = await _known_ids(hass, entry)
    if ids:
        get_instance(hass).async_clear_statistics(ids)
