"""Photograph a real Home Assistant running the integration on a demo store (see scripts/screenshots)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from hass_http import Hass, free_port
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
PORT = 8123
HASS = Hass(PORT)
BASE = HASS.base
CLIENT_ID = HASS.client_id
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip


async def add_dashboard(token: str, url_path: str, text: str) -> None:
    """Return a dashboard exactly as given (the shipped file, or what `openusage-ha dashboard` printed)."""
    config = yaml.safe_load(text)
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{BASE}/api/websocket") as ws:
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": token})
        await ws.receive_json()
        await ws.send_json({"id": 2, "type": "lovelace/dashboards/create", "url_path": url_path,
                            "title": "AI usage", "icon": "mdi:robot-outline", "mode": "storage"})  # fmt: skip
        await ws.receive_json()
        await ws.send_json({"id": 3, "type": "lovelace/config/save", "url_path": url_path, "config": config})
        reply = await ws.receive_json()
        if not reply.get("success"):
            raise SystemExit(f"saving the dashboard failed: {reply}")


def add_mqtt(port: int) -> None:
    """Home Assistant's MQTT integration, connected to the test broker."""
    flow = HASS.request("POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
    if flow.get("type") == "menu":  # newer releases ask first how to set it up
        flow = HASS.request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}", {"next_step_id": "broker"})
    result = HASS.request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}",
                          {"broker": "127.0.0.1", "port": port})  # fmt: skip
    if result.get("type") != "create_entry":
        raise SystemExit(f"the MQTT config flow did not create an entry: {result}")


def openusage_ha(*args: str) -> str:
    """Return the project's command, as a user runs it."""
    command = [sys.executable, "-m", "openusage_ha.cli", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def device_ids(token: str) -> dict[str, str]:
    """Return the device ids of the integration's devices by name."""

    async def fetch() -> dict[str, str]:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{BASE}/api/websocket") as ws:
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": token})
            await ws.receive_json()
            await ws.send_json({"id": 1, "type": "config/device_registry/list"})
            reply = await ws.receive_json()
            return {d["name"]: d["id"] for d in reply["result"]}

    return asyncio.run(fetch())


async def photograph(tokens: dict[str, Any], devices: dict[str, str]) -> None:
    """Photograph the pages of the README in a headless browser."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    OUT.mkdir(parents=True, exist_ok=True)
    hass_tokens = {**tokens, "hassUrl": BASE, "clientId": CLIENT_ID, "expires": int(time.time() * 1000) + 3600_000}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        await context.add_init_script(f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(hass_tokens))});")
        page = await context.new_page()

        async def shot(path: str, name: str, wait: float = 4.0, full: bool = False) -> None:
            await page.goto(BASE + path)
            await page.wait_for_timeout(wait * 1000)
            await page.screenshot(path=str(OUT / name), full_page=full)
            print(f"  {OUT / name}")

        await shot("/config/integrations/integration/openusage", "integration.png")
        await page.goto(BASE + "/_my_redirect/config_flow_start?domain=openusage")
        await page.wait_for_timeout(3000)  # the dialog animates in; a moving button cannot be clicked
        with contextlib.suppress(PlaywrightTimeout):  # older releases first ask to confirm starting the flow
            await page.get_by_role("button", name="OK").click(timeout=10_000)
        await page.wait_for_timeout(4000)
        await page.screenshot(path=str(OUT / "config-flow.png"))
        print(f"  {OUT / 'config-flow.png'}")
        await shot(f"/config/devices/device/{devices['OpenUsage']}", "device-hub.png")
        await shot(f"/config/devices/device/{devices['Claude Code']}", "device-claude.png")
        await shot("/ai-usage/usage", "dashboard.png", wait=6, full=True)
        # The "This month" section of the same dashboard: spend, projection, budgets.
        section = page.locator("hui-grid-section").nth(1)
        await section.screenshot(path=str(OUT / "budget.png"))
        print(f"  {OUT / 'budget.png'}")
        await shot(f"/config/devices/device/{devices['Claude Code (laptop)']}", "mqtt-device-claude.png")
        await shot("/ai-usage-mqtt/usage", "mqtt-dashboard.png", wait=6, full=True)
        await browser.close()


def main() -> int:
    """Make the README's pictures; return the exit code."""
    with tempfile.TemporaryDirectory(prefix="openusage-shots-") as folder:
        root = Path(folder)
        config, state = root / "config", root / "state" / "openusage"
        (config / "custom_components").mkdir(parents=True)
        (config / "custom_components" / "openusage").symlink_to(ROOT / "custom_components" / "openusage")
        openusage_ha("demo-store", str(state), "--days", "120", "--events", "40000", "--seed", "7")
        port = free_port()
        (root / "mosquitto.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                                             + ("user root\n" if os.geteuid() == 0 else ""))  # fmt: skip
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        broker = subprocess.Popen([mosquitto, "-c", str(root / "mosquitto.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        (config / "configuration.yaml").write_text(yaml.safe_dump({
            "homeassistant": {"name": "Home", "time_zone": "Europe/Warsaw", "currency": "USD",
                              "allowlist_external_dirs": [str(root / "state")]},
            "default_config": None, "http": {"server_host": "127.0.0.1", "server_port": PORT},
        }).replace("default_config: null", "default_config:"))  # fmt: skip
        log = (root / "hass.log").open("wb")
        process = subprocess.Popen([str(Path(sys.executable).parent / "hass"), "-c", str(config)],
                                   stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            print("starting Home Assistant")
            HASS.wait_until_up(process)
            tokens = HASS.onboard()
            token = tokens["access_token"]
            entry = HASS.add_integration(state / "telemetry.db")
            time.sleep(8)  # first refresh and the statistics backfill
            budget_options = {"monthly_budget": 400, "provider_budgets": "claude_code=250"}
            HASS.set_options(entry["entry_id"], {"update_interval": 60, "active_minutes": 15, **budget_options})
            time.sleep(8)  # the reload with the budgets
            asyncio.run(add_dashboard(token, "ai-usage", (ROOT / "dashboards" / "openusage.yaml").read_text()))
            # The same store over MQTT, as from a laptop: the publisher, then the dashboard it prints.
            add_mqtt(port)
            db = str(state / "telemetry.db")
            budgets = ("--budget", "400", "--provider-budget", "claude_code=250")
            openusage_ha("publish", "--db", db, "--broker", f"mqtt://127.0.0.1:{port}", "--node-id", "laptop",
                         "--once", *budgets)  # fmt: skip
            time.sleep(5)
            board = openusage_ha("dashboard", "--db", db, "--node-id", "laptop", *budgets)
            asyncio.run(add_dashboard(token, "ai-usage-mqtt", board))
            devices = device_ids(token)
            print("photographing")
            asyncio.run(photograph(tokens, devices))
        finally:
            process.terminate()
            process.wait(60)
            broker.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
