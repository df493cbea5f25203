"""An entry's options, read once into typed values (the options flow writes them, the coordinator reads them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .const import (
    CONF_ACTIVE_MINUTES,
    CONF_BREAKDOWN_SENSORS,
    CONF_MONTHLY_BUDGET,
    CONF_PROVIDER_BUDGETS,
    CONF_PROVIDER_LINKS,
    CONF_UPDATE_INTERVAL,
    DEFAULT_ACTIVE_MINUTES,
    DEFAULT_UPDATE_INTERVAL,
)
from .core.forecast import budget_map, parse_budgets
from .core.models import Breakdown
from .core.pairs import parse_links
from .core.reader import ReadOptions, merge_links


def budgets_from(options: Mapping[str, Any]) -> dict[str | None, float]:
    """Return the entry's monthly budgets: the whole store's under None, each provider's under its id."""
    return budget_map(
        float(options.get(CONF_MONTHLY_BUDGET) or 0), parse_budgets(options.get(CONF_PROVIDER_BUDGETS, ""))
    )


@dataclass(frozen=True, slots=True)
class EntryOptions:
    """What an entry's options make of its coordinator: how often it reads, what it computes, which sensors."""

    update_interval: timedelta
    read: ReadOptions
    breakdown_sensors: frozenset[Breakdown]

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> EntryOptions:
        """Read the options (checked by the options flow when they were saved)."""
        return cls(
            update_interval=timedelta(seconds=options.get(CONF_UPDATE_INTERVAL, DEFAULT_UPDATE_INTERVAL)),
            read=ReadOptions(
                active_minutes=float(options.get(CONF_ACTIVE_MINUTES, DEFAULT_ACTIVE_MINUTES)),
                provider_links=merge_links(parse_links(options.get(CONF_PROVIDER_LINKS, ""))),
                budgets=budgets_from(options),
            ),
            breakdown_sensors=frozenset(Breakdown(b) for b in options.get(CONF_BREAKDOWN_SENSORS, [])),
        )
