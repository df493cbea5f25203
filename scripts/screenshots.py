"""Photograph a real Home Assistant running the integration on a demo store (see scripts/screenshots)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"
PORT = 8123
BASE = f"http://127.0.0.1:{PORT}"
CLIENT_ID = f"{BASE}/"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None,
            form: bool = False) -> Any:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if form:
        data = "&".join(f"{k}={v}" for k, v in (body or {}).items()).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    else:
        data = json.dumps(body).encode() if body is not None else None
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(BASE + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=180) as response:
        text = response.read().decode()
    return json.loads(text) if text else None


def wait_until_up(process: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise SystemExit("Home Assistant stopped while starting")
        try:
            request("GET", "/api/onboarding")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise SystemExit("Home Assistant did not start")


def onboard() -> dict[str, Any]:
    """Create the demo user and finish onboarding; returns the user's tokens."""
    user = request("POST", "/api/onboarding/users", {"client_id": CLIENT_ID, "name": "Demo", "username": "demo",
                                                     "password": "demo-password", "language": "en"})  # fmt: skip
    tokens = request("POST", "/auth/token", {"grant_type": "authorization_code", "code": user["auth_code"],
                                             "client_id": CLIENT_ID}, form=True)  # fmt: skip
    token = tokens["access_token"]
    request("POST", "/api/onboarding/core_config", {}, token)
    request("POST", "/api/onboarding/analytics", {}, token)
    request("POST", "/api/onboarding/integration", {"client_id": CLIENT_ID, "redirect_uri": CLIENT_ID}, token)
    return dict(tokens)


def add_integration(token: str, store: Path) -> None:
    flow = request("POST", "/api/config/config_entries/flow", {"handler": "openusage"}, token)
    result = request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}", {"path": str(store)}, token)
    if result.get("type") != "create_entry":
        raise SystemExit(f"the config flow did not create an entry: {result}")


async def add_dashboard(token: str, url_path: str, text: str) -> None:
    """A dashboard exactly as given (the shipped file, or what `openusage-ha dashboard` printed)."""
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


def add_mqtt(token: str, port: int) -> None:
    """Home Assistant's MQTT integration, connected to the test broker."""
    flow = request("POST", "/api/config/config_entries/flow", {"handler": "mqtt"}, token)
    if flow.get("type") == "menu":  # newer releases ask first how to set it up
        flow = request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}", {"next_step_id": "broker"}, token)
    result = request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}",
                     {"broker": "127.0.0.1", "port": port}, token)  # fmt: skip
    if result.get("type") != "create_entry":
        raise SystemExit(f"the MQTT config flow did not create an entry: {result}")


def openusage_ha(*args: str) -> str:
    """The project's command, as a user runs it."""
    command = [sys.executable, "-m", "openusage_ha.cli", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def device_ids(token: str) -> dict[str, str]:
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
        await shot(f"/config/devices/device/{devices['Claude Code (laptop)']}", "mqtt-device-claude.png")
        await shot("/ai-usage-mqtt/usage", "mqtt-dashboard.png", wait=6, full=True)
        await browser.close()


def main() -> int:
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
            wait_until_up(process)
            tokens = onboard()
            token = tokens["access_token"]
            add_integration(token, state / "telemetry.db")
            time.sleep(8)  # first refresh and the statistics backfill
            asyncio.run(add_dashboard(token, "ai-usage", (ROOT / "dashboards" / "openusage.yaml").read_text()))
            # The same store over MQTT, as from a laptop: the publisher, then the dashboard it prints.
            add_mqtt(token, port)
            db = str(state / "telemetry.db")
            openusage_ha("publish", "--db", db, "--broker", f"mqtt://127.0.0.1:{port}", "--node-id", "laptop", "--once")
            time.sleep(5)
            board = openusage_ha("dashboard", "--db", db, "--node-id", "laptop")
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
