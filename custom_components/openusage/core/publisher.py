"""`openusage-ha publish`: sends the store's figures to an MQTT broker with Home Assistant discovery.

It keeps running through an unreadable store, a broker restart or a network loss: the store's
entities go unavailable (and the log says why), the connection is retried with exponential
back-off, and after every (re)connect and every Home Assistant birth message the current discovery
and states are published again. Nothing is queued while disconnected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .discovery import OFFLINE, ONLINE, Message, Plan, Topics, components_of, plan
from .exit_codes import ExitCode
from .models import Snapshot
from .reader import StoreError, StoreReader
from .settings import PublishSettings

_LOGGER = logging.getLogger("openusage_ha.publish")
# How long to collect our own retained discovery documents before cleaning up stale ones.
READ_BACK_SECONDS = 2.0
BIRTH_DELAY = (1.0, 5.0)  # seconds, random within: not every publisher answers a birth at once
CONNECT_TIMEOUT = 30.0


_PAHO_LOGGER = logging.getLogger("openusage_ha.mqtt")


def _paho_log(_client: mqtt.Client, _userdata: object, _level: int, text: str) -> None:
    _PAHO_LOGGER.debug("%s", text)


class Publisher:
    """One workstation's publisher: a paho client thread plus a refresh loop in the caller's thread."""

    def __init__(self, settings: PublishSettings) -> None:
        """Prepare the publisher; nothing connects until `run`."""
        self.settings = settings
        self.topics = Topics(settings.discovery_prefix, settings.node_id)
        self.reader = StoreReader(settings.db, settings.read_options)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._connect_failed = threading.Event()  # a refusal or a TLS/network failure, for --once
        self._lock = threading.Lock()
        self._full_publish = False  # set on connect and on a birth message
        self._retained: dict[str, dict[str, str]] = {}  # our discovery topics on the broker → components
        self._reading_back = False
        self._published_states: dict[str, str] = {}
        self._published_discovery: dict[str, str] = {}
        self._store_ok: bool | None = None
        self._last_snapshot: Snapshot | None = None
        self._failing = False  # the last refresh or publish failed (told once)
        self._published_store_state: str | None = None
        self._client: mqtt.Client | None = None

    # -- MQTT plumbing -------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        host, port, tls = self.settings.host_port_tls
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"openusage-ha-{self.topics.node_id}-{random.getrandbits(32):08x}",
            protocol=mqtt.MQTTv311,
        )
        # paho's own words go to the debug log: a lost connection is told once by on_disconnect below, not
        # again by paho at ERROR (as "failed to receive on socket" during a stop or a broker restart).
        client.on_log = _paho_log
        if self.settings.username:
            client.username_pw_set(self.settings.username, self.settings.password)
        if tls or self.settings.tls_ca:
            client.tls_set(
                ca_certs=str(self.settings.tls_ca) if self.settings.tls_ca else None,
                certfile=str(self.settings.tls_cert) if self.settings.tls_cert else None,
                keyfile=str(self.settings.tls_key) if self.settings.tls_key else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        client.will_set(self.topics.availability, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=60)  # exponential back-off
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_connect_fail = self._on_connect_fail
        client.connect_async(host, port, keepalive=30)
        return client

    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object, reason: Any, _props: object) -> None:
        if reason.is_failure:
            _LOGGER.warning("broker refused the connection: %s", reason)
            self._connect_failed.set()
            return
        _LOGGER.info("connected to %s", self._safe_broker())
        client.subscribe(self.topics.birth, qos=1)
        with self._lock:
            self._full_publish = True
        self._connected.set()
        self._wake.set()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: object) -> None:
        _LOGGER.warning("cannot connect to %s; retrying with back-off", self._safe_broker())
        self._connect_failed.set()

    def _wait_connected(self, once: bool) -> bool:
        """Wait for a connection: in --once mode give up at the first failure (or after a timeout)."""
        if not once:
            return self._connected.wait(self.settings.interval)
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while time.monotonic() < deadline and not self._connect_failed.is_set():
            if self._connected.wait(0.1):
                return True
        return self._connected.is_set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, reason: Any, _props: object
    ) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            _LOGGER.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.topics.birth:
            if message.payload.decode(errors="replace").strip() == ONLINE:
                delay = random.uniform(*BIRTH_DELAY)
                _LOGGER.info("Home Assistant came online; publishing everything again in %.1f s", delay)
                timer = threading.Timer(delay, self._request_full_publish)
                timer.daemon = True
                timer.start()
            return
        if self._reading_back and message.retain and message.payload:
            try:
                document = json.loads(message.payload)
            except ValueError:
                return
            if isinstance(document, dict) and self.topics.owns(message.topic, document):
                with self._lock:
                    self._retained[message.topic] = components_of(document)

    def _request_full_publish(self) -> None:
        with self._lock:
            self._full_publish = True
        self._wake.set()

    def _safe_broker(self) -> str:
        """Return the broker URL without any credentials that may have been written into it."""
        parts = urlsplit(self.settings.broker)
        return f"{parts.scheme}://{parts.hostname}:{self.settings.host_port_tls[1]}"

    def _send(self, messages: list[Message]) -> None:
        client = self._client
        assert client is not None
        infos = [client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain) for m in messages]
        for info in infos:
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                info.wait_for_publish(timeout=10)

    # -- figures -------------------------------------------------------------------------------
    def _refresh(self, loop: asyncio.AbstractEventLoop) -> Snapshot | None:
        try:
            snapshot = loop.run_until_complete(self.reader.refresh(datetime.now(UTC), self.settings.zone))
        except StoreError as err:
            if self._store_ok is not False:
                _LOGGER.error("cannot read the store, its entities are unavailable: %s", err)  # noqa: TRY400
            self._store_ok = False
            return None
        if self._store_ok is False:
            _LOGGER.info("the store is readable again")
        self._store_ok = True
        self._last_snapshot = snapshot
        return snapshot

    def current_plan(self, snapshot: Snapshot, removed: dict[str, dict[str, str]] | None = None) -> Plan:
        """Return what to publish for `snapshot`."""
        return plan(
            snapshot,
            self.topics,
            self.settings.interval,
            breakdown_sensors=self.settings.breakdown_sensors,
            removed=removed,
        )

    def _read_back(self) -> None:
        """Collect the discovery documents this node left on the broker (retained), to clean up."""
        client = self._client
        assert client is not None
        self._reading_back = True
        client.subscribe(self.topics.discovery_filter, qos=1)
        time.sleep(READ_BACK_SECONDS)
        client.unsubscribe(self.topics.discovery_filter)
        self._reading_back = False

    def _publish(self, snapshot: Snapshot | None, full: bool) -> None:
        store_text = ONLINE if snapshot else OFFLINE
        # The store's availability is retained: sent when it changes (and on a full publish), not each time.
        store_state = [Message(self.topics.store_availability, store_text)]
        if not full and store_text == self._published_store_state:
            store_state = []
        self._published_store_state = store_text
        messages: list[Message] = []
        if snapshot is None:
            self._send([*store_state, Message(self.topics.availability, ONLINE)] if full else store_state)
            return
        with self._lock:
            retained, self._retained = self._retained, {}
        removed: dict[str, dict[str, str]] = {}
        current = self.current_plan(snapshot)
        for topic, components in retained.items():
            produced = current.discovery.get(topic)
            if produced is None:
                messages.append(Message(topic, ""))  # a whole device this node no longer has
                continue
            gone = {cid: p for cid, p in components.items() if cid not in produced["cmps"]}
            if gone:
                removed[topic] = gone
        # Components that vanished since the last publish of this run are removed the same way.
        for topic, text in self._published_discovery.items():
            before = components_of(json.loads(text))
            produced = current.discovery.get(topic)
            if produced is None:
                messages.append(Message(topic, ""))
                continue
            gone = {cid: p for cid, p in before.items() if cid not in produced["cmps"]}
            if gone:
                removed.setdefault(topic, {}).update(gone)
        full_plan = self.current_plan(snapshot, removed) if removed else current
        for topic, document in full_plan.discovery.items():
            text = json.dumps(document, sort_keys=True)
            if full or self._published_discovery.get(topic) != text:
                messages.append(Message(topic, text))
        if full:
            messages.append(Message(self.topics.availability, ONLINE))
        messages += store_state
        for topic, text in full_plan.states.items():
            if full or self._published_states.get(topic) != text:
                messages.append(Message(topic, text))
        self._send(messages)
        self._published_discovery = {t: json.dumps(d, sort_keys=True) for t, d in current.discovery.items()}
        self._published_states = dict(full_plan.states)

    # -- the loop ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the running loop to stop."""
        self._stop.set()
        self._wake.set()

    def run(self, once: bool = False) -> int:
        """Publish until stopped (or once); return the exit code."""
        self._client = self._make_client()
        self._client.loop_start()
        # A private loop, not asyncio.run: the caller's thread keeps whatever event loop it had.
        loop = asyncio.new_event_loop()
        try:
            with contextlib.closing(loop):
                try:
                    return self._loop(loop, once)
                finally:
                    loop.run_until_complete(self.reader.close())
        finally:
            self._shutdown(graceful_offline=not once)

    def _loop(self, loop: asyncio.AbstractEventLoop, once: bool) -> int:
        first = True
        while not self._stop.is_set():
            if not self._wait_connected(once):
                if once:
                    _LOGGER.error("could not connect to %s", self._safe_broker())
                    return ExitCode.BROKER
                continue
            if first:
                self._read_back()
                first = False
            try:
                snapshot = self._refresh(loop)
                if once and snapshot is None:
                    # One run against a store it cannot read publishes nothing: marking the node's store
                    # offline would blank the entities of the publisher that runs there all the time.
                    return ExitCode.STORE
                self._publish_when_connected(snapshot)
                self._failing = False
            except Exception:
                if once:
                    raise
                if not self._failing:  # said once, not at every retry
                    _LOGGER.exception("publishing failed; trying again at the next refresh")
                self._failing = True
                snapshot = None
            if once:
                return ExitCode.OK if snapshot is not None else ExitCode.STORE
            self._wake.wait(self.settings.interval)
            self._wake.clear()
        return ExitCode.OK

    def _publish_when_connected(self, snapshot: Snapshot | None) -> None:
        with self._lock:
            full, self._full_publish = self._full_publish, False
        if self._connected.is_set():
            self._publish(snapshot, full)
        elif full:
            self._request_full_publish()

    def _shutdown(self, graceful_offline: bool) -> None:
        client = self._client
        if client is None:
            return
        self._stop.set()  # the disconnect below is ours: no "reconnecting" warning
        if graceful_offline and self._connected.is_set():
            info = client.publish(self.topics.availability, OFFLINE, qos=1, retain=True)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:  # not when the connection went in the meantime
                info.wait_for_publish(timeout=5)
        if self._connected.is_set():
            client.disconnect()
        client.loop_stop()


def dry_run(settings: PublishSettings, out: TextIO) -> int:
    """Print every topic and payload one publish would send, without connecting."""
    publisher = Publisher(settings)
    loop = asyncio.new_event_loop()
    try:
        snapshot = loop.run_until_complete(publisher.reader.refresh(datetime.now(UTC), settings.zone))
    except StoreError as err:
        print(f"openusage-ha: {err}", file=sys.stderr)
        return ExitCode.STORE
    finally:
        loop.run_until_complete(publisher.reader.close())
        loop.close()
    result = publisher.current_plan(snapshot)
    lines = [(t, json.dumps(d, sort_keys=True)) for t, d in result.discovery.items()]
    lines += [(publisher.topics.availability, ONLINE), (publisher.topics.store_availability, ONLINE)]
    lines += list(result.states.items())
    for topic, payload in lines:
        out.write(f"{topic} {payload}\n")
    return ExitCode.OK


def install_signal_handlers(publisher: Publisher) -> Callable[[], None]:
    """SIGTERM and SIGINT stop the loop, which then publishes `offline` and disconnects."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: publisher.stop())

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
