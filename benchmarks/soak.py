"""Soak: the publisher against a store that a writer changes every second, with faults injected in turn.

It runs for a bounded time, on loopback only, and must never exit, hang or remove another node's devices.

    python benchmarks/soak.py --minutes 60

A second publisher (node `soak_box`, a node id that starts like `soak`) publishes once at the start; its retained
discovery documents must all be there at the end. The publisher under test (node `soak`) must keep publishing state (a
fresh state message at least every three intervals once a fault is cleared), answer SIGTERM at the end with a clean
exit, and never be restarted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openusage_demo import EventWriter, generate_demo_store  # noqa: E402
from tests.mqtt.broker import Recorder, mosquitto, retained  # noqa: E402

INTERVAL = 5  # seconds between the publisher's refreshes


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Writer(threading.Thread):
    """A daemon-like writer: a message every second, an enrichment now and then, checkpoints."""

    def __init__(self, db: Path, stop: threading.Event) -> None:
        """Write to the store at `db` until `stop` is set."""
        super().__init__(daemon=True)
        self.db, self.stop, self.rows, self.errors = db, stop, 0, 0

    def run(self) -> None:
        """Append a few events a second, as the daemon does while agents work."""
        while not self.stop.wait(1.0):
            try:
                conn = sqlite3.connect(self.db, isolation_level=None, timeout=5)
                conn.execute("BEGIN IMMEDIATE")
                writer = EventWriter(conn)
                writer.add(source_system="claude_code", source_channel="jsonl", occurred_at=_now(),
                           provider_id="anthropic", account_id="claude-code", session_id="soak",
                           message_id=uuid.uuid4().hex, input_tokens=10, output_tokens=5, cost_usd=0.01,
                           model_raw="claude-sonnet-4-5", dedup_key=uuid.uuid4().hex)  # fmt: skip
                writer.flush()
                conn.execute("COMMIT")
                self.rows += 1
                if self.rows % 30 == 0:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.close()
            except sqlite3.Error:
                self.errors += 1  # the store is away during a fault


def _sql(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db, isolation_level=None, timeout=10)
    for statement in statements:
        conn.execute(statement)
    conn.close()


class _Faults:
    """The hostile faults the soak injects in turn, each with what clears it."""

    def __init__(self, state: Path, db: Path) -> None:
        """Inject into the state folder `state` and the store `db`."""
        self.state, self.db = state, db
        self.spool, self.hook = state / "telemetry-spool", state / "hook-spool"
        self.ns = time.time_ns()

    def pipes(self) -> None:
        """Put pipes, and a link to a pipe, into both spools."""
        os.mkfifo(self.spool / f"{self.ns:019d}_fifo.jsonl")
        os.mkfifo(self.state / "pipe-target")
        (self.spool / f"{self.ns + 1:019d}_link.jsonl").symlink_to(self.state / "pipe-target")
        os.mkfifo(self.hook / "pipe.json")

    def no_pipes(self) -> None:
        """Remove the pipes and the link."""
        for path in (self.spool / f"{self.ns:019d}_fifo.jsonl", self.spool / f"{self.ns + 1:019d}_link.jsonl",
                     self.state / "pipe-target", self.hook / "pipe.json"):  # fmt: skip
            path.unlink(missing_ok=True)

    def odd_names(self) -> None:
        """Put a record with an odd name, a folder and a dangling link into the spools."""
        (self.spool / ("\u00b9" * 19 + "_x.jsonl")).write_text(json.dumps({"spool_id": "x"}) + "\n")
        (self.hook / "folder.json").mkdir(exist_ok=True)
        (self.hook / "dangling.json").symlink_to(self.state / "nowhere")

    def no_odd_names(self) -> None:
        """Remove them."""
        (self.spool / ("\u00b9" * 19 + "_x.jsonl")).unlink(missing_ok=True)
        shutil.rmtree(self.hook / "folder.json", ignore_errors=True)
        (self.hook / "dangling.json").unlink(missing_ok=True)

    def hostile_rows(self) -> None:
        """Write rows with an empty time and with 1e308 tokens."""
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=10)
        conn.execute("BEGIN IMMEDIATE")
        writer = EventWriter(conn)
        for tokens, at in ((10, ""), (10, _now()), (10, _now())):
            writer.add(source_system="codex", occurred_at=at or _now(), message_id=uuid.uuid4().hex,
                       input_tokens=tokens, dedup_key=uuid.uuid4().hex, session_id="hostile")  # fmt: skip
        writer.flush()
        conn.execute("UPDATE usage_events SET occurred_at = '' WHERE session_id = 'hostile' AND rowid = "
                     "(SELECT min(rowid) FROM usage_events WHERE session_id = 'hostile')")  # fmt: skip
        conn.execute("UPDATE usage_events SET input_tokens = 1e308 WHERE session_id = 'hostile' AND occurred_at <> ''")
        conn.execute("COMMIT")
        conn.close()

    def no_hostile_rows(self) -> None:
        """Delete them."""
        _sql(self.db, "DELETE FROM usage_events WHERE session_id = 'hostile'")

    def many_metrics(self) -> None:
        """Write a quota snapshot with 20,000 metrics."""
        metrics = {f"m{i}": {"used": i, "unit": "requests"} for i in range(20_000)}
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=10)
        conn.execute("BEGIN IMMEDIATE")
        writer = EventWriter(conn)
        writer.add(source_system="provider_poller", source_channel="api", event_type="limit_snapshot",
                   occurred_at=_now(), provider_id="zai", account_id="zai", turn_id=uuid.uuid4().hex,
                   payload=json.dumps({"snapshot": {"status": "OK", "metrics": metrics}}),
                   dedup_key=uuid.uuid4().hex)  # fmt: skip
        writer.flush()
        conn.execute("COMMIT")
        conn.close()

    def store_away(self) -> None:
        """Move the store away."""
        self.db.rename(self.db.with_name("away.db"))

    def store_back(self) -> None:
        """Move it back."""
        self.db.with_name("away.db").rename(self.db)


def faults(
    state: Path, db: Path, broker_restart: Callable[[], None]
) -> list[tuple[str, Callable[[], None], Callable[[], None]]]:
    """Return (name, inject, clear) in the order they are injected."""
    f = _Faults(state, db)
    return [
        ("pipes and a link to a pipe in the spools", f.pipes, f.no_pipes),
        ("odd spool names, a folder and a dangling link", f.odd_names, f.no_odd_names),
        ("rows with an empty time and 1e308 tokens", f.hostile_rows, f.no_hostile_rows),
        ("a quota with 20,000 metrics", f.many_metrics, lambda: None),
        ("the store moved away", f.store_away, f.store_back),
        ("the broker restarted", broker_restart, lambda: None),
    ]


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _inject_in_turn(
    plan: list[tuple[str, Callable[[], None], Callable[[], None]]],
    rec: Recorder,
    publisher: subprocess.Popen[bytes],
    deadline: float,
) -> list[dict[str, Any]]:
    """Inject each fault in turn until the deadline; return how the publisher took each."""
    outcomes: list[dict[str, Any]] = []
    index = 0
    while time.monotonic() < deadline:
        name, inject, clear = plan[index % len(plan)]
        index += 1
        inject()
        time.sleep(min(30, max(0, deadline - time.monotonic())))
        clear()
        cleared = time.monotonic()
        # Once the fault is gone, a new state must arrive within three intervals.
        seen = len(rec.messages)
        while time.monotonic() - cleared < 3 * INTERVAL + 10 and len(rec.messages) == seen:
            time.sleep(0.5)
        silence = time.monotonic() - cleared
        alive = publisher.poll() is None
        outcomes.append({"fault": name, "publisher_alive": alive, "seconds_to_next_state": round(silence, 1)})
        print(f"{name}: alive={alive}, next state after {silence:.1f} s", flush=True)
        if not alive:
            break
        time.sleep(min(30, max(0, deadline - time.monotonic())))
    return outcomes


def _stop(publisher: subprocess.Popen[bytes]) -> tuple[bool, float, int, float]:
    """Stop the publisher with SIGTERM: whether it had exited by itself, its peak RSS, exit code and seconds to stop."""
    exited_by_itself = publisher.poll() is not None
    peak = _rss_mb(publisher.pid)
    started = time.monotonic()
    publisher.send_signal(signal.SIGTERM)
    code = publisher.wait(30)
    return exited_by_itself, peak, code, time.monotonic() - started


def main() -> int:
    """Run the soak from the command line and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.minutes * 60
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    state = work / "state"
    db = generate_demo_store(state, days=30, events=5000, seed=9)
    (state / "hook-spool").mkdir(exist_ok=True)
    (state / "telemetry-spool").mkdir(exist_ok=True)
    cli = [sys.executable, "-m", "custom_components.openusage.core.cli", "publish", "--tz", "UTC"]
    report: dict[str, object] = {"minutes": args.minutes, "faults": []}
    with mosquitto(work) as broker:
        box = generate_demo_store(work / "box", days=10, events=500, seed=4)

        def publish_box() -> None:
            subprocess.run([*cli, "--db", str(box), "--broker", broker.url, "--node-id", "soak_box", "--once"],
                           check=True, cwd=ROOT, capture_output=True)  # fmt: skip

        publish_box()
        other = {t for t in retained(broker.port, "homeassistant/device/+/config") if "openusage_soak_box" in t}
        log = (work / "publisher.log").open("w")
        publisher = subprocess.Popen([*cli, "--db", str(db), "--broker", broker.url, "--node-id", "soak",
                                      "--interval", str(INTERVAL)], cwd=ROOT, stdout=log, stderr=log)  # fmt: skip
        stop = threading.Event()
        writer = Writer(db, stop)
        writer.start()

        def restart_broker() -> None:
            # The test broker keeps nothing across a restart: node soak_box's publisher, run once at the start,
            # publishes again as it would on reconnecting. Node soak must not remove what it publishes.
            broker.stop()
            time.sleep(3)
            broker.start()
            publish_box()

        watch = Recorder(broker.port, ("homeassistant/device/+/config",))
        with Recorder(broker.port, ("openusage/soak/#",)) as rec, watch:
            outcomes = _inject_in_turn(faults(state, db, restart_broker), rec, publisher, deadline)
            report["faults"] = outcomes
            longest_silence = max((o["seconds_to_next_state"] for o in outcomes), default=0.0)
            stop.set()
            writer.join(10)
            exited_by_itself, peak, code, stop_seconds = _stop(publisher)
        left = set(retained(broker.port, "homeassistant/device/+/config"))
        # Every empty (deleting) message on node soak_box's topics: none may come, from anyone.
        removals = [m.topic for m in watch.messages if "openusage_soak_box" in m.topic and not m.payload]
        log.close()
    report.update({
        "writer_rows": writer.rows, "publisher_exited_by_itself": exited_by_itself, "exit_code_after_sigterm": code,
        "seconds_to_stop": round(stop_seconds, 1), "longest_silence_after_a_fault_s": round(longest_silence, 1),
        "other_node_devices_kept": other <= left, "other_node_devices": len(other), "peak_rss_mb": round(peak, 1),
        "removals_of_other_node_devices": len(removals),
        "tracebacks_in_log": (work / "publisher.log").read_text().count("Traceback"),
    })  # fmt: skip
    print(json.dumps(report, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    ok = (not exited_by_itself and code == 0 and other <= left and not removals and report["tracebacks_in_log"] == 0
          and longest_silence < 3 * INTERVAL + 10)  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
