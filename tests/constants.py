"""Clocks and zones the tests share."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

# The clock of the hand-written stores: Monday 17 August 2026, noon UTC.
NOW = datetime(2026, 8, 17, 12, tzinfo=UTC)
# The clock of the demo store the integration tests read (conftest), the dashboard and the pictures.
DEMO_NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
WARSAW = ZoneInfo("Europe/Warsaw")
