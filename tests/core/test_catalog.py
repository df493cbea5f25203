"""What a user reads: device names, metric kinds and units, as the catalog makes them for both modes."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from custom_components.openusage.core.catalog import catalog, entity_id
from custom_components.openusage.core.devices import HUB, HUB_DEVICE, account_devices
from custom_components.openusage.core.discovery import Topics, mqtt_entity_id
from custom_components.openusage.core.models import Breakdown
from custom_components.openusage.core.providers import MoneyKind, money_kind, provider
from custom_components.openusage.core.reader import read_store
from tests.constants import NOW
from tests.storebuilder import limit_snapshot, message, store


def _metric(used: float | None, limit: float | None, remaining: float | None, unit: str | None, window: str) -> dict:
    return {"used": used, "limit": limit, "remaining": remaining, "unit": unit, "window": window}


async def _snapshot(path: Path):
    return await read_store(path, NOW, ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("provider_id", "name", "maker"),
    [("claude_code", "Claude Code", "Anthropic"), ("copilot", "GitHub Copilot", "GitHub"),
     ("zai", "Z.ai", "Z.ai"), ("gemini_cli", "Gemini CLI", "Google"), ("my-local_llm", "My Local LLM", "My Local LLM"), ("acme.ai", "Acme AI", "Acme AI"),
     ("", "Unknown provider", "Unknown provider")],
)  # fmt: skip
def test_providers_by_the_names_people_know(provider_id: str, name: str, maker: str) -> None:
    assert (provider(provider_id).name, provider(provider_id).maker) == (name, maker)


async def test_device_names_carry_the_account_only_beside_another(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="a")  # anthropic → Claude Code, account claude-code
        message(w, "2026-08-17T10:01:00Z", message_id="b", source_system="opencode", account_id="opencode")
        message(w, "2026-08-17T10:02:00Z", message_id="c", source_system="codex", provider_id="codex", account_id="x")
        limit_snapshot(w, "2026-08-17T11:00:00Z", "openrouter", "work", {"snapshot": {"status": "OK"}})
        limit_snapshot(w, "2026-08-17T11:00:00Z", "openrouter", "home", {"snapshot": {"status": "OK"}})
    devices = account_devices(await _snapshot(db))
    names = {key: d.name for key, d in devices.items()}
    assert names == {
        "claude_code/claude-code": "Claude Code",  # openusage's default account keeps the plain name
        "claude_code/opencode": "Claude Code (opencode)",
        "codex/x": "Codex",  # the only account of its provider
        "openrouter/home": "OpenRouter (home)",  # neither is the default: both say which
        "openrouter/work": "OpenRouter (work)",
    }
    assert devices["claude_code/claude-code"].manufacturer == "Anthropic"
    assert devices["openrouter/work"].name_on("laptop") == "OpenRouter (work, laptop)"
    assert devices["codex/x"].name_on("laptop") == "Codex (laptop)"


@pytest.mark.parametrize(
    ("provider_id", "key", "window", "kind"),
    [("openrouter", "credit_balance", "lifetime", MoneyKind.SPEND),  # declared cumulative by openusage
     ("zai", "credit_balance", "current", MoneyKind.BALANCE),
     ("mistral", "monthly_budget", "1mo", MoneyKind.LIMIT),
     ("somebody", "total_cost", "all-time", MoneyKind.SPEND),  # inferred from the window, as openusage does
     ("somebody", "wallet", "current", MoneyKind.BALANCE),
     ("cursor", "spend_limit", "billing-cycle", MoneyKind.LIMIT),
     ("cursor", "plan_spend", "billing-cycle", MoneyKind.SPEND)],
)  # fmt: skip
def test_money_metrics_are_read_as_openusage_classifies_them(
    provider_id: str, key: str, window: str, kind: MoneyKind
) -> None:
    assert money_kind(provider_id, key, window) is kind


async def test_each_quota_metric_is_the_kind_its_unit_says(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    claude = {
        "usage_five_hour": _metric(37.0, 100, None, "%", "5h"),
        "burn_rate": _metric(4.21, None, None, "USD/h", "current 5h block"),
        "tokens_five_hour": _metric(1200, 5000, None, "tokens", "5h"),
        "codex_credit_runout_hours": _metric(7.5, None, None, "h", "current"),
        "rpm": _metric(None, 50, 45, "requests", "1m"),
    }
    openrouter = {"credit_balance": _metric(37.9, 50, 12.1, "USD", "lifetime")}
    zai = {
        "credit_balance": _metric(None, None, 8.5, "USD", "current"),
        "spend_limit": _metric(3, None, 7, "USD", "1mo"),
    }
    with store(db) as w:
        limit_snapshot(w, "2026-08-17T11:00:00Z", "claude_code", "claude-code", {"snapshot": {"metrics": claude}})
        limit_snapshot(w, "2026-08-17T11:00:00Z", "openrouter", "openrouter", {"snapshot": {"metrics": openrouter}})
        limit_snapshot(w, "2026-08-17T11:00:00Z", "zai", "zai", {"snapshot": {"metrics": zai}})
    snapshot = await _snapshot(db)
    specs = {(s.device, s.key): s for s in catalog(snapshot)}

    def shown(device: str, key: str) -> tuple:
        spec = specs[(device, key)]
        return spec.name, spec.value(snapshot), spec.unit, spec.description.device_class

    assert shown("claude_code/claude-code", "quota_usage_five_hour") == ("5-hour usage", 37.0, "%", None)
    assert shown("claude_code/claude-code", "quota_burn_rate") == ("Burn rate", 4.21, "USD/h", None)
    assert shown("claude_code/claude-code", "quota_tokens_five_hour") == ("Tokens five hour", 1200, "tokens", None)
    assert shown("claude_code/claude-code", "quota_codex_credit_runout_hours")[1:] == (7.5, "h", "duration")
    assert shown("claude_code/claude-code", "quota_rpm")[1:] == (5, "requests", None)  # used = limit − remaining
    # openusage counts OpenRouter's credit_balance as money spent: the sensor says so, and shows that.
    assert shown("openrouter/openrouter", "quota_credit_balance") == ("Credits used", 37.9, "USD", "monetary")
    assert shown("zai/zai", "quota_credit_balance") == ("Credit balance", 8.5, "USD", "monetary")  # what is left
    assert shown("zai/zai", "quota_spend_limit") == ("Spend limit", 10, "USD", "monetary")  # the cap


async def test_hub_figures_in_the_units_people_read(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="a", cost_usd=0.123456, model_raw="gpt-5")
    snapshot = await _snapshot(db)
    specs = {s.key: s for s in catalog(snapshot, frozenset()) if s.device == "hub"}
    size = specs["store_size"]
    assert (size.unit, size.description.precision, size.description.device_class) == ("MiB", 1, "data_size")
    assert size.value(snapshot) == round(db.stat().st_size / 1048576, 3)
    assert specs["cost_today"].has_attributes
    assert specs["cost_today"].attributes(snapshot)["by_model"] == {"gpt-5": 0.12}  # to the cent
    assert all(s.key != "limited" for s in catalog(snapshot))  # no quota, no Limited sensor


def test_entity_ids_follow_home_assistant_s_rule_in_both_modes() -> None:
    from custom_components.openusage.core.catalog import HUB_DESCRIPTIONS, EntitySpec

    cost_7d = next(EntitySpec(d, None, HUB, d.key, d.name, d.key) for d in HUB_DESCRIPTIONS if d.key == "cost_7d")
    assert entity_id(cost_7d, "OpenUsage") == "sensor.openusage_cost_7_days"
    assert mqtt_entity_id(cost_7d, HUB_DEVICE, "dev_box") == "sensor.openusage_dev_box_cost_7_days"
    assert entity_id(cost_7d, "Zürich Café") == "sensor.zurich_cafe_cost_7_days"  # accents go, as slugify does
    assert Topics("homeassistant", "x").device_id("") == "openusage_x"


async def test_entities_are_made_again_only_when_the_keys_change(tmp_path: Path) -> None:
    """A refresh with the same keys reuses the bound entities; a new key (a model) makes them again."""
    db = tmp_path / "telemetry.db"
    with store(db) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="a", model_raw="gpt-5")
    models = frozenset({Breakdown.MODEL})
    first = catalog(await _snapshot(db), models)
    with store(db) as w:
        message(w, "2026-08-17T10:05:00Z", message_id="b", model_raw="gpt-5", input_tokens=7)
    second = catalog(await _snapshot(db), models)
    assert second is first  # other figures, the same keys
    with store(db) as w:
        message(w, "2026-08-17T10:10:00Z", message_id="c", model_raw="claude-opus-4-1")
    third = catalog(await _snapshot(db), models)
    assert third is not first
    assert {s.key for s in third} - {s.key for s in first} == {"model_claude_opus_4_1_cost_today"}
