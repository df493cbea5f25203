"""The publisher against a real Mosquitto broker."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from custom_components.openusage.core.discovery import Topics, plan
from custom_components.openusage.core.reader import read_store
from openusage_demo import EventWriter
from tests.storebuilder import limit_snapshot, message

from .broker import Broker, Recorder, mosquitto, publish, retained

REPO = Path(__file__).parents[2]
TOPICS = Topics("homeassistant", "testbox")
HUB_CONFIG = TOPICS.discovery("")


def command(store: Path, broker_url: str, *extra: str) -> list[str]:
    """Return the publisher's command line for `store` and the broker at `broker_url`."""
    return [sys.executable, "-m", "custom_components.openusage.core.cli", "publish", "--db", str(store),
            "--broker", broker_url, "--node-id", "testbox", "--tz", "UTC", *extra]  # fmt: skip


def run_once(store: Path, broker: Broker, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    """Publish once and return how the command ended."""
    return subprocess.run(
        command(store, broker.url, "--once", *extra), capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, **(env or {})}, check=False,
    )  # fmt: skip


def start(store: Path, broker_url: str, *extra: str) -> subprocess.Popen[str]:
    """Start the publisher in the background."""
    return subprocess.Popen(
        command(store, broker_url, "--interval", "2", *extra), cwd=REPO, stderr=subprocess.PIPE, text=True
    )


def stop(process: subprocess.Popen[str]) -> str:
    """Stop the publisher with SIGTERM and return what it wrote to stderr."""
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    return err


async def test_discovery_payloads_flags_and_states(store: Path, broker: Broker) -> None:
    result = run_once(store, broker)
    assert result.returncode == 0, result.stderr
    with Recorder(broker.port) as rec:
        rec.wait_for(lambda: rec.latest(HUB_CONFIG) is not None)
        time.sleep(0.5)
        snapshot = await read_store(store, datetime.now(UTC), ZoneInfo("UTC"))
        expected = plan(snapshot, TOPICS, interval=60.0)
        configs = {m.topic: m for m in rec.messages if m.topic.startswith("homeassistant/device/")}
        assert set(configs) == set(expected.discovery)
        for topic, received in configs.items():
            assert received.retain, topic
            assert received.qos == 1, topic
            document = json.loads(received.payload)
            assert document["o"]["name"] == "openusage-ha"
            assert document["dev"]["identifiers"] == [topic.split("/")[2]]
            for component_id, component in document["cmps"].items():
                assert component["p"] in ("sensor", "binary_sensor")
                assert component["unique_id"] == f"{topic.split('/')[2]}_{component_id}"
                assert component["default_entity_id"] == f"{component['p']}.{component['object_id']}"
        hub = json.loads(configs[HUB_CONFIG].payload)["cmps"]
        documents = {json.loads(m.payload)["dev"]["name"]: json.loads(m.payload)["cmps"] for m in configs.values()}
        # Entity ids follow Home Assistant's own rule, as the native entities' do: device name, entity name.
        assert (
            documents["OpenUsage (testbox)"]["cost_30d"]["default_entity_id"] == "sensor.openusage_testbox_cost_30_days"
        )
        claude = documents["Claude Code (testbox)"]
        assert claude["quota_usage_five_hour"]["default_entity_id"] == "sensor.claude_code_testbox_5_hour_usage"
        assert claude["quota_usage_five_hour"]["icon"] == "mdi:gauge"
        assert claude["quota_status"]["options"] == ["OK", "Near limit", "Limited", "Auth required", "Unsupported",
                                                     "Error", "Unknown"]  # fmt: skip
        assert hub["messages_today"]["icon"] == "mdi:message-text-outline"
        assert hub["cost_today"]["device_class"] == "monetary"
        assert hub["cost_today"]["state_class"] == "total"
        assert hub["cost_today"]["unit_of_measurement"] == "USD"
        assert "expire_after" not in hub["cost_today"]  # totals keep their value
        assert hub["cost_today"]["availability"] == [{"topic": TOPICS.store_availability}]
        assert hub["active_sessions"]["expire_after"] >= 300
        assert hub["active_sessions"]["availability_mode"] == "all"
        assert hub["input_tokens_today"]["enabled_by_default"] is False
        assert hub["store_size"]["entity_category"] == "diagnostic"
        assert rec.latest(TOPICS.availability).payload == b"online"
        assert rec.latest(TOPICS.store_availability).payload == b"online"
        for topic, text in expected.states.items():
            got = json.loads(rec.latest(topic).payload)
            want = json.loads(text)
            for key in ("snapshot_age", "oldest_spool_age"):  # seconds tick between the two reads
                got.pop(key, None)
                want.pop(key, None)
            assert got == want, topic


