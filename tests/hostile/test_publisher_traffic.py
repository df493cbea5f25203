"""What the publisher sends while nothing changes: no retained message again and again."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from custom_components.openusage.core.discovery import Topics
from custom_components.openusage.core.publisher import Publisher
from custom_components.openusage.core.settings import PublishSettings
from openusage_demo import generate_demo_store
from tests.mqtt.broker import Broker, Recorder


def test_the_store_availability_is_sent_when_it_changes_not_at_every_refresh(tmp_path: Path, broker: Broker) -> None:
    db = generate_demo_store(tmp_path, days=5, events=200, seed=2, now=datetime.now(UTC))
    topics = Topics("homeassistant", "quiet")
    publisher = Publisher(PublishSettings(db=db, broker=broker.url, node_id="quiet", interval=1.0,
                                          zone=ZoneInfo("UTC")))  # fmt: skip
    with Recorder(broker.port, (topics.store_availability,)) as rec:
        worker = threading.Thread(target=publisher.run)
        worker.start()
        try:
            time.sleep(6)  # five refreshes or so
            online = [m for m in rec.messages if m.payload == b"online"]
            db.rename(db.with_name("away.db"))
            rec.wait_for(lambda: rec.latest(topics.store_availability).payload == b"offline")
            time.sleep(3)
            offline = [m for m in rec.messages if m.payload == b"offline"]
        finally:
            publisher.stop()
            worker.join(20)
    assert len(online) == 1
    assert len(offline) == 1
