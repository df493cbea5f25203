"""`openusage-ha dashboard`: a Lovelace dashboard for the entities a store gives, natively or over MQTT.

The entity ids are worked out by Home Assistant's own rule (device name, then entity name), from the same
catalog that makes the entities, so the dashboard names entities that exist: the native integration's
(`sensor.claude_code_5_hour_usage`) or those of one MQTT node (`sensor.claude_code_laptop_5_hour_usage`).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from .catalog import EntitySpec, budget_slugs, catalog, entity_id, metric_slugs
from .devices import HUB, all_devices
from .discovery import mqtt_entity_id
from .models import Breakdown, BudgetStatus, Snapshot
from .providers import provider

# The imported hourly cost of the first store the native integration reads (statistics.py).
NATIVE_COST_STATISTIC = "openusage:total_cost"
_GAUGE_SEVERITY = {"green": 0, "yellow": 70, "red": 90}
_HEALTH_FIGURES = {"hook_spool_files": "Hook spool files", "spool_pending": "Spool pending",
                   "spool_failed": "Spool failed", "store_size": "Store size", "wal_size": "WAL size"}  # fmt: skip


class _Ids:
    """Entity ids by (device key, entity key), native or for one MQTT node."""

    def __init__(self, snapshot: Snapshot, node_id: str | None) -> None:
        self.devices = all_devices(snapshot)
        # The whole store's budget entities are named even without a budget: their cards show once one is set.
        if not any(b.provider is None for b in snapshot.budgets):
            unset = BudgetStatus(None, 0.0, 0.0, 0.0, 0.0, over=False, projected_over=False)
            snapshot = replace(snapshot, budgets=(unset, *snapshot.budgets))
        self.budgets = snapshot.budgets
        self.specs = {(s.device, s.key): s for s in catalog(snapshot)}
        self._node_id = node_id

    def __call__(self, device: str, key: str) -> str:
        spec, info = self.specs[(device, key)], self.devices[device]
        if self._node_id is not None:
            return mqtt_entity_id(spec, info, self._node_id)
        return entity_id(spec, info.name)

    def spec(self, device: str, key: str) -> EntitySpec:
        return self.specs[(device, key)]


def _quota_cards(snapshot: Snapshot, ids: _Ids) -> list[dict[str, Any]]:
    """Return a gauge per percent quota with a reset time, its reset, and each account's quota status."""
    gauges: list[dict[str, Any]] = []
    resets: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    for device, quota in snapshot.quotas.items():
        label = ids.devices[device].name
        statuses.append({"entity": ids(device, "quota_status"), "name": label})
        slugs = metric_slugs(quota)
        for key, metric in quota.metrics.items():
            value_key, reset_key = f"quota_{slugs[key]}", f"reset_{slugs[key]}"
            if metric.unit != "%" or (device, reset_key) not in ids.specs:
                continue
            metric_name = ids.spec(device, value_key).name
            name = f"{label} {metric_name[:1].lower()}{metric_name[1:]}"
            gauges.append({"type": "gauge", "entity": ids(device, value_key), "name": name,
                           "min": 0, "max": 100, "needle": True, "severity": _GAUGE_SEVERITY})  # fmt: skip
            resets.append({"entity": ids(device, reset_key), "name": name, "format": "relative"})
            if (device, f"runs_out_{slugs[key]}") in ids.specs:
                runs_out = ids(device, f"runs_out_{slugs[key]}")
                # Shown only while the quota is heading for 100 % before it resets.
                known = [{"entity": runs_out, "state_not": state} for state in ("unknown", "unavailable")]
                row = {"entity": runs_out, "name": f"{name} runs out", "format": "relative"}
                resets.append({"type": "conditional", "conditions": known, "row": row})
    cards: list[dict[str, Any]] = [{"type": "heading", "heading": "Quotas"}, *gauges]
    if resets or statuses:
        cards.append({"type": "entities", "title": "Resets and status", "entities": [*resets, *statuses]})
    return cards


