"""Polls the openusage store through the shared core."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import (
    CONF_PATH,
    DOMAIN,
    REPAIR_AFTER,
)
from .core.cache import CacheLocationError, cache_file_in
from .core.catalog import EntitySpec, catalog
from .core.devices import DeviceSpec, all_devices
from .core.models import Snapshot
from .core.reader import StoreError, StoreErrorKind, StoreReader, probe_store
from .options import EntryOptions

_LOGGER = logging.getLogger(__name__)
# A refresh brings over a hundred entities up to date (their state and attributes worked out from the snapshot,
# then written when changed): in one pass of the event loop they would hold it for milliseconds. They are brought up
# to date this many a pass, other work running in between.
STATES_A_PASS = 20

type OpenUsageConfigEntry = ConfigEntry[OpenUsageCoordinator]


@dataclass(frozen=True, slots=True)
class OpenUsageData:
    """One refresh: the snapshot, and the entities and devices it supports."""

    snapshot: Snapshot
    entities: tuple[EntitySpec, ...]
    devices: dict[str, DeviceSpec]  # by device key, the hub first


def mirror_cache(hass: HomeAssistant, entry: ConfigEntry) -> Path | None:
    """Return the file the entry's reader keeps its mirror in: in Home Assistant's cache folder, `.cache/openusage`.

    That folder is what `hass.config.cache_path` names (Home Assistant 2026.x), which backups leave out: a mirror of a
    large store is hundreds of MB, and is made again from the store whenever it is missing.

    None when that folder is inside openusage's state folder (which is never written to) or cannot be made.
    Blocking (it makes the folder): run it in the executor.
    """
    try:
        return cache_file_in(Path(hass.config.path(".cache", DOMAIN)), Path(entry.data[CONF_PATH]),
                             f"{entry.entry_id}.mirror.db")  # fmt: skip
    except CacheLocationError as err:
        _LOGGER.info("the reader of %s keeps no mirror between starts: %s", entry.data[CONF_PATH], err)
        return None


def repair_issue_id(entry: ConfigEntry) -> str:
    """Return the id of the entry's repair issue for a store that stays unreadable."""
    return f"store_unreadable_{entry.entry_id}"


class OpenUsageCoordinator(DataUpdateCoordinator[OpenUsageData]):
    """Refreshes every figure of one store; the store is opened only for the refresh itself."""

    config_entry: OpenUsageConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: OpenUsageConfigEntry, cache: Path | None, hub_device_id: str
    ) -> None:
        """Make the coordinator and the reader of the entry's store from its options.

        `cache` is where the reader keeps its mirror (mirror_cache); `hub_device_id` the hub's device, which the
        account devices are connected through.
        """
        chosen = EntryOptions.of(entry.options)
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=DOMAIN,
            update_interval=chosen.update_interval,
            # Every refresh has a new `now`, so no two are equal: comparing them (always_update=False) would save
            # nothing. The entities write only the states that changed.
        )
        self.path = Path(entry.data[CONF_PATH])
        self.reader = StoreReader(self.path, replace(chosen.read, cache=cache))
        self.options = dict(entry.options)  # what this coordinator was made from: a change means a reload
        self.breakdown_sensors = chosen.breakdown_sensors
        self.hub_device_id = hub_device_id
        self._failing_since: datetime | None = None
        self._state_writes: list[Callable[[], None]] = []

    async def async_shutdown(self) -> None:
        """Stop refreshing, then close the reader's mirror."""
        await super().async_shutdown()
        await self.reader.close()

    @callback
    def write_state_soon(self, write: Callable[[], None]) -> None:
        """Queue an entity's update: the queue is run STATES_A_PASS at a time, a pass of the loop each."""
        if not self._state_writes:
            self.hass.async_create_task(self._write_states(), f"{DOMAIN} state writes")
        self._state_writes.append(write)

    async def _write_states(self) -> None:
        await asyncio.sleep(0)  # after the refresh's other listeners
        while self._state_writes:
            writes, self._state_writes = self._state_writes[:STATES_A_PASS], self._state_writes[STATES_A_PASS:]
            for write in writes:
                write()
            await asyncio.sleep(0)

    @property
    def has_data(self) -> bool:
        """Whether a refresh has succeeded yet (the first read runs in the background)."""
        return cast(OpenUsageData | None, self.data) is not None

    async def async_check_store(self) -> None:
        """Return a quick look at the store (not its figures): raise what stops the setup when it cannot be read."""
        try:
            await probe_store(self.path, self.reader.options.busy_timeout)
        except StoreError as err:
            self._raise_repair_if_lasting(err)
            if err.kind is StoreErrorKind.NOT_OPENUSAGE:
                raise ConfigEntryError(
                    translation_domain=DOMAIN,
                    translation_key="not_openusage",
                    translation_placeholders={"path": str(self.path)},
                ) from err
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="store_error",
                translation_placeholders={"path": str(self.path), "cause": err.cause},
            ) from err

    async def _async_update_data(self) -> OpenUsageData:
        try:
            snapshot = await self.reader.refresh(dt_util.utcnow(), ZoneInfo(self.hass.config.time_zone))
        except StoreError as err:
            self._raise_repair_if_lasting(err)
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="store_error",
                translation_placeholders={"path": str(self.path), "cause": err.cause},
            ) from err
        if self._failing_since is not None:
            self._failing_since = None
            ir.async_delete_issue(self.hass, DOMAIN, repair_issue_id(self.config_entry))
        # Worked out off the event loop, which then only has to write the states that changed.
        return await self.hass.async_add_executor_job(self._data_of, snapshot)

    def _data_of(self, snapshot: Snapshot) -> OpenUsageData:
        return OpenUsageData(snapshot, catalog(snapshot, self.breakdown_sensors), all_devices(snapshot))

    def _raise_repair_if_lasting(self, err: StoreError) -> None:
        now = dt_util.utcnow()
        if self._failing_since is None:
            self._failing_since = now
        # A schema that is not openusage's will not fix itself; anything else gets a grace period
        # (the daemon may be restarting, a container mount may come back).
        if err.kind is not StoreErrorKind.NOT_OPENUSAGE and now - self._failing_since < REPAIR_AFTER:
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            repair_issue_id(self.config_entry),
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="not_openusage" if err.kind is StoreErrorKind.NOT_OPENUSAGE else "store_unreadable",
            translation_placeholders={"path": str(self.path), "cause": err.cause},
        )
