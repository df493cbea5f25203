"""Refresh benchmarks: openusage-ha's refresh beside an openusage-style baseline.

The baseline computes the same figures the way openusage's own read model does (a deduplicated TEMP table per
window, then one aggregate query per figure group; openusage-store.md §4.3–4.8), side by side in one process on
the same store.

    python benchmarks/refresh.py --rows 100000 --rows 1000000     # the recorded runs
    python benchmarks/refresh.py --rows 3000 --repeat 1            # the smoke run scripts/test makes

Stores are made by `openusage-ha demo-store` (90 days) and kept in benchmarks/.stores/ between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from custom_components.openusage.core.cache import remove_cache_file  # noqa: E402
from custom_components.openusage.core.clock import WindowBounds  # noqa: E402
from custom_components.openusage.core.models import Snapshot, Window  # noqa: E402
from custom_components.openusage.core.reader import ReadOptions, StoreReader  # noqa: E402
from custom_components.openusage.core.usage import DEDUPED_USAGE_SQL  # noqa: E402
from openusage_demo import EventWriter, generate_demo_store  # noqa: E402

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Warsaw")
STORES = ROOT / "benchmarks" / ".stores"
# New usage rows a minute in the benchmarks' hours: about twice the 1,000,000-row demo store's busiest hour (3,358).
PACE = 100

# openusage's per-window queries (§4.4), over its TEMP table `_deduped_tmp`.
_BASELINE_QUERIES = (
    "SELECT COALESCE(NULLIF(TRIM(COALESCE(model_canonical, model_raw)),''),'unknown') m, SUM(input_tokens), "
    "SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(reasoning_tokens), "
    "SUM(COALESCE(total_tokens, COALESCE(input_tokens,0)+COALESCE(output_tokens,0)+COALESCE(reasoning_tokens,0)"
    "+COALESCE(cache_read_tokens,0)+COALESCE(cache_write_tokens,0))), SUM(cost_usd), SUM(COALESCE(requests,1)) "
    "FROM _deduped_tmp WHERE event_type='message_usage' AND status!='error' GROUP BY m LIMIT 500",
    "SELECT lower(trim(coalesce(provider_id,''))) p, SUM(cost_usd), SUM(COALESCE(requests,1)), SUM(input_tokens), "
    "SUM(output_tokens) FROM _deduped_tmp WHERE event_type='message_usage' AND status!='error' GROUP BY p LIMIT 200",
    "SELECT account_id, SUM(cost_usd), SUM(COALESCE(requests,1)), SUM(total_tokens) FROM _deduped_tmp "
    "WHERE event_type='message_usage' AND status!='error' GROUP BY provider_id, account_id",
    "SELECT coalesce(nullif(agent_name,''), src) a, SUM(COALESCE(requests,1)), SUM(total_tokens), SUM(input_tokens), "
    "SUM(output_tokens), COUNT(DISTINCT COALESCE(NULLIF(TRIM(session_id),''),'unknown')) FROM _deduped_tmp "
    "WHERE event_type='message_usage' AND status!='error' GROUP BY a",
    "SELECT workspace_id, SUM(COALESCE(requests,1)), SUM(cost_usd), SUM(total_tokens) FROM _deduped_tmp "
    "WHERE event_type='message_usage' AND status!='error' AND TRIM(COALESCE(workspace_id,''))!='' "
    "GROUP BY workspace_id",
    "SELECT COALESCE(NULLIF(TRIM(LOWER(tool_name)),''),'unknown') t, SUM(COALESCE(requests,1)), "
    "SUM(CASE WHEN status='error' THEN COALESCE(requests,1) END) "
    "FROM _deduped_tmp WHERE event_type='tool_usage' GROUP BY t",
    "SELECT COUNT(DISTINCT CASE WHEN event_type='message_usage' AND status!='error' THEN "
    "COALESCE(NULLIF(TRIM(message_id),''), NULLIF(TRIM(turn_id),''), dedup_key) END), "
    "COUNT(DISTINCT CASE WHEN event_type='message_usage' AND status!='error' THEN NULLIF(TRIM(session_id),'') END), "
    "SUM(CASE WHEN event_type='tool_usage' THEN COALESCE(requests,1) END), "
    "SUM(event_type='message_usage' AND status='error'), "
    "MAX(occurred_at), COUNT(*) FROM _deduped_tmp",
    "SELECT date(occurred_at) d, SUM(cost_usd), SUM(COALESCE(requests,1)), SUM(total_tokens) FROM _deduped_tmp "
    "WHERE event_type='message_usage' AND status!='error' GROUP BY d",
)


def baseline_refresh(path: Path, now: datetime) -> None:
    """Openusage's way: per window, materialise the deduplicated rows, index them, aggregate, drop."""
    bounds = WindowBounds.at(now, ZONE, 15)
    since = {w: bounds.keys[w][:19] for w in (Window.TODAY, Window.H24, Window.D7, Window.D30)}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        for window in (*since, Window.ALL):
            where = f"AND e.occurred_at >= '{since[window]}'" if window in since else ""
            scope = "WHERE e.event_type IN ('message_usage', 'tool_usage')"
            sql = DEDUPED_USAGE_SQL.replace(scope, f"{scope} {where}")
            conn.execute(f"CREATE TEMP TABLE _deduped_tmp AS {sql}")
            conn.execute("CREATE INDEX temp.idx_deduped_event_status ON _deduped_tmp(event_type, status)")
            conn.execute("CREATE INDEX temp.idx_deduped_occurred ON _deduped_tmp(occurred_at)")
            for query in _BASELINE_QUERIES:
                conn.execute(query).fetchall()
            conn.execute("DROP TABLE _deduped_tmp")
    finally:
        conn.close()


