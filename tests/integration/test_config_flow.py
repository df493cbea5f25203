"""Every path of the config, reconfigure and options flows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.openusage.const import (
    CONF_ACTIVE_MINUTES,
    CONF_BREAKDOWN_SENSORS,
    CONF_MONTHLY_BUDGET,
    CONF_PATH,
    CONF_PROVIDER_BUDGETS,
    CONF_PROVIDER_LINKS,
    CONF_STATISTIC_PREFIX,
    CONF_UPDATE_INTERVAL,
    DOMAIN,
)
from custom_components.openusage.core.reader import default_store_path
from openusage_demo import generate_demo_store

from .conftest import NOW


async def test_user_flow_creates_entry_with_resolved_path(
    hass: HomeAssistant, store_path: Path, allow_store: None, tmp_path: Path
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["description_placeholders"]["default_path"] == str(default_store_path())
    # The form suggests the store it found in a folder Home Assistant may read, not a path in its own home.
    schema_key = next(iter(result["data_schema"].schema))
    assert schema_key.description == {"suggested_value": str(store_path)}

    typed = str(store_path.parent) + "/../openusage/telemetry.db"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PATH: typed})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_PATH: str(store_path), CONF_STATISTIC_PREFIX: ""}
    assert result["title"] == "OpenUsage"
    assert result["result"].unique_id is None  # a store has no id of its own: one entry per path instead

    # A second store is told apart by its machine's folder, and its statistics by their prefix.
    second = generate_demo_store(tmp_path / "laptop" / "openusage", days=10, events=200, now=NOW)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PATH: str(second)})
    assert result["title"] == "OpenUsage (laptop)"
    assert result["data"][CONF_STATISTIC_PREFIX] == "store2_"


async def test_the_suggested_path_is_a_store_that_can_exist(hass: HomeAssistant, tmp_path: Path) -> None:
    # No store anywhere yet: telemetry.db in the first folder Home Assistant may read.
    hass.config.allowlist_external_dirs = {str(tmp_path / "share")}
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    schema_key = next(iter(result["data_schema"].schema))
    assert schema_key.description == {"suggested_value": str(tmp_path / "share" / "telemetry.db")}


def _make(kind: str, folder: Path) -> str:
    path = folder / "telemetry.db"
    if kind == "not_a_file":
        return str(folder)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "not_sqlite":
        path.write_bytes(b"hello, not a database" * 100)
    elif kind == "not_openusage":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
    elif kind == "corrupt":
        path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    return str(path)


@pytest.mark.parametrize("kind", ["missing", "not_a_file", "empty", "not_sqlite", "not_openusage", "corrupt"])
async def test_user_flow_errors_then_recovers(
    hass: HomeAssistant, tmp_path: Path, store_path: Path, allow_store: None, kind: str
) -> None:
    folder = tmp_path / "other"
    folder.mkdir()
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PATH: _make(kind, folder)})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PATH: kind}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PATH: str(store_path)})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_user_flow_relative_and_disallowed_paths(hass: HomeAssistant, store_path: Path) -> None:
    hass.config.allowlist_external_dirs = set()
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PATH: "telemetry.db"})
    assert result["errors"] == {CONF_PATH: "not_absolute"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PATH: str(store_path)})
    assert result["errors"] == {CONF_PATH: "not_allowed"}
    assert result["description_placeholders"]["folder"] == str(store_path.parent)  # the folder to allow
    hass.config.allowlist_external_dirs = {str(store_path.parent)}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PATH: str(store_path)})
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_same_store_twice_aborts(
    hass: HomeAssistant, config_entry: MockConfigEntry, store_path: Path, allow_store: None
) -> None:
    config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PATH: str(store_path)})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reconfigure_moves_the_entry(hass: HomeAssistant, loaded_entry: MockConfigEntry, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    generate_demo_store(moved, days=10, events=200, now=NOW)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": loaded_entry.entry_id}
    )
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PATH: str(tmp_path / "nope.db")})
    assert result["errors"] == {CONF_PATH: "missing"}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PATH: str(moved / "telemetry.db")})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert loaded_entry.data[CONF_PATH] == str(moved / "telemetry.db")
    assert loaded_entry.unique_id is None  # unchanged by a reconfigure
    assert loaded_entry.title == "OpenUsage"
    assert loaded_entry.runtime_data.path == moved / "telemetry.db"


async def test_reconfigure_to_the_same_path_says_unchanged(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": loaded_entry.entry_id}
    )
    same = str(Path(loaded_entry.data[CONF_PATH]).parent / ".." / "openusage" / "telemetry.db")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PATH: same})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_unchanged"


async def test_reconfigure_to_a_store_another_entry_reads_aborts(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, tmp_path: Path
) -> None:
    other_dir = tmp_path / "second"
    other = generate_demo_store(other_dir, days=10, events=200, now=NOW)
    MockConfigEntry(domain=DOMAIN, data={CONF_PATH: str(other)}).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": loaded_entry.entry_id}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_PATH: str(other)})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_options_flow(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await hass.config_entries.options.async_init(loaded_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    user_input = {
        CONF_UPDATE_INTERVAL: 120,
        CONF_ACTIVE_MINUTES: 30,
        CONF_PROVIDER_LINKS: "openrouter opencode",
        CONF_BREAKDOWN_SENSORS: ["model"],
        CONF_MONTHLY_BUDGET: 250,
        CONF_PROVIDER_BUDGETS: "claude_code=100\ncodex=-5",
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["errors"] == {CONF_PROVIDER_LINKS: "invalid_links", CONF_PROVIDER_BUDGETS: "invalid_budgets"}
    user_input[CONF_PROVIDER_LINKS] = "openrouter=opencode\n"
    user_input[CONF_PROVIDER_BUDGETS] = "claude_code=100, Codex=40.5"
    result = await hass.config_entries.options.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done(wait_background_tasks=True)
    assert loaded_entry.options == {
        CONF_UPDATE_INTERVAL: 120,
        CONF_ACTIVE_MINUTES: 30,
        CONF_PROVIDER_LINKS: "openrouter=opencode",
        CONF_BREAKDOWN_SENSORS: ["model"],
        CONF_MONTHLY_BUDGET: 250.0,
        CONF_PROVIDER_BUDGETS: "claude_code=100, Codex=40.5",
    }
    # The entry was reloaded with the new options.
    coordinator = loaded_entry.runtime_data
    assert coordinator.update_interval.total_seconds() == 120
    assert coordinator.reader.options.active_minutes == 30
    assert coordinator.reader.options.provider_links["openrouter"] == "opencode"
    assert hass.states.get("sensor.openusage_model_cost_today_claude_sonnet_4_5") is not None
    assert coordinator.reader.options.budgets == {None: 250.0, "claude_code": 100.0, "codex": 40.5}
    assert hass.states.get("sensor.openusage_budget_used").attributes["budget"] == 250.0
    assert hass.states.get("sensor.openusage_codex_budget_used").attributes["budget"] == 40.5
    assert hass.states.get("sensor.openusage_claude_code_budget_used") is not None