def _largest_first(entity: str, attribute: str) -> str:
    """Return a Jinja loop over an attribute's figures, largest first."""
    figures = f"(state_attr('{entity}', '{attribute}') or {{}})"
    return f"{{% for key, value in {figures} | dictsort(false, 'value') | reverse -%}}"


def _cost_cards(snapshot: Snapshot, ids: _Ids, node_id: str | None) -> list[dict[str, Any]]:
    thirty = ids(HUB, "cost_30d")
    names = {key: provider(key).name for key in snapshot.usage.breakdowns[Breakdown.PROVIDER]}
    content = (
        f"{{% set names = {json.dumps(names, sort_keys=True)} %}}\n"
        f"{{% set total = states('{thirty}') | float(0) %}}\n"
        "| provider | USD | share |\n|---|---:|---:|\n"
        f"{_largest_first(thirty, 'by_provider')}\n"
        "| {{ names.get(key, key) }} | {{ '%.2f' | format(value) }} | "
        "{{ (100 * value / total) | round(0) if total else 0 }} % |\n{% endfor %}\n\n"
        "| model | USD |\n|---|---:|\n"
        f"{_largest_first(thirty, 'by_model')}\n"
        "| {{ key }} | {{ '%.2f' | format(value) }} |\n{% endfor %}\n"
    )
    # Natively, the hourly cost imported from the store's whole history; over MQTT, what Home Assistant
    # records of Cost today from the first hour on.
    daily = NATIVE_COST_STATISTIC if node_id is None else ids(HUB, "cost_today")
    return [
        {"type": "heading", "heading": "Cost"},
        {"type": "tile", "entity": ids(HUB, "cost_today"), "name": "Today"},
        {"type": "tile", "entity": ids(HUB, "cost_7d"), "name": "7 days"},
        {"type": "tile", "entity": thirty, "name": "30 days"},
        {"type": "tile", "entity": ids(HUB, "cost_all_time"), "name": "All time"},
        {
            "type": "statistics-graph",
            "title": "Daily spend",
            "entities": [{"entity": daily, "name": "Cost"}],
            "stat_types": ["change"],
            "period": "day",
            "days_to_show": 30,
            "chart_type": "bar",
        },
        {"type": "markdown", "title": "Cost by provider and model (30 days)", "content": content},
    ]


def _month_cards(ids: _Ids) -> list[dict[str, Any]]:
    """Return this month's spend, where it is heading, and each budget's share (shown once a budget is set)."""
    whole = ids(HUB, "budget_used")
    gauges = []
    slugs = budget_slugs(ids.budgets)
    for status in ids.budgets:
        key = "budget_used" if status.provider is None else f"budget_used_{slugs[status.provider]}"
        name = "Budget used" if status.provider is None else f"{provider(status.provider).name} budget"
        gauge = {"type": "gauge", "entity": ids(HUB, key), "name": name, "min": 0, "max": 100, "needle": True,
                 "severity": _GAUGE_SEVERITY}  # fmt: skip
        # A budget not set has no sensor: its gauge stays hidden.
        condition = {"condition": "numeric_state", "entity": ids(HUB, key), "above": -1}
        gauges.append({"type": "conditional", "conditions": [condition], "card": gauge})
    projected = ids(HUB, "projected_month_cost")
    content = (
        f"Heading for **${{{{ '%.2f' | format(states('{projected}') | float(0)) }}}}** this month "
        f"(${{{{ '%.2f' | format(state_attr('{projected}', 'low') | float(0)) }}}} to "
        f"${{{{ '%.2f' | format(state_attr('{projected}', 'high') | float(0)) }}}})"
        f"{{% if states('{whole}') | is_number %}}, against a budget of "
        f"${{{{ '%.2f' | format(state_attr('{whole}', 'budget') | float(0)) }}}}."
        "{% else %}. Set a monthly budget in the integration's options (or `--budget` for the publisher) to "
        "follow it here.{% endif %}"
    )
    problems = {"type": "entities", "state_color": True, "entities": [
        {"entity": ids(HUB, "over_budget"), "name": "Over budget"},
        {"entity": ids(HUB, "projected_over_budget"), "name": "Projected over budget"},
    ]}  # fmt: skip
    condition = {"condition": "numeric_state", "entity": whole, "above": -1}
    return [
        {"type": "heading", "heading": "This month"},
        {"type": "tile", "entity": ids(HUB, "cost_month"), "name": "This month"},
        {"type": "tile", "entity": projected, "name": "Projected"},
        {"type": "tile", "entity": ids(HUB, "cost_week"), "name": "This week"},
        {"type": "markdown", "content": content},
        *gauges,
        {"type": "conditional", "conditions": [condition], "card": problems},
    ]


