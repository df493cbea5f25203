"""The SQL implementation against the plain-Python reference (tests/reference.py) on random stores."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.openusage.core.reader import ReadOptions, read_store
from custom_components.openusage.core.schema import create_schema
from custom_components.openusage.core.snapshot_json import snapshot_to_json
from openusage_demo import EventWriter, build_rollup
from tests import reference
from tests.strategies import NOW, ZONES, add_row, row, stamp

_store = st.fixed_dictionaries(
    {
        "rows": st.lists(row, max_size=60),
        "rollup": st.sampled_from(["none", "no_watermark", "pruned"]),
        "prune_days": st.integers(1, 50),
        "zone": st.sampled_from(ZONES),
        "active_minutes": st.sampled_from([5.0, 15.0, 90.0]),
        # Read at NOW, or days before or after it, so that this week and this month start before day B
        # (taking rollup days), on it, or after it, and a month boundary passes.
        "read_shift": st.sampled_from([timedelta(0), timedelta(days=-5), timedelta(days=15, hours=-11)]),
    }
)


def _write(path: Path, spec: dict) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    create_schema(conn)
    conn.execute("BEGIN")
    writer = EventWriter(conn)
    for i, spec_row in enumerate(spec["rows"]):
        add_row(writer, spec_row, f"key{i}")  # unique per row, as the UNIQUE constraint demands
    writer.flush()
    if spec["rollup"] != "none":
        build_rollup(conn, f"{NOW - timedelta(days=1):%Y-%m-%d}")
        cutoff = stamp(timedelta(days=spec["prune_days"]), "")
        conn.execute("DELETE FROM usage_events WHERE occurred_at < ?", (cutoff,))
        if spec["rollup"] == "no_watermark":
            conn.execute("DELETE FROM daemon_meta")
    conn.execute("COMMIT")
    conn.close()


def _approx_equal(ours: object, theirs: object, where: str = "") -> None:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        assert ours.keys() == theirs.keys(), where
        for key in ours:
            _approx_equal(ours[key], theirs[key], f"{where}/{key}")
    elif isinstance(ours, float) or isinstance(theirs, float):
        assert abs(float(ours) - float(theirs)) < 1e-9, where  # type: ignore[arg-type]
    else:
        assert ours == theirs, where


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=_store)
def test_sql_matches_the_reference(spec: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "telemetry.db"
        _write(path, spec)
        zone = ZoneInfo(spec["zone"])
        options = ReadOptions(active_minutes=spec["active_minutes"])
        now = NOW + spec["read_shift"]
        loop = asyncio.new_event_loop()  # not asyncio.run: that would unset the main thread's loop
        try:
            snapshot = loop.run_until_complete(read_store(path, now, zone, options))
        finally:
            loop.close()
        ours = snapshot_to_json(snapshot)
        theirs = reference.compute(path, now, zone, spec["active_minutes"])
    for name, expected in theirs.items():
        _approx_equal(ours[name], expected, name)
