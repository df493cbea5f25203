"""Config flow: the path of the openusage store, checked before an entry is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, OptionsFlow
from homeassistant.core import callback
from homeassistant.data_entry_flow import AbortFlow
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    TextSelector,
    TextSelectorConfig,
)

from .const import (
    CONF_ACTIVE_MINUTES,
    CONF_BREAKDOWN_SENSORS,
    CONF_MONTHLY_BUDGET,
    CONF_PATH,
    CONF_PROVIDER_BUDGETS,
    CONF_PROVIDER_LINKS,
    CONF_STATISTIC_PREFIX,
    CONF_UPDATE_INTERVAL,
    DEFAULT_ACTIVE_MINUTES,
    DEFAULT_UPDATE_INTERVAL,
    DOMAIN,
    MAX_UPDATE_INTERVAL,
    MIN_UPDATE_INTERVAL,
)
from .coordinator import OpenUsageConfigEntry
from .core.catalog import BREAKDOWN_OPTIONS
from .core.forecast import parse_budgets
from .core.pairs import parse_links
from .core.reader import StoreError, default_store_path, probe_store
from .statistics import statistic_prefix_for
from .validation import vol


def _resolve(raw: str) -> Path | None:
    """Return the absolute, resolved form of a path the user typed (None when it is relative)."""
    path = Path(raw.strip()).expanduser()
    return path.resolve() if path.is_absolute() else None


def _suggested_path(allowed: list[str]) -> Path:
    """Return the path to pre-fill.

    That is a store that exists in a folder Home Assistant may read (the folder itself, or its `openusage` folder), else
    openusage's default where it exists, else `telemetry.db` in the first allowed folder; openusage's default for
    Home Assistant's own user as a last resort.
    """
    default = default_store_path()
    candidates = [Path(folder) / name for folder in allowed for name in ("telemetry.db", "openusage/telemetry.db")]
    for candidate in (*candidates, default):
        if candidate.is_file():
            return candidate
    return candidates[0] if candidates else default


def entry_title(path: Path, others: list[str]) -> str:
    """Return the entry's title: "OpenUsage", or beside another entry with the store's machine or folder.

    That is "OpenUsage (laptop)".
    """
    if "OpenUsage" not in others:
        return "OpenUsage"
    folder = path.parent.parent if path.parent.name == "openusage" else path.parent
    return f"OpenUsage ({folder.name or folder})"


_PATH_SCHEMA = vol.Schema({vol.Required(CONF_PATH): TextSelector()})


class OpenUsageConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add an openusage store."""

    VERSION = 1
    MINOR_VERSION = 2

    _folder = ""  # the folder to allow, named in the `not_allowed` error

    async def _validate(self, raw: str) -> tuple[Path, dict[str, str]]:
        path = await self.hass.async_add_executor_job(_resolve, raw)
        if path is None:
            return Path(raw), {CONF_PATH: "not_absolute"}
        if not self.hass.config.is_allowed_path(str(path)):
            self._folder = str(path.parent)
            return path, {CONF_PATH: "not_allowed"}
        try:
            await probe_store(path)
        except StoreError as err:
            return path, {CONF_PATH: err.kind.value}
        return path, {}

    def _form(self, step_id: str, path: str, errors: dict[str, str]) -> ConfigFlowResult:
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(_PATH_SCHEMA, {CONF_PATH: path}),
            errors=errors,
            description_placeholders={"default_path": str(default_store_path()), "folder": self._folder},
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the store's path and check that it is an openusage store."""
        errors: dict[str, str] = {}
        allowed = sorted(self.hass.config.allowlist_external_dirs)
        path = str(await self.hass.async_add_executor_job(_suggested_path, allowed))
        if user_input is not None:
            resolved, errors = await self._validate(user_input[CONF_PATH])
            path = user_input[CONF_PATH]
            if not errors:
                # A store has no id of its own (openusage replaces a corrupt one at the same path): an entry
                # has no unique id, and one store is read by one entry.
                self._async_abort_entries_match({CONF_PATH: str(resolved)})
                others = [e.title for e in self._async_current_entries(include_ignore=False)]
                return self.async_create_entry(
                    title=entry_title(resolved, others),
                    data={CONF_PATH: str(resolved), CONF_STATISTIC_PREFIX: statistic_prefix_for(self.hass)},
                )
        return self._form("user", path, errors)

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Move the entry to another store path, checked as when adding one."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        path = entry.data[CONF_PATH]
        if user_input is not None:
            resolved, errors = await self._validate(user_input[CONF_PATH])
            path = user_input[CONF_PATH]
            if not errors and str(resolved) == entry.data[CONF_PATH]:
                return self.async_abort(reason="reconfigure_unchanged")
            if not errors:
                self._abort_if_other_entry_reads(entry, str(resolved))
                return self.async_update_reload_and_abort(entry, data_updates={CONF_PATH: str(resolved)})
        return self._form("reconfigure", path, errors)

    def _abort_if_other_entry_reads(self, entry: OpenUsageConfigEntry, path: str) -> None:
        """Refuse a move to a store another entry already reads; any other path is fine."""
        for other in self._async_current_entries(include_ignore=False):
            if other.entry_id != entry.entry_id and other.data.get(CONF_PATH) == path:
                raise AbortFlow("already_configured")

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: OpenUsageConfigEntry) -> OpenUsageOptionsFlow:
        """Return the options flow of an entry."""
        return OpenUsageOptionsFlow()