def store_with(rows: int, days: int = 90) -> Path:
    """Make (once) and return a demo store of about `rows` raw usage rows over its last 90 days.

    Days before those are in the daily rollup only, as openusage keeps them.
    """
    folder = STORES / (f"{rows}" if days == 90 else f"{rows}-{days}d")
    path = folder / "telemetry.db"
    if not path.exists():
        started = time.perf_counter()
        generate_demo_store(folder, days=days, events=rows * days // 90, seed=42, now=NOW)
        print(f"  made a {rows:,}-row store in {time.perf_counter() - started:.1f} s")
    return path


def change_store(path: Path, at: datetime, *, prune: bool = True, old_row: bool = False, new_rows: int = PACE) -> None:
    """Make a minute's changes: `new_rows` new rows and one in-place enrichment of a recent row.

    Also the oldest day pruned (`prune`), and an old row changed in place far below the re-read tail (`old_row`).
    """
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    writer = EventWriter(conn)
    for i in range(new_rows):
        writer.add(source_system="claude_code", occurred_at=f"{at - timedelta(seconds=i):%Y-%m-%dT%H:%M:%SZ}",
                   provider_id="anthropic", account_id="claude-code", session_id="bench", message_id=f"b{at}{i}",
                   model_raw="claude-sonnet-4-5", input_tokens=100, cost_usd=0.01)  # fmt: skip
    writer.flush()
    conn.execute(
        "UPDATE usage_events SET cost_usd = coalesce(cost_usd, 0) + 0.001 WHERE rowid = "
        "(SELECT MAX(rowid) FROM usage_events WHERE event_type = 'message_usage' AND rowid < "
        "(SELECT MAX(rowid) - 100 FROM usage_events))"
    )
    if old_row:
        conn.execute(
            "UPDATE usage_events SET input_tokens = coalesce(input_tokens, 0) + 7, model_raw = 'claude-opus-4-1' "
            "WHERE rowid = (SELECT rowid FROM usage_events WHERE event_type = 'message_usage' "
            "AND rowid > (SELECT MAX(rowid) / 3 FROM usage_events) LIMIT 1)"
        )
    if prune:
        oldest = conn.execute("SELECT substr(MIN(occurred_at), 1, 10) FROM usage_events").fetchone()[0]
        conn.execute("DELETE FROM usage_events WHERE substr(occurred_at, 1, 10) = ?", (oldest,))
    conn.execute("COMMIT")
    conn.close()


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    """Run `run` `repeat` times and return the median wall time in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def loop_gaps(work: Awaitable[object]) -> list[float]:
    """How late each tick of a 1 ms ticker on the event loop ran while `work` ran: the loop's stalls."""
    gaps: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(max(0.0, now - last - 0.001))
            last = now

    task = asyncio.create_task(ticker())
    await work
    done = True
    await task
    return gaps


def per_minute_over(gaps: list[float], seconds: float, limit: float = 0.005) -> float:
    """How many stalls longer than `limit` a minute of `seconds` brought."""
    return sum(gap > limit for gap in gaps) * 60 / seconds


def publish_once_peak_mb(path: Path) -> float | None:
    """Peak RSS of a first `openusage-ha publish --once` against a local broker (None without mosquitto).

    It keeps its mirror in a cache folder of its own, as the default one would, and the folder is removed after.
    """
    mosquitto = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if mosquitto is None:
        return None
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    broker = subprocess.Popen([mosquitto, "-p", str(port)], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        with tempfile.TemporaryDirectory() as cache:
            result = subprocess.run(
                ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "openusage_ha.cli", "publish",
                 "--db", str(path), "--broker", f"mqtt://127.0.0.1:{port}", "--once", "--node-id", "bench",
                 "--cache-dir", cache],
                capture_output=True, text=True, cwd=ROOT, check=False,
            )  # fmt: skip
        return int(result.stderr.strip().splitlines()[-1]) / 1024
    finally:
        broker.terminate()
        broker.wait()


async def _home_assistant_stalls(path: Path, config: Path, rounds: int, rebuilds: int) -> tuple[dict[str, float], int]:
    """Measure the event loop's stalls in a real Home Assistant core with the integration.

    The core has its registries, set up the way its bootstrap does but without the default integrations (the
    frontend is not installable here), and the integration is added through its config flow.

    This machine's event loop is late now and then with nothing running (the idle figures), so one longest
    stall says little: each refresh and each idle window of a refresh's length gives its longest stall, and
    the medians and the worst of them are reported. A full read (the mirror forgotten, so the refresh reads
    every row, as a first read does) lasts seconds: its longest stall and its rate of stalls over 5 ms are set
    beside those of as long an idle spell. Also returns the number of entities.
    """
    from homeassistant import bootstrap, config_entries, core, loader
    from homeassistant.core_config import async_process_ha_core_config
    from homeassistant.setup import async_setup_component
    from homeassistant.util import dt as dt_util

    hass = core.HomeAssistant(str(config))
    loader.async_setup(hass)
    hass.config_entries = config_entries.ConfigEntries(hass, {})
    await loader.async_get_custom_components(hass)
    await bootstrap.async_load_base_functionality(hass)
    assert await async_setup_component(hass, "homeassistant", {})
    await async_process_ha_core_config(hass, {"time_zone": ZONE.key, "allowlist_external_dirs": [str(path.parent)]})
    await hass.async_start()
    try:
        flow = await hass.config_entries.flow.async_init("openusage", context={"source": "user"})
        started = time.perf_counter()
        flow = await hass.config_entries.flow.async_configure(flow["flow_id"], {"path": str(path)})
        submitted = time.perf_counter() - started  # what the config dialog waits for
        await hass.async_block_till_done(wait_background_tasks=True)  # the first read
        restart = await _entry_restart(hass, flow["result"])
        coordinator = flow["result"].runtime_data
        gc.collect()  # settle the start-up garbage, as in a Home Assistant that has been running a while

        async def refresh_and_write() -> None:  # the changed states are written a few each pass of the loop
            await coordinator.async_refresh()
            await hass.async_block_till_done()

        refresh, spans = [], []
        for _ in range(rounds):
            await asyncio.to_thread(change_store, path, dt_util.utcnow())
            started = time.perf_counter()
            refresh.append(max(await loop_gaps(refresh_and_write()), default=0.0))
            spans.append(time.perf_counter() - started)
        span = statistics.median(spans)
        idle = [max(await loop_gaps(asyncio.sleep(span)), default=0.0) for _ in range(rounds)]
        rebuild_gaps: list[float] = []
        started = time.perf_counter()
        for _ in range(rebuilds):
            coordinator.reader._mirror.forget()  # the next refresh reads every row, as a first read does
            rebuild_gaps += await loop_gaps(refresh_and_write())
        rebuild_seconds = time.perf_counter() - started
        idle_gaps = await loop_gaps(asyncio.sleep(rebuild_seconds))
        stalls = {
            "HA config flow submit": submitted,
            "HA reload to first figures": restart,
            "HA loop blocked, idle, median": statistics.median(idle),
            "HA loop blocked, idle, worst": max(idle),
            "HA loop blocked, refresh, median": statistics.median(refresh),
            "HA loop blocked, refresh, worst": max(refresh),
            "HA loop blocked, full read, worst": max(rebuild_gaps, default=0.0),
            f"HA loop blocked, idle {rebuild_seconds:.0f} s": max(idle_gaps),
            "stalls > 5 ms a minute, full read": per_minute_over(rebuild_gaps, rebuild_seconds),
            "stalls > 5 ms a minute, idle": per_minute_over(idle_gaps, rebuild_seconds),
        }
        return stalls, len(hass.states.async_entity_ids())
    finally:
        await hass.async_stop()


async def _entry_restart(hass: Any, entry: Any) -> float:
    """Return how long a reload of the entry (its reader keeps the mirror) takes until its figures are back."""
    ready = asyncio.Event()

    def check() -> None:
        if entry.runtime_data.has_data:
            ready.set()

    started = time.perf_counter()
    assert await hass.config_entries.async_reload(entry.entry_id)
    remove = entry.runtime_data.async_add_listener(check)
    check()  # the kept mirror may have made it already
    await ready.wait()
    remove()
    return time.perf_counter() - started


def home_assistant_stalls(path: Path, rounds: int, rebuilds: int) -> tuple[dict[str, float], int]:
    """See _home_assistant_stalls: in a configuration folder of its own, removed afterwards."""
    logging.getLogger("homeassistant.loader").setLevel(logging.ERROR)  # "custom integration not tested"
    # Outside the store's folder: the entry keeps its mirror in the configuration's cache folder, which must not
    # be inside openusage's state folder (it is refused there).
    config = Path(tempfile.mkdtemp(prefix="openusage-ha-bench-"))
    (config / "custom_components").mkdir(parents=True)
    (config / "custom_components" / "openusage").symlink_to(ROOT / "custom_components" / "openusage")
    try:
        return asyncio.run(_home_assistant_stalls(path, config, rounds, rebuilds))
    finally:
        shutil.rmtree(config, ignore_errors=True)


class Bench:
    """One store, one event loop, one long-lived reader: what the coordinator and the publisher hold."""

    def __init__(self, path: Path, options: ReadOptions | None = None) -> None:
        """Keep one reader of the store at `path`, as the integration does."""
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.reader = StoreReader(path, options)

    def refresh(self, now: datetime, reader: StoreReader | None = None) -> Snapshot:
        """Refresh at `now`, with the given reader or this one's."""
        return self.loop.run_until_complete((reader or self.reader).refresh(now, ZONE))

    def cold(self, now: datetime) -> Snapshot:
        """Return a refresh by a new reader: the first one ever, which reads every row."""
        reader = StoreReader(self.path)
        try:
            return self.refresh(now, reader)
        finally:
            self.loop.run_until_complete(reader.close())

    def restart(self, now: datetime, cache: Path) -> tuple[float, Snapshot]:
        """Return how long a new reader with the kept mirror in `cache` takes to its first figures, and them.

        The reader closes after (keeping the mirror again), as a publisher or Home Assistant does when it stops.
        """
        reader = StoreReader(self.path, ReadOptions(cache=cache))
        try:
            started = time.perf_counter()
            snapshot = self.refresh(now, reader)
            return time.perf_counter() - started, snapshot
        finally:
            self.loop.run_until_complete(reader.close())

    def close(self) -> None:
        """Close the kept reader."""
        self.loop.run_until_complete(self.reader.close())
        self.loop.close()


def an_hour(bench: Bench, at: datetime, pace: int | None = PACE, *, old_row: bool = True) -> tuple[float, datetime]:
    """Return the CPU seconds of an hour of refreshes a minute apart, each after a minute's changes, and the clock.

    In the hour: `pace` new rows a minute (6,000 at 100), an enrichment of a recent row every minute, an old row
    changed in place in minute 5 (`old_row`) and the oldest day pruned in minute 30; with `pace` None, no change at
    all. The CPU time is the process's (every thread) during the refreshes only, not the writer's.
    """
    cpu = 0.0
    for minute in range(1, 61):
        at += timedelta(minutes=1)
        if pace is not None:
            change_store(bench.path, at, prune=minute == 30, old_row=old_row and minute == 5, new_rows=pace)
        started = time.process_time()
        bench.refresh(at)
        cpu += time.process_time() - started
    return cpu, at


def hour_alone(
    rows: int, days: int, pace: int | None = PACE, *, options: ReadOptions | None = None, old_row: bool = True
) -> float:
    """Return `an_hour` on a copy of the store, by a reader with `options` whose only read before it is its first.

    The figures after the hour must equal a fresh reader's.
    """
    path = store_with(rows, days)
    work = path.parent / "work.db"
    shutil.copyfile(path, work)
    bench = Bench(work, options)
    try:
        bench.refresh(NOW)
        cpu, at = an_hour(bench, NOW, pace, old_row=old_row)
        if bench.refresh(at).usage != bench.cold(at).usage:
            raise SystemExit("incremental figures differ from a full recomputation")
        return cpu
    finally:
        bench.close()
        work.unlink()


def _restarts(bench: Bench, cache: Path, at: datetime, cold: Snapshot, repeat: int) -> tuple[float, bool]:
    """Return the median time a restart with the mirror kept takes to its first figures, and whether they are right.

    The first run keeps the mirror; the next ones take it up.
    """
    remove_cache_file(cache)
    bench.restart(at, cache)
    restarts = [bench.restart(at, cache) for _ in range(max(repeat, 3))]
    remove_cache_file(cache)
    return statistics.median(t for t, _ in restarts), all(s.usage == cold.usage for _, s in restarts)


def run(rows: int, repeat: int, days: int = 90) -> dict[str, float | None]:
    """Measure every figure of the benchmark on a store of `rows` raw rows (and rollup days before them)."""
    print(f"\n== {rows:,} usage rows" + ("" if days == 90 else f", {days} days (the older ones in the rollup)"))
    path = store_with(rows, days)
    work = path.parent / "work.db"
    shutil.copyfile(path, work)
    bench = Bench(work)
    results: dict[str, float | None] = {}
    try:
        results["baseline, cold"] = median_seconds(lambda: baseline_refresh(work, NOW), repeat)
        results["cold refresh"] = median_seconds(lambda: bench.cold(NOW), repeat)
        bench.refresh(NOW)
        results["nothing new"] = median_seconds(lambda: bench.refresh(NOW), max(repeat, 5))
        # Each round a minute later: 100 new rows, one enrichment, the oldest day pruned; then one refresh.
        times, at = [], NOW
        for _ in range(max(repeat, 5)):
            at += timedelta(minutes=1)
            change_store(work, at)
            times.append(median_seconds(lambda: bench.refresh(at), 1))  # noqa: B023
        results["after changes"] = statistics.median(times)
        results["CPU seconds an hour"], at = an_hour(bench, at)
        results["baseline, after changes"] = median_seconds(lambda: baseline_refresh(work, at), repeat)
        cold = bench.cold(at)
        equal = bench.refresh(at).usage == cold.usage
        results["restart, warm cache"], same = _restarts(bench, path.parent / "work.mirror.db", at, cold, repeat)
        equal = equal and same
        print(f"  figures after the changes equal a full recomputation: {'yes' if equal else 'NO'}")
    finally:
        bench.close()
    stalls, entities = home_assistant_stalls(work, rounds=max(repeat * 6, 6), rebuilds=max(repeat // 2, 1))
    results.update(stalls)
    print(f"  Home Assistant: {entities} entities")
    results["publish --once peak MB"] = publish_once_peak_mb(work)
    work.unlink()
    baseline = {
        "cold refresh": "baseline, cold",
        "nothing new": "baseline, cold",
        "restart, warm cache": "cold refresh",
        "after changes": "baseline, after changes",
    }
    for name, value in results.items():
        if value is None:
            shown = "n/a"
        elif "MB" in name:
            shown = f"{value:.1f} MB"
        elif "a minute" in name:
            shown = f"{value:.1f}"
        elif "an hour" in name:
            shown = f"{value:.2f} s"
        else:
            shown = f"{value * 1000:.1f} ms"
            if name in baseline:
                shown += f"   ({value / results[baseline[name]]:.4f} of {baseline[name]}, "  # type: ignore[operator]
                shown += f"{results[baseline[name]] / value:.0f}× faster)"  # type: ignore[operator]
        print(f"  {name:28} {shown}")
    if not equal:
        raise SystemExit("incremental figures differ from a full recomputation")
    return results


def main() -> int:
    """Run the benchmark from the command line and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="store size; repeat for several")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--days", type=int, default=90, help="days of history; those before the last 90 in the rollup")
    parser.add_argument("--hour", action="store_true", help="only the CPU of an hour of polls, on a fresh reader")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}")  # fmt: skip
    if args.hour:
        for rows in args.rows or [100_000]:
            print(f"{rows:,} rows: {hour_alone(rows, args.days):.2f} CPU seconds an hour")
        return 0
    all_results = {rows: run(rows, args.repeat, args.days) for rows in args.rows or [100_000]}
    if len(all_results) >= 2:
        small, large = sorted(all_results)
        growth = all_results[large]["after changes"] / all_results[small]["after changes"]  # type: ignore[operator]
        print(f"\nincremental refresh growth {small:,} → {large:,} rows: {growth:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