def test_last_will_when_killed(store: Path, broker: Broker) -> None:
    with Recorder(broker.port, (TOPICS.availability,)) as rec:
        process = start(store, broker.url)
        try:
            rec.wait_for(
                lambda: rec.latest(TOPICS.availability) and rec.latest(TOPICS.availability).payload == b"online"
            )
        finally:
            process.kill()
            process.wait()
        rec.wait_for(lambda: rec.latest(TOPICS.availability).payload == b"offline", timeout=10)
    assert retained(broker.port, TOPICS.availability)[TOPICS.availability] == b"offline"


def test_clean_shutdown_publishes_offline(store: Path, broker: Broker) -> None:
    with Recorder(broker.port, (TOPICS.availability,)) as rec:
        process = start(store, broker.url)
        rec.wait_for(lambda: rec.latest(TOPICS.availability) and rec.latest(TOPICS.availability).payload == b"online")
        stop(process)
        assert process.returncode == 0
        rec.wait_for(lambda: rec.latest(TOPICS.availability).payload == b"offline", timeout=5)


def test_republishes_on_birth_and_only_changes_otherwise(store: Path, broker: Broker) -> None:
    with Recorder(broker.port) as rec:
        process = start(store, broker.url)
        try:
            rec.wait_for(lambda: rec.latest(HUB_CONFIG) is not None)
            time.sleep(5)  # two more polls with nothing new
            assert len(rec.on(HUB_CONFIG)) == 1  # nothing changed: nothing re-sent
            rec.clear()
            publish(broker.port, "homeassistant/status", "online")
            rec.wait_for(lambda: rec.latest(HUB_CONFIG) is not None and rec.latest(TOPICS.state("")) is not None)
        finally:
            stop(process)


def test_reconnects_after_a_broker_restart(store: Path, tmp_path: Path) -> None:
    with mosquitto(tmp_path / "b1" if (tmp_path / "b1").mkdir() is None else tmp_path) as broker:
        port = broker.port
        process = start(store, broker.url)
        try:
            with Recorder(port) as rec:
                rec.wait_for(lambda: rec.latest(HUB_CONFIG) is not None)
            broker.stop()
            time.sleep(2)
            broker.start()  # no persistence: every retained message is gone
            with Recorder(port) as rec:
                rec.wait_for(lambda: rec.latest(HUB_CONFIG) is not None, timeout=40)
                rec.wait_for(lambda: rec.latest(TOPICS.state("")) is not None)
                # Retained messages arrive in the broker's topic order, not in publishing order.
                rec.wait_for(lambda: rec.latest(TOPICS.availability) is not None)
                assert rec.latest(TOPICS.availability).payload == b"online"
        finally:
            stop(process)


def test_stale_topics_are_cleaned_up(store: Path, broker: Broker) -> None:
    gone_device = TOPICS.discovery("zai_zai")
    ours = TOPICS.state("")  # a document is this node's when its entities read this node's state topics
    stale_hub = {"dev": {"identifiers": ["openusage_testbox"]}, "o": {"name": "openusage-ha"},
                 "cmps": {"cost_today": {"p": "sensor", "unique_id": "x", "state_topic": ours},
                          "removed_metric": {"p": "sensor", "unique_id": "openusage_testbox_removed_metric",
                                             "state_topic": ours}}}  # fmt: skip
    gone = {"dev": {}, "o": {}, "cmps": {"a": {"p": "sensor", "state_topic": TOPICS.state("zai_zai")}}}
    publish(broker.port, gone_device, json.dumps(gone), True)
    publish(broker.port, HUB_CONFIG, json.dumps(stale_hub), True)
    other = "homeassistant/device/somebody_else/config"
    publish(broker.port, other, json.dumps({"cmps": {}}), True)
    result = run_once(store, broker)
    assert result.returncode == 0, result.stderr
    left = retained(broker.port, "homeassistant/device/+/config")
    assert gone_device not in left
    assert other in left  # not ours: untouched
    hub = json.loads(left[HUB_CONFIG])["cmps"]
    assert hub["removed_metric"] == {"p": "sensor"}  # removal of a single component
    assert "unique_id" in hub["cost_today"]