class OpenUsageOptionsFlow(OptionsFlow):
    """Polling, active-session span, extra provider links and per-key breakdown sensors."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the options and check the interval, provider links and budgets."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                parse_links(user_input.get(CONF_PROVIDER_LINKS, ""))
            except ValueError:
                errors[CONF_PROVIDER_LINKS] = "invalid_links"
            try:
                parse_budgets(user_input.get(CONF_PROVIDER_BUDGETS, ""))
            except ValueError:
                errors[CONF_PROVIDER_BUDGETS] = "invalid_budgets"
            if not errors:
                options = {
                    CONF_UPDATE_INTERVAL: int(user_input[CONF_UPDATE_INTERVAL]),
                    CONF_ACTIVE_MINUTES: int(user_input[CONF_ACTIVE_MINUTES]),
                    CONF_PROVIDER_LINKS: user_input.get(CONF_PROVIDER_LINKS, "").strip(),
                    CONF_BREAKDOWN_SENSORS: list(user_input.get(CONF_BREAKDOWN_SENSORS, [])),
                    CONF_MONTHLY_BUDGET: float(user_input.get(CONF_MONTHLY_BUDGET) or 0),
                    CONF_PROVIDER_BUDGETS: user_input.get(CONF_PROVIDER_BUDGETS, "").strip(),
                }
                # The entry's update listener reloads it with them (entities are rebuilt from them).
                return self.async_create_entry(data=options)
        schema = vol.Schema(
            {
                vol.Required(CONF_UPDATE_INTERVAL, default=DEFAULT_UPDATE_INTERVAL): NumberSelector(
                    NumberSelectorConfig(
                        min=MIN_UPDATE_INTERVAL, max=MAX_UPDATE_INTERVAL, step=1, unit_of_measurement="s",
                        mode=NumberSelectorMode.BOX,
                    )
                ),
                vol.Required(CONF_ACTIVE_MINUTES, default=DEFAULT_ACTIVE_MINUTES): NumberSelector(
                    NumberSelectorConfig(min=1, max=1440, step=1, unit_of_measurement="min",
                                         mode=NumberSelectorMode.BOX)
                ),
                vol.Optional(CONF_PROVIDER_LINKS, default=""): TextSelector(TextSelectorConfig(multiline=True)),
                vol.Optional(CONF_BREAKDOWN_SENSORS, default=[]): SelectSelector(
                    SelectSelectorConfig(
                        options=[b.value for b in BREAKDOWN_OPTIONS], multiple=True,
                        translation_key=CONF_BREAKDOWN_SENSORS,
                    )
                ),
                vol.Optional(CONF_MONTHLY_BUDGET, default=0): NumberSelector(
                    NumberSelectorConfig(min=0, max=1_000_000, step=1, unit_of_measurement="USD",
                                         mode=NumberSelectorMode.BOX)
                ),
                vol.Optional(CONF_PROVIDER_BUDGETS, default=""): TextSelector(TextSelectorConfig(multiline=True)),
            }
        )  # fmt: skip
        suggested = user_input if user_input is not None else dict(self.config_entry.options)
        return self.async_show_form(
            step_id="init", data_schema=self.add_suggested_values_to_schema(schema, suggested), errors=errors
        )
