"""Constants of the OpenUsage integration."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

DOMAIN: Final = "openusage"

CONF_PATH: Final = "path"
CONF_UPDATE_INTERVAL: Final = "update_interval"
CONF_ACTIVE_MINUTES: Final = "active_minutes"
CONF_PROVIDER_LINKS: Final = "provider_links"
CONF_BREAKDOWN_SENSORS: Final = "breakdown_sensors"
CONF_MONTHLY_BUDGET: Final = "monthly_budget"  # USD; 0 for none
CONF_PROVIDER_BUDGETS: Final = "provider_budgets"  # provider=amount lines
# What the entry's imported statistic ids start with after `openusage:` ('' for the first store).
CONF_STATISTIC_PREFIX: Final = "statistic_prefix"

DEFAULT_UPDATE_INTERVAL: Final = 60
MIN_UPDATE_INTERVAL: Final = 10
MAX_UPDATE_INTERVAL: Final = 3600
DEFAULT_ACTIVE_MINUTES: Final = 15
# A store that stays unreadable this long gets a repair issue (a single failed poll does not).
REPAIR_AFTER: Final = timedelta(minutes=5)

ATTR_WINDOW: Final = "window"
ATTR_GROUP_BY: Final = "group_by"
ATTR_CONFIG_ENTRY_ID: Final = "config_entry_id"
SERVICE_GET_USAGE: Final = "get_usage"
