"""Node ids, accounts, metrics and keys that look alike.

Each keeps its own id, and no node touches another node's devices.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from custom_components.openusage.core.catalog import catalog
from custom_components.openusage.core.discovery import Topics, plan
from custom_components.openusage.core.models import Breakdown
from custom_components.openusage.core.quotas import MAX_METRICS_PER_ACCOUNT
from custom_components.openusage.core.reader import read_store
from openusage_demo import generate_demo_store
from tests.mqtt.broker import Broker, retained
from tests.storebuilder import limit_snapshot, message, store

REPO = Path(__file__).parents[2]
NOW = datetime.now(UTC).replace(microsecond=0)


def publish_once(db: Path, broker: Broker, node: str) -> None:
    """Publish the store once as node `node`."""
    result = subprocess.run(
        [sys.executable, "-m", "custom_components.openusage.core.cli", "publish", "--db", str(db), "--broker",
         broker.url, "--node-id", node, "--once", "--tz", "UTC"],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_a_node_never_removes_the_devices_of_a_node_whose_id_starts_like_its_own(
    tmp_path: Path, broker: Broker
) -> None:
    # `dev` and `dev_box`: host names such as these are common, and node ids default to them.
    box = generate_demo_store(tmp_path / "box", days=10, events=300, seed=1, now=NOW)
    dev = tmp_path / "dev.db"
    with store(dev) as w:
        message(w, NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), message_id="only")  # a store with one account
    publish_once(box, broker, "dev_box")
    before = {t for t in retained(broker.port, "homeassistant/device/+/config") if "openusage_dev_box" in t}
    assert len(before) > 3
    publish_once(dev, broker, "dev")  # it has fewer devices: it removes the stale ones it finds of its own
    after = retained(broker.port, "homeassistant/device/+/config")
    assert before <= set(after)


async def test_accounts_metrics_and_keys_that_slug_alike_keep_their_own_ids(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    at = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    quota = {"metrics": {"usage.five_hour": {"used": 90, "unit": "%"}, "usage_five_hour": {"used": 10, "unit": "%"},
                         "status": {"used": 3, "unit": "requests"}}, "status": "OK"}  # fmt: skip
    with store(db) as w:
        for i, account in enumerate(("a.b", "a_b", "A-B", "a b")):
            message(w, at, message_id=f"m{i}", account_id=account, cost_usd=float(i + 1))
        limit_snapshot(w, at, "claude_code", "claude-code", {"snapshot": quota})
        for model in ("gpt-5", "gpt_5"):
            message(w, at, message_id=model, model_raw=model, cost_usd=5.0)
    snapshot = await read_store(db, NOW, ZoneInfo("UTC"))
    specs = catalog(snapshot, frozenset({Breakdown.MODEL}))
    ids = [(s.device, s.key) for s in specs]
    assert len(ids) == len(set(ids))  # every entity its own unique id, natively
    claude = {s.key: s for s in specs if s.device == "claude_code/claude-code"}
    assert claude["quota_status"].name == "Quota status"  # a metric named `status` does not replace it
    shown = sorted(s.value(snapshot) for k, s in claude.items() if k.startswith("quota_usage_five_hour"))
    assert shown == [10.0, 90.0]  # both five-hour metrics, neither hidden
    result = plan(snapshot, Topics("homeassistant", "n"), 60.0, breakdown_sensors=frozenset({Breakdown.MODEL}))
    accounts = [json.loads(s) for t, s in result.states.items() if "claude_code_a" in t]
    assert sorted(state["cost_today"] for state in accounts) == [1.0, 2.0, 3.0, 4.0]  # four devices, four figures
    components = [cid for document in result.discovery.values() for cid in document["cmps"]]
    unique_ids = [c["unique_id"] for d in result.discovery.values() for c in d["cmps"].values()]
    assert len(unique_ids) == len(set(unique_ids)) == len(components)


async def test_quota_metrics_are_capped_per_account(tmp_path: Path) -> None:
    db = tmp_path / "telemetry.db"
    metrics = {f"metric_{i:05d}": {"used": i, "unit": "requests"} for i in range(5_000)}
    metrics["usage_five_hour"] = {"used": 42, "unit": "%"}
    with store(db) as w:
        limit_snapshot(w, NOW.strftime("%Y-%m-%dT%H:%M:%SZ"), "zai", "zai", {"snapshot": {"metrics": metrics}})
    snapshot = await read_store(db, NOW, ZoneInfo("UTC"))
    (quota,) = snapshot.quotas.values()
    assert len(quota.metrics) == MAX_METRICS_PER_ACCOUNT
    assert "usage_five_hour" in quota.metrics  # the metrics openusage's providers write come first
    assert quota.metrics_left_out == 5_001 - MAX_METRICS_PER_ACCOUNT
    status = next(s for s in catalog(snapshot) if s.key == "quota_status")
    assert status.attributes is not None
    assert status.attributes(snapshot)["metrics_left_out"] == quota.metrics_left_out
