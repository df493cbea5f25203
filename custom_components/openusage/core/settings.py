"""The publisher's settings, and one schema for the command line and the TOML file (voluptuous).

The command line's options and the file's keys have the same names; the command line wins. Every value
is checked here (types, ranges, finite numbers, topic-safe text) and an unknown key is refused, so a bad
setting stops the publisher at once with one line, and never as a busy loop or a traceback later.
"""

from __future__ import annotations

import math
import socket
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import voluptuous as vol

from . import pairs
from .cache import CacheLocationError, cache_file_in, default_cache_dir
from .catalog import BREAKDOWN_OPTIONS
from .discovery import node_id_from
from .forecast import budget_map, parse_budget
from .models import Breakdown
from .reader import DEFAULT_ACTIVE_MINUTES, ReadOptions, merge_links

PASSWORD_ENV = "OPENUSAGE_HA_MQTT_PASSWORD"
DRY_RUN_BROKER = "mqtt://localhost"  # a dry run connects to nothing
MIN_INTERVAL, MAX_INTERVAL = 1.0, 3600.0  # seconds
MAX_ACTIVE_MINUTES = 1440.0
MAX_BUDGET = 1_000_000.0  # USD a month


class SettingsError(ValueError):
    """A publish setting is missing or wrong; the message says which."""


@dataclass(frozen=True, slots=True)
class PublishSettings:
    """Everything the publisher runs with."""

    db: Path
    broker: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never printed
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    discovery_prefix: str = "homeassistant"
    node_id: str = field(default_factory=lambda: node_id_from(socket.gethostname()))
    interval: float = 60.0
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    read_options: ReadOptions = field(default_factory=ReadOptions)
    breakdown_sensors: frozenset[Breakdown] = frozenset()

    @property
    def host_port_tls(self) -> tuple[str, int, bool]:
        """Return the broker's host, port and whether it takes TLS."""
        parts = urlsplit(self.broker)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise SettingsError(f"broker must look like mqtt://HOST[:PORT] or mqtts://HOST[:PORT], not {self.broker!r}")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise SettingsError(f"bad port in {self.broker!r}") from None
        return parts.hostname, port, tls


