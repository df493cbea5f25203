"""A real Mosquitto broker for the tests, on a free localhost port, and a subscriber that records."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    """Return a free local TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Broker:
    """A Mosquitto process on loopback."""

    port: int
    config: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the broker's URL."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process and wait until it listens."""
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        """Stop the process."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@contextmanager
def mosquitto(folder: Path, extra: str = "", port: int | None = None) -> Iterator[Broker]:
    """Run a Mosquitto on loopback with the configuration lines `extra`, and stop it afterwards."""
    port = port or free_port()
    config = folder / "mosquitto.conf"
    # As root, Mosquitto would switch to its own user, who cannot read the test's private folder.
    user = "user root\n" if os.geteuid() == 0 else ""
    config.write_text(
        f"listener {port} 127.0.0.1\n{user}"
        + (extra or "allow_anonymous true\n")
        + "persistence false\nlog_dest stderr\n"
    )
    broker = Broker(port, config)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class Received:
    """One message as received."""

    topic: str
    payload: bytes
    retain: bool
    qos: int


@dataclass
class Recorder:
    """Subscribes with QoS 2 and keeps every message (so a message's own QoS shows)."""

    port: int
    topics: tuple[str, ...] = ("#",)
    messages: list[Received] = field(default_factory=list)
    client: mqtt.Client | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Recorder:
        """Subscribe to everything and start recording."""
        ready = threading.Event()
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"recorder-{free_port()}")

        def on_connect(c, *_):
            for t in self.topics:
                c.subscribe(t, qos=2)
            ready.set()

        def on_message(_c, _u, msg):
            with self.lock:
                self.messages.append(Received(msg.topic, msg.payload, bool(msg.retain), msg.qos))

        client.on_connect = on_connect
        client.on_message = on_message
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        assert ready.wait(5)
        self.client = client
        return self

    def __exit__(self, *_) -> None:
        """Stop recording."""
        assert self.client is not None
        self.client.disconnect()
        self.client.loop_stop()

    def latest(self, topic: str) -> Received | None:
        """Return the latest message on `topic`."""
        with self.lock:
            found = [m for m in self.messages if m.topic == topic]
        return found[-1] if found else None

    def on(self, topic: str) -> list[Received]:
        """Return every message on `topic`."""
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate, timeout: float = 15) -> None:
        """Wait until `predicate` holds for what was received, or fail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("timed out waiting for MQTT messages")

    def clear(self) -> None:
        """Forget what was received."""
        with self.lock:
            self.messages.clear()


def retained(port: int, topic_filter: str, wait: float = 1.0) -> dict[str, bytes]:
    """Return what the broker holds retained under a filter, read by a fresh client."""
    with Recorder(port, (topic_filter,)) as rec:
        time.sleep(wait)
        return {m.topic: m.payload for m in rec.messages if m.retain}


def publish(port: int, topic: str, payload: str, retain: bool = False) -> None:
    """Publish one message with a fresh client."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