def test_unreadable_store_keeps_running_and_recovers(store: Path, broker: Broker) -> None:
    with Recorder(broker.port) as rec:
        process = start(store, broker.url)
        try:
            rec.wait_for(lambda: rec.latest(TOPICS.store_availability) is not None)
            moved = store.with_name("away.db")
            store.rename(moved)
            rec.wait_for(lambda: rec.latest(TOPICS.store_availability).payload == b"offline")
            assert process.poll() is None
            moved.rename(store)
            rec.wait_for(lambda: rec.latest(TOPICS.store_availability).payload == b"online")
        finally:
            err = stop(process)
    assert err.count("cannot read the store") == 1
    assert "no such file" in err
    assert "the store is readable again" in err


def test_hostile_names_stay_in_their_topics(tmp_path: Path, broker: Broker) -> None:
    db = tmp_path / "telemetry.db"
    from tests.storebuilder import store as make_store

    evil = ["a/b", "+", "#", "x y", "zaï✓", "../up", "L" * 300, "$SYS/x"]
    with make_store(db) as writer:
        for i, name in enumerate(evil):
            message(writer, "2026-08-17T10:00:00Z", message_id=f"m{i}", provider_id=name, account_id=name,
                    model_raw=name, workspace_id=name, agent_name=name, input_tokens=1)  # fmt: skip
            limit_snapshot(writer, "2026-08-17T10:00:00Z", name, name, {"snapshot": {"status": "OK", "metrics": {
                name: {"used": 1, "limit": 2, "remaining": None, "unit": "%", "window": name}}}})  # fmt: skip
    with Recorder(broker.port) as rec:
        result = run_once(db, broker, "--node-id", "evil/+#node")
        assert result.returncode == 0, result.stderr
        time.sleep(1)
        topics = {m.topic for m in rec.messages}
    assert len(topics) > 10
    for topic in topics:
        assert re.fullmatch(r"[a-z0-9_]+(/[a-z0-9_]+)+", topic), topic
        assert len(topic) < 200


def test_dry_run_prints_without_connecting(store: Path) -> None:
    result = subprocess.run(
        command(store, "mqtt://127.0.0.1:1", "--dry-run"), capture_output=True, text=True, cwd=REPO, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("homeassistant/device/openusage_testbox/config {")
    assert any(line.startswith("openusage/testbox/availability online") for line in lines)


@pytest.mark.parametrize(
    ("option", "file_text"),
    [("--broker", None), ("--config", "broker = [\n"), ("--config", 'colour = "blue"\n'), ("--password-file", None)],
    ids=["not an MQTT URL", "not TOML", "an unknown key", "no password file"],
)
def test_settings_errors_exit_2(store: Path, tmp_path: Path, option: str, file_text: str | None) -> None:
    value = "http://x" if option == "--broker" else str(tmp_path / "settings")
    if file_text is not None:
        (tmp_path / "settings").write_text(file_text)
    result = subprocess.run(command(store, "mqtt://127.0.0.1", option, value), capture_output=True, text=True,
                            cwd=REPO, check=False, timeout=60)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_settings_from_toml(store: Path, broker: Broker, tmp_path: Path) -> None:
    config = tmp_path / "publish.toml"
    config.write_text(f'db = "{store}"\nbroker = "{broker.url}"\nnode_id = "fromtoml"\ndiscovery_prefix = "ha"\n'
                      'link = ["openrouter=opencode"]\ninterval = 30\n')  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "custom_components.openusage.core.cli", "publish", "--config", str(config), "--once"],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    left = retained(broker.port, "ha/device/+/config")
    assert "ha/device/openusage_fromtoml/config" in left
    assert not any("openrouter_openrouter" in t and "opencode" in t for t in left)


def test_new_entities_are_published_without_restart(store: Path, broker: Broker) -> None:
    with Recorder(broker.port) as rec:
        process = start(store, broker.url)
        try:
            rec.wait_for(lambda: rec.latest(HUB_CONFIG) is not None)
            conn = sqlite3.connect(store, isolation_level=None)
            writer = EventWriter(conn)
            conn.execute("BEGIN")
            limit_snapshot(writer, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "zai", "zai", {"snapshot": {
                "status": "OK", "metrics": {"usage_five_hour": {"used": 9, "limit": 100, "remaining": None,
                                                                "unit": "%", "window": "5h"}}}})  # fmt: skip
            writer.flush()
            conn.execute("COMMIT")
            conn.close()
            topic = TOPICS.discovery("zai_zai")
            rec.wait_for(lambda: rec.latest(topic) is not None)
            state = TOPICS.state("zai_zai")
            rec.wait_for(lambda: rec.latest(state) is not None)
            assert json.loads(rec.latest(state).payload)["quota_usage_five_hour"] == 9.0
        finally:
            stop(process)