def load_toml(path: Path) -> dict[str, Any]:
    """Read settings from a TOML file.

    The file uses the same names as the command's options, with underscores (checked, with the command line's, by
    settings.SCHEMA).
    """
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as err:
        raise SettingsError(f"{path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SettingsError(f"{path}: not valid TOML ({err})") from None


def safe_url(url: str) -> str:
    """Return a broker URL without the password someone may have written into it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a malformed URL)"
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _number(low: float, high: float) -> Any:
    def check(value: Any) -> float:
        if isinstance(value, bool):
            raise vol.Invalid("a number is needed")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise vol.Invalid(f"not a number: {value!r}") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise vol.Invalid(f"must be a number from {low:g} to {high:g}, not {value!r}")
        return number

    return check


def _broker(value: Any) -> str:
    if not isinstance(value, str):
        raise vol.Invalid("must be text")
    shown = safe_url(value)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise vol.Invalid(f"not a broker URL: {shown}") from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise vol.Invalid(f"must look like mqtt://HOST[:PORT] or mqtts://HOST[:PORT], not {shown}")
    if parts.password is not None:
        raise vol.Invalid("the password goes in --password-file or OPENUSAGE_HA_MQTT_PASSWORD, not in the URL")
    if port == 0:
        raise vol.Invalid(f"bad port in {shown}")
    return value


def _topic_part(value: Any) -> str:
    """Return a discovery prefix: MQTT topic levels without wildcards."""
    if not isinstance(value, str) or not value.strip("/"):
        raise vol.Invalid("must be a topic such as homeassistant")
    if any(c in value for c in "#+\0"):
        raise vol.Invalid(f"must not hold the MQTT wildcards # or +: {value!r}")
    return value.strip("/")


def parse_zone(value: Any) -> ZoneInfo:
    """Check a time zone name."""
    if isinstance(value, ZoneInfo):
        return value
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise vol.Invalid(f"unknown time zone: {value!r}") from None


def parse_link(value: Any) -> tuple[str, str]:
    """Check one provider link, `from=to`."""
    if isinstance(value, tuple) and len(value) == 2:
        return value
    try:
        return pairs.parse_link(str(value))
    except ValueError as err:
        raise vol.Invalid(str(err)) from None


def parse_provider_budget(value: Any) -> tuple[str, float]:
    """Check one provider budget, `provider=amount`."""
    if isinstance(value, tuple) and len(value) == 2:
        return value
    try:
        return parse_budget(str(value))
    except ValueError as err:
        raise vol.Invalid(str(err)) from None


def _kinds(value: Any) -> list[str]:
    items = [s.strip() for s in value.split(",") if s.strip()] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise vol.Invalid("a list of model, agent, project or tool")
    known = {b.value for b in BREAKDOWN_OPTIONS}
    for item in items:
        if item not in known:
            raise vol.Invalid(f"{item!r} is none of {', '.join(sorted(known))}")
    return items


budget_amount = _number(0.0, MAX_BUDGET)
_TEXT = vol.All(str, vol.Length(min=1))
SCHEMA = vol.Schema(
    {
        vol.Required("db"): vol.All(vol.Any(str, Path), vol.Coerce(Path)),
        vol.Optional("broker"): _broker,
        vol.Optional("username"): _TEXT,
        vol.Optional("password_file"): vol.All(vol.Any(str, Path), vol.Coerce(Path)),
        vol.Optional("tls_ca"): vol.All(vol.Any(str, Path), vol.Coerce(Path)),
        vol.Optional("tls_cert"): vol.All(vol.Any(str, Path), vol.Coerce(Path)),
        vol.Optional("tls_key"): vol.All(vol.Any(str, Path), vol.Coerce(Path)),
        vol.Optional("discovery_prefix", default="homeassistant"): _topic_part,
        vol.Optional("node_id"): _TEXT,
        vol.Optional("interval", default=60.0): _number(MIN_INTERVAL, MAX_INTERVAL),
        vol.Optional("tz"): parse_zone,
        vol.Optional("active_minutes", default=DEFAULT_ACTIVE_MINUTES): _number(1.0, MAX_ACTIVE_MINUTES),
        vol.Optional("link", default=list): [parse_link],
        vol.Optional("breakdown_sensors", default=list): _kinds,
        vol.Optional("budget", default=0.0): budget_amount,
        vol.Optional("cache_dir"): vol.All(vol.Any(str, Path), vol.Coerce(Path)),
        vol.Optional("no_cache", default=False): bool,
        vol.Optional("provider_budget", default=list): [parse_provider_budget],
    },
    extra=vol.PREVENT_EXTRA,
)


def _explain(err: vol.Invalid) -> str:
    where = ".".join(str(p) for p in err.path)
    return f"{where}: {err.msg}" if where else err.msg


def read_password(password_file: Path | None, environ: Mapping[str, str]) -> str | None:
    """Read the broker password from its file or the environment."""
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise SettingsError(f"{password_file}: not UTF-8 text") from None
        except OSError as err:
            raise SettingsError(f"{password_file}: {err.strerror or err}") from None
    return environ.get(PASSWORD_ENV) or None


def publish_settings(given: Mapping[str, Any], environ: Mapping[str, str], *, dry_run: bool) -> PublishSettings:
    """Make the settings from the merged command line and file values (None for an option not given)."""
    try:
        values = SCHEMA({k: v for k, v in given.items() if v is not None})
    except vol.MultipleInvalid as err:
        raise SettingsError("; ".join(_explain(e) for e in err.errors)) from None
    broker = values.get("broker")
    if broker is None and not dry_run:
        raise SettingsError("--broker is required (on the command line or in --config)")
    return PublishSettings(
        db=values["db"],
        broker=broker or DRY_RUN_BROKER,
        username=values.get("username"),
        password=read_password(values.get("password_file"), environ),
        tls_ca=values.get("tls_ca"),
        tls_cert=values.get("tls_cert"),
        tls_key=values.get("tls_key"),
        discovery_prefix=values["discovery_prefix"],
        node_id=node_id_from(values.get("node_id") or socket.gethostname()),
        interval=values["interval"],
        zone=values.get("tz") or local_zone(),
        read_options=ReadOptions(
            active_minutes=values["active_minutes"],
            provider_links=merge_links(dict(values["link"])),
            budgets=budget_map(values["budget"], dict(values["provider_budget"])),
            cache=cache_file(values["db"], values.get("cache_dir"), no_cache=values["no_cache"], environ=environ),
        ),
        breakdown_sensors=frozenset(Breakdown(b) for b in values["breakdown_sensors"]),
    )


def cache_file(store: Path, folder: Path | None, *, no_cache: bool, environ: Mapping[str, str]) -> Path | None:
    """Return the file the mirror of `store` is kept in between runs (None with `no_cache`).

    Raises SettingsError for a folder that cannot be used.
    """
    if no_cache:
        return None
    try:
        return cache_file_in(folder or default_cache_dir(environ), store)
    except CacheLocationError as err:
        raise SettingsError(f"--cache-dir {err}") from None


def local_zone() -> ZoneInfo:
    """Return the machine's time zone as an IANA zone (UTC when it cannot be named)."""
    try:
        localtime = Path("/etc/localtime").resolve()
        if "zoneinfo" in localtime.parts:
            return ZoneInfo("/".join(localtime.parts[localtime.parts.index("zoneinfo") + 1 :]))
    except (OSError, ZoneInfoNotFoundError, ValueError):
        pass
    tz_env = time.tzname[0] if time.tzname else ""
    try:
        return ZoneInfo(tz_env) if tz_env else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
