"""Instants, window bounds and the stored timestamp text (openusage-store.md §2.1).

The store keeps times as RFC 3339 UTC text with a variable-length fraction and a `Z`. Plain text
comparison gets instants inside one second wrong (`…:00.5Z` sorts before `…:00Z`), so every bound is
compared against a normalised key with a fixed nine-digit fraction (`SORT_KEY_SQL`, `sort_key`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .models import Snapshot, Window

_FRACTION_DIGITS = 9

# Normalises a stored `occurred_at` to 'YYYY-MM-DDTHH:MM:SS.nnnnnnnnn', which sorts in time order.
SORT_KEY_SQL = (
    "substr({col}, 1, 19) || '.' || substr(CASE WHEN substr({col}, 20, 1) = '.' "
    "THEN rtrim(substr({col}, 21), 'Z') ELSE '' END || '000000000', 1, 9)"
)


def sort_key(stored: str) -> str:
    """Return the Python twin of SORT_KEY_SQL for one stored timestamp."""
    head = stored[:19]
    frac = stored[20:].rstrip("Z") if stored[19:20] == "." else ""
    return f"{head}.{(frac + '0' * _FRACTION_DIGITS)[:_FRACTION_DIGITS]}"


def instant_key(instant: datetime) -> str:
    """Return the sort key of an aware instant (microsecond precision, as Python keeps it)."""
    utc = instant.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond:06d}000"


def format_utc(instant: datetime) -> str:
    """ISO 8601 UTC text ending in `Z`, with a fraction only when there is one."""
    utc = instant.astimezone(UTC)
    text = f"{utc:%Y-%m-%dT%H:%M:%S}"
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def as_text(value: object) -> object:
    """Return an instant as RFC 3339 UTC text, a date as `YYYY-MM-DD`, anything else as it is.

    This is how the JSON, MQTT and entity attributes write them (the models keep datetimes).
    """
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def parse_time(value: object) -> datetime | None:
    """Parse the time forms openusage writes (RFC 3339, `YYYY-MM-DD HH:MM:SS`, a date, Unix s/ms/µs).

    Returns an aware UTC datetime, or None for anything else.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if re.fullmatch(r"\d{9,19}(\.\d+)?", text):
        return _from_epoch(float(text))
    match = re.fullmatch(r"(.*T\d{2}:\d{2}:\d{2})\.(\d+)(Z|[+-]\d{2}:?\d{2})?", text)
    if match:  # Python keeps microseconds; cut longer fractions instead of failing.
        text = f"{match.group(1)}.{match.group(2)[:6]}{match.group(3) or ''}"
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _from_epoch(number: float) -> datetime | None:
    for scale in (1.0, 1e3, 1e6, 1e9):  # seconds, ms, µs, ns: the first plausible date wins
        seconds = number / scale
        if seconds < 253402300800:  # before year 10000
            try:
                return datetime.fromtimestamp(seconds, UTC)
            except (OverflowError, OSError, ValueError):
                return None
    return None


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """Return the first instant of a local date in `zone` (also on days whose midnight is skipped)."""
    # A midnight inside a DST gap does not exist; fold=0 maps it to the transition instant itself.
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def local_midnight(now: datetime, zone: ZoneInfo) -> datetime:
    """Return the first instant of `now`'s local date in `zone`."""
    return start_of_day(now.astimezone(zone).date(), zone)


def period_first_days(now: datetime, zone: ZoneInfo) -> dict[Window, date]:
    """Return the local date each calendar window starts on: this ISO week's Monday, this month's first day."""
    today = now.astimezone(zone).date()
    return {Window.WEEK: today - timedelta(days=today.weekday()), Window.MONTH: today.replace(day=1)}


def period_start(window: Window, now: datetime, zone: ZoneInfo) -> datetime:
    """When the period `window` stands for began: local midnight of its first day (`today` too)."""
    if window is Window.TODAY:
        return local_midnight(now, zone)
    return start_of_day(period_first_days(now, zone)[window], zone)


def last_reset(snapshot: Snapshot, window: Window) -> datetime:
    """When the period `window` stands for (today, this week, this month) began, in the snapshot's zone."""
    return period_start(window, snapshot.now, ZoneInfo(snapshot.time_zone))


@dataclass(frozen=True, slots=True)
class WindowBounds:
    """The lower bounds of the bounded windows, as sort keys, and the active-session bound.

    Also the first local date of each calendar window (to choose its rollup days, metrics.md §1).
    """

    keys: dict[Window, str]
    active_key: str
    first_days: dict[Window, str]

    @classmethod
    def at(cls, now: datetime, zone: ZoneInfo, active_minutes: float) -> WindowBounds:
        """Work out the bounds at `now` in `zone`."""
        first_days = period_first_days(now, zone)
        return cls(
            keys={
                Window.TODAY: instant_key(local_midnight(now, zone)),
                Window.H24: instant_key(now - timedelta(hours=24)),
                Window.D7: instant_key(now - timedelta(days=7)),
                Window.D30: instant_key(now - timedelta(days=30)),
                **{w: instant_key(start_of_day(day, zone)) for w, day in first_days.items()},
            },
            active_key=instant_key(now - timedelta(minutes=active_minutes)),
            first_days={w: day.isoformat() for w, day in first_days.items()},
        )
