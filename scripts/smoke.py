"""Smoke test: a real `hass` of the newest Home Assistant with the integration.

It checks the config flow, the entry loaded, entities whose values equal the core's snapshot, a reload and a restart; it
fails on any warning that names the integration (see scripts/smoke).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from hass_http import Hass, free_port

ROOT = Path(__file__).resolve().parents[1]
# Every custom integration gets this one warning from Home Assistant; it is not about the integration's code.
_NOT_TESTED = "which has not been tested by Home Assistant"
_NAMES_US = re.compile(r"openusage", re.IGNORECASE)


def openusage_ha(*args: str) -> str:
    """Run the `openusage-ha` command and return what it printed."""
    return subprocess.run([sys.executable, "-m", "openusage_ha.cli", *args], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `hass` with the configuration folder `config`, logging to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen([str(Path(sys.executable).parent / "hass"), "-c", str(config)], stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip


def stop(hass: Hass, process: subprocess.Popen[bytes]) -> None:
    """Return a clean stop, once Home Assistant is running: a stop while it still starts loses what it would save."""
    for _ in range(480):
        try:
            if hass.request("GET", "/api/config")["state"] == "RUNNING":
                break
        except OSError:
            break
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    process.wait(120)


def states(hass: Hass) -> dict[str, dict[str, Any]]:
    """Return every state by entity id."""
    return {s["entity_id"]: s for s in hass.request("GET", "/api/states")}


def wait_for_values(hass: Hass, wanted: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Until every wanted entity has its state (they come a moment after the entry is loaded)."""
    for _ in range(480):
        found = states(hass)
        if all(found.get(e, {}).get("state") == v for e, v in wanted.items()):
            return found
        time.sleep(0.5)
    shown = {e: found.get(e, {}).get("state") for e in wanted}
    raise SystemExit(f"the entities do not show the core's figures: {shown} instead of {wanted} ({entry_state(hass)})")


def entry_state(hass: Hass) -> str:
    """Return the state of the integration's config entry."""
    entries = hass.request("GET", "/api/config/config_entries/entry?domain=openusage")
    if len(entries) != 1:
        raise SystemExit(f"expected one OpenUsage entry, found {entries}")
    return str(entries[0]["state"])


def check_log(log: Path) -> None:
    """Fail on any warning or error in the log that names the integration."""
    problems = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if _NAMES_US.search(line)
        and ("WARNING" in line or "ERROR" in line or "Detected that custom integration" in line)
        and _NOT_TESTED not in line
    ]
    if problems:
        raise SystemExit("Home Assistant warned about the integration:\n" + "\n".join(problems))


def main() -> int:
    """Run the smoke test; return the exit code."""
    with tempfile.TemporaryDirectory(prefix="ha-smoke-") as folder:
        root = Path(folder)
        config, state = root / "config", root / "state" / "agents"  # no path that names the integration
        (config / "custom_components").mkdir(parents=True)
        (config / "custom_components" / "openusage").symlink_to(ROOT / "custom_components" / "openusage")
        openusage_ha("demo-store", str(state), "--days", "100", "--events", "5000", "--seed", "11")
        db = state / "telemetry.db"
        port = free_port()
        (config / "configuration.yaml").write_text(yaml.safe_dump({
            "homeassistant": {"name": "Smoke", "time_zone": "UTC", "currency": "USD",
                              "allowlist_external_dirs": [str(root / "state")]},
            "http": {"server_host": "127.0.0.1", "server_port": port},
            "api": None, "config": None, "onboarding": None, "recorder": None,
            "logger": {"default": "warning"},
        }).replace(": null", ":"))  # fmt: skip
        log = root / "hass.log"
        hass = Hass(port)
        process = start(config, log)
        try:
            hass.wait_until_up(process)
            hass.onboard()
            entry = hass.add_integration(db)
            print(f"entry {entry['title']!r}: {entry_state(hass)}")
            snapshot = openusage_ha("snapshot", "--db", str(db), "--tz", "UTC", "--cache-dir", str(root / "cache"))
            core = json.loads(snapshot)  # its mirror kept in this run's folder, not in the user's cache
            claude = next(q for q in core["quotas"] if q["provider_id"] == "claude_code")
            wanted = {
                "sensor.openusage_cost_all_time": f"{core['totals']['all']['cost_usd']}",
                "sensor.openusage_tokens_today": f"{core['totals']['today']['total_tokens']}",
                "sensor.claude_code_5_hour_usage": f"{claude['metrics']['usage_five_hour']['used_percent']}",
                "sensor.claude_code_quota_status": claude["status"].lower(),
            }
            wait_for_values(hass, wanted)
            print(f"figures equal the core's snapshot: {wanted}")
            hass.request("POST", f"/api/config/config_entries/entry/{entry['entry_id']}/reload")
            wait_for_values(hass, wanted)
            print(f"after a reload: {entry_state(hass)}")
            stop(hass, process)
            process = start(config, log)
            hass.wait_until_up(process, "/api/")
            wait_for_values(hass, wanted)
            print(f"after a restart: {entry_state(hass)}")
        except BaseException:
            lines = log.read_text(errors="replace").splitlines()
            print("\n".join(line for line in lines if line[:4].isdigit())[-6000:], file=sys.stderr)
            raise
        finally:
            stop(hass, process)
        check_log(log)
        print("no warning names the integration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
