"""Fixtures for the Home Assistant tests: a demo store made by the project's generator, a frozen clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.openusage.const import (
    CONF_MONTHLY_BUDGET,
    CONF_PATH,
    CONF_PROVIDER_BUDGETS,
    CONF_STATISTIC_PREFIX,
    DOMAIN,
)
from openusage_demo import generate_demo_store
from tests.constants import DEMO_NOW as NOW


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration from custom_components/."""


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Compare with the snapshot files in syrupy's Home Assistant form."""
    from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension

    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """Return an openusage state folder with a demo store."""
    folder = tmp_path / "openusage"
    generate_demo_store(folder, days=100, events=3000, seed=3, now=NOW)
    return folder


@pytest.fixture
def store_path(state_dir: Path) -> Path:
    """Return the demo store's path."""
    return state_dir / "telemetry.db"


@pytest.fixture
async def allow_store(hass: HomeAssistant, tmp_path: Path) -> None:
    """Let Home Assistant read the test's folder, and set a zone whose midnight is not UTC's."""
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    await hass.config.async_set_time_zone("Europe/Warsaw")
    # The entry keeps its mirror in Home Assistant's cache folder: the test's own, not the harness's shared one.
    hass.config.config_dir = str(tmp_path / "config")


@pytest.fixture
def frozen(freezer) -> None:
    """Freeze the clock at the demo store's `now`."""
    freezer.move_to(NOW)


@pytest.fixture
def config_entry(store_path: Path) -> MockConfigEntry:
    """Return a config entry of the demo store, not yet added."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="OpenUsage",
        data={CONF_PATH: str(store_path), CONF_STATISTIC_PREFIX: ""},
        # Budgets, so that their entities are there: the whole store's and Claude Code's.
        options={CONF_MONTHLY_BUDGET: 300.0, CONF_PROVIDER_BUDGETS: "claude_code=200"},
        minor_version=2,
        entry_id="01JOPENUSAGETESTENTRY0000",
    )


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry, allow_store: None, frozen: None
) -> MockConfigEntry:
    """Return the config entry, added and set up with its first read done."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)  # the first read runs in the background
    return config_entry