def _activity_cards(ids: _Ids) -> list[dict[str, Any]]:
    return [
        {"type": "heading", "heading": "Activity"},
        {"type": "tile", "entity": ids(HUB, "active_sessions"), "name": "Active sessions"},
        {"type": "tile", "entity": ids(HUB, "tokens_today"), "name": "Tokens today"},
        {"type": "tile", "entity": ids(HUB, "requests_today"), "name": "Requests today"},
        {"type": "tile", "entity": ids(HUB, "tool_calls_today"), "name": "Tool calls today"},
        {
            "type": "history-graph",
            "title": "Tokens and sessions, 24 hours",
            "hours_to_show": 24,
            "entities": [{"entity": ids(HUB, "tokens_today")}, {"entity": ids(HUB, "active_sessions")}],
        },
    ]


def _health_cards(ids: _Ids) -> list[dict[str, Any]]:
    return [
        {"type": "heading", "heading": "Health"},
        {
            "type": "entities",
            "entities": [
                {"entity": ids(HUB, "ingestion_problem"), "name": "Ingestion problem"},
                {"entity": ids(HUB, "last_activity"), "name": "Last event", "format": "relative"},
                {"entity": ids(HUB, "last_quota_snapshot"), "name": "Last quota poll", "format": "relative"},
                *({"entity": ids(HUB, key), "name": name} for key, name in _HEALTH_FIGURES.items()),
            ],
        },
    ]


def dashboard(snapshot: Snapshot, node_id: str | None = None) -> dict[str, Any]:
    """Return the dashboard for the native integration (`node_id` None) or for one MQTT node."""
    ids = _Ids(snapshot, node_id)
    sections = [_quota_cards(snapshot, ids), _month_cards(ids), _cost_cards(snapshot, ids, node_id),
                _activity_cards(ids), _health_cards(ids)]  # fmt: skip
    return {
        "title": "AI usage",
        "views": [
            {
                "title": "Usage",
                "path": "usage",
                "icon": "mdi:robot-outline",
                "type": "sections",
                "sections": [{"type": "grid", "cards": cards} for cards in sections],
            }
        ],
    }


_PLAIN = re.compile(r"^[A-Za-z0-9_./ -]*[A-Za-z0-9_./-]$")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    plain = _PLAIN.match(text) and text.lower() not in ("true", "false", "yes", "no", "on", "off", "null")
    return text if plain and not text[0].isdigit() else json.dumps(text)


def to_yaml(value: Any, indent: int = 0) -> str:
    """YAML for the dashboard's plain data: mappings, lists, text (multi-line as literal blocks), numbers."""
    pad = " " * indent
    lines: list[str] = []
    items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    for key, item in items:
        head = f"{pad}{key}:" if key is not None else f"{pad}-"
        if isinstance(item, dict | list) and item:
            nested = to_yaml(item, indent + 2)
            if key is None:  # a list item: its first line goes beside the dash
                lines.append(f"{head} {nested[indent + 2 :]}")
            else:
                lines.append(f"{head}\n{nested}")
        elif isinstance(item, str) and "\n" in item:
            body = "\n".join(f"{pad}  {line}" if line else "" for line in item.rstrip("\n").split("\n"))
            lines.append(f"{head} |\n{body}")
        else:
            lines.append(f"{head} {'[]' if item == [] else '{}' if item == {} else _scalar(item)}")
    return "\n".join(lines)