def _tls_material(folder: Path) -> dict[str, Path]:
    """Return a private CA and a server certificate for 127.0.0.1 and localhost, made with openssl."""
    files = {name: folder / f"{name}" for name in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt")}
    ext = folder / "san.ext"
    ext.write_text("subjectAltName = DNS:localhost, IP:127.0.0.1\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=openusage test CA",
            "-keyout", str(files["ca.key"]), "-out", str(files["ca.crt"]))  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", str(files["server.key"]),
            "-out", str(files["server.csr"]))  # fmt: skip
    openssl("x509", "-req", "-in", str(files["server.csr"]), "-CA", str(files["ca.crt"]), "-CAkey",
            str(files["ca.key"]), "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out",
            str(files["server.crt"]))  # fmt: skip
    return files


def test_password_and_tls(store: Path, tmp_path: Path) -> None:
    tls = _tls_material(tmp_path)
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), "agent", "s3cret-pw"], check=True)
    extra = (
        f"allow_anonymous false\npassword_file {passwords}\n"
        f"cafile {tls['ca.crt']}\ncertfile {tls['server.crt']}\nkeyfile {tls['server.key']}\n"
    )
    password_file = tmp_path / "pw.txt"
    password_file.write_text("s3cret-pw\n")
    with mosquitto(tmp_path, extra) as broker:
        url = f"mqtts://localhost:{broker.port}"
        good = subprocess.run(
            command(store, url, "--once", "--username", "agent", "--password-file", str(password_file),
                    "--tls-ca", str(tls["ca.crt"]), "--verbose"),
            capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
        )  # fmt: skip
        assert good.returncode == 0, good.stderr
        assert "s3cret-pw" not in good.stderr + good.stdout
        # The password may come from the environment instead; a wrong one is refused, and never logged.
        wrong = subprocess.run(
            command(store, url, "--once", "--username", "agent", "--tls-ca", str(tls["ca.crt"])),
            capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
            env={**os.environ, "OPENUSAGE_HA_MQTT_PASSWORD": "wrong-pw"},
        )  # fmt: skip
        assert wrong.returncode == 4
        assert "wrong-pw" not in wrong.stderr
        # The same in this process, so that the TLS and login set-up is measured by coverage.
        from custom_components.openusage.core.publisher import Publisher
        from custom_components.openusage.core.settings import PublishSettings

        settings = PublishSettings(db=store, broker=url, username="agent", password="s3cret-pw",
                                   tls_ca=tls["ca.crt"], node_id="tlsproc", zone=ZoneInfo("UTC"))  # fmt: skip
        assert Publisher(settings).run(once=True) == 0
        # Without the CA the server's certificate is not trusted.
        untrusted = subprocess.run(
            command(store, url, "--once", "--username", "agent", "--password-file", str(password_file)),
            capture_output=True, text=True, cwd=REPO, check=False, timeout=120,
        )  # fmt: skip
        assert untrusted.returncode == 4


