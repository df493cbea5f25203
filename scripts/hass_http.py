"""Talking to a real Home Assistant over its HTTP API, as the screenshots and the smoke run do."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    """Return a free local TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Hass:
    """One Home Assistant on 127.0.0.1:`port`."""

    def __init__(self, port: int) -> None:
        """Talk to the Home Assistant listening on `port`."""
        self.base = f"http://127.0.0.1:{port}"
        self.client_id = f"{self.base}/"
        self.token: str | None = None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, form: bool = False) -> Any:
        """Send one HTTP request and return its JSON answer."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if form:
            data = "&".join(f"{k}={v}" for k, v in (body or {}).items()).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode() if body is not None else None
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=180) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def wait_until_up(self, process: subprocess.Popen[bytes], path: str = "/api/onboarding") -> None:
        """Wait until Home Assistant answers on `path`, or fail if its process ends."""
        for _ in range(1200):
            if process.poll() is not None:
                raise SystemExit("Home Assistant stopped while starting")
            try:
                self.request("GET", path)
                return
            except urllib.error.HTTPError as err:
                if err.code in (401, 403):  # up, and asking who we are
                    return
                time.sleep(0.5)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        raise SystemExit("Home Assistant did not start")

    def onboard(self) -> dict[str, Any]:
        """Create the demo user and finish onboarding; returns the user's tokens (and uses them from now on)."""
        user = self.request("POST", "/api/onboarding/users", {"client_id": self.client_id, "name": "Demo",
                            "username": "demo", "password": "demo-password", "language": "en"})  # fmt: skip
        tokens = self.request("POST", "/auth/token", {"grant_type": "authorization_code", "code": user["auth_code"],
                                                      "client_id": self.client_id}, form=True)  # fmt: skip
        self.token = tokens["access_token"]
        self.request("POST", "/api/onboarding/core_config", {})
        self.request("POST", "/api/onboarding/analytics", {})
        self.request(
            "POST", "/api/onboarding/integration", {"client_id": self.client_id, "redirect_uri": self.client_id}
        )
        return dict(tokens)

    def set_options(self, entry_id: str, options: dict[str, Any]) -> None:
        """Return the entry's options flow, as a user fills it in (the form's other fields keep their defaults)."""
        flow = self.request("POST", "/api/config/config_entries/options/flow", {"handler": entry_id})
        result = self.request("POST", f"/api/config/config_entries/options/flow/{flow['flow_id']}", options)
        if result.get("type") != "create_entry":
            raise SystemExit(f"the options flow did not finish: {result}")

    def add_integration(self, store: Path) -> dict[str, Any]:
        """Return the OpenUsage config flow, as a user goes through it; returns the created entry."""
        flow = self.request("POST", "/api/config/config_entries/flow", {"handler": "openusage"})
        result = self.request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}", {"path": str(store)})
        if result.get("type") != "create_entry":
            raise SystemExit(f"the config flow did not create an entry: {result}")
        return dict(result["result"])