def test_deployment_files_use_real_settings() -> None:
    """The example TOML's keys and the service files' command lines are what the publisher accepts."""
    import plistlib
    import shlex

    from custom_components.openusage.core.cli import build_parser
    from custom_components.openusage.core.settings import load_toml

    example = load_toml(REPO / "deploy" / "publish.example.toml")
    assert {"db", "broker", "username", "password_file"} <= set(example)
    unit = (REPO / "deploy" / "systemd" / "openusage-ha-publish.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_start.removeprefix("ExecStart="))[1:]
    assert build_parser().parse_args(argv).command == "publish"
    agent = plistlib.loads((REPO / "deploy" / "launchd" / "io.github.openusage-ha.publish.plist").read_bytes())
    assert build_parser().parse_args(agent["ProgramArguments"][1:]).config.name == "publish.toml"


def _settings(store: Path, broker: Broker, **changes: object):
    from custom_components.openusage.core.settings import PublishSettings

    return PublishSettings(db=store, broker=broker.url, node_id="inproc", interval=1.0, zone=ZoneInfo("UTC"),
                           **changes)  # type: ignore[arg-type]  # fmt: skip


def test_in_process_lifecycle(store: Path, broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    """The publisher's loop in this process (so coverage sees it): publish, birth, change, stop."""
    import logging
    import threading

    from custom_components.openusage.core.publisher import Publisher

    topics = Topics("homeassistant", "inproc")
    publisher = Publisher(_settings(store, broker))
    caplog.set_level(logging.INFO)
    result: list[int] = []
    with Recorder(broker.port) as rec:
        thread = threading.Thread(target=lambda: result.append(publisher.run()))
        thread.start()
        try:
            rec.wait_for(lambda: rec.latest(topics.discovery("")) is not None)
            rec.clear()
            publish(broker.port, "homeassistant/status", "online")
            rec.wait_for(lambda: rec.latest(topics.discovery("")) is not None)
            assert "Home Assistant came online" in caplog.text
            store.rename(store.with_name("gone.db"))
            # (nothing may have come on the topic since the recorder was cleared: wait for it, do not fail)
            rec.wait_for(lambda: getattr(rec.latest(topics.store_availability), "payload", None) == b"offline")
            store.with_name("gone.db").rename(store)
            rec.wait_for(lambda: getattr(rec.latest(topics.store_availability), "payload", None) == b"online")
        finally:
            publisher.stop()
            thread.join(20)
        rec.wait_for(lambda: rec.latest(topics.availability).payload == b"offline")
    assert result == [0]


def test_in_process_once_and_refusals(store: Path, broker: Broker, tmp_path: Path) -> None:
    from custom_components.openusage.core.publisher import Publisher, dry_run

    assert Publisher(_settings(store, broker)).run(once=True) == 0
    assert "homeassistant/device/openusage_inproc/config" in retained(broker.port, "homeassistant/device/+/config")
    missing = _settings(tmp_path / "none.db", broker)
    assert Publisher(missing).run(once=True) == 3  # connected, but the store cannot be read
    # ... and it left the running node's entities alone: its store is still online.
    store_topic = Topics("homeassistant", "inproc").store_availability
    assert retained(broker.port, store_topic)[store_topic] == b"online"
    unreachable = _settings(store, Broker(port=1, config=tmp_path / "x"))
    assert Publisher(unreachable).run(once=True) == 4
    out = __import__("io").StringIO()
    assert dry_run(_settings(store, broker), out) == 0
    assert out.getvalue().startswith("homeassistant/device/openusage_inproc/config ")
    assert dry_run(missing, out) == 3


def test_cli_publish_in_process(
    store: Path, broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`openusage-ha publish` through `main()` in a worker thread (measured by coverage)."""
    from concurrent.futures import ThreadPoolExecutor

    from custom_components.openusage.core.cli import main as cli_main

    def main(argv: list[str]) -> int:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(cli_main, argv).result()

    password = tmp_path / "pw"
    password.write_text("unused\n")
    config = tmp_path / "p.toml"
    config.write_text(f'db = "{store}"\nbroker = "{broker.url}"\nnode_id = "viatoml"\ntz = "Europe/Warsaw"\n'
                      f'password_file = "{password}"\nusername = "u"\nactive_minutes = 30\n'
                      'link = ["openrouter=opencode"]\n')  # fmt: skip
    assert main(["publish", "--config", str(config), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "homeassistant/device/openusage_viatoml/config" in printed
    assert "unused" not in printed
    assert main(["publish", "--db", str(store), "--broker", broker.url, "--once", "--node-id", "cli", "-v"]) == 0
    assert main(["publish", "--db", str(store)]) == 2
    assert main(["publish", "--db", str(store), "--broker", "mqtt://h:notaport"]) == 2
    assert "not a broker URL: mqtt://h:notaport" in capsys.readouterr().err


def test_a_clean_stop_logs_no_warning(store: Path, broker: Broker, caplog: pytest.LogCaptureFixture) -> None:
    """Neither the end of a --once run nor a stop after the broker went away is reported as a problem."""
    from custom_components.openusage.core.publisher import Publisher

    with caplog.at_level(logging.DEBUG):
        assert Publisher(_settings(store, broker)).run(once=True) == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    publisher = Publisher(_settings(store, broker))
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(publisher.run()))
    with caplog.at_level(logging.DEBUG):
        worker.start()
        assert publisher._connected.wait(10)
        time.sleep(0.5)
        broker.stop()
        publisher.stop()
        worker.join(20)
    assert result == [0]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_signals_stop_the_publisher(store: Path, broker: Broker) -> None:
    from custom_components.openusage.core.publisher import Publisher, install_signal_handlers

    publisher = Publisher(_settings(store, broker))
    before = signal.getsignal(signal.SIGTERM)
    restore = install_signal_handlers(publisher)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        assert publisher._stop.is_set()
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) == before
