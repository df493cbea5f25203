"""The `openusage-ha` command as a user runs it: the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from custom_components.openusage.core.reader import ReadOptions, merge_links, read_store
from custom_components.openusage.core.snapshot_json import snapshot_to_json
from tests.constants import DEMO_NOW, WARSAW

REPO = Path(__file__).parents[2]
COMMAND = shutil.which("openusage-ha", path=str(Path(sys.executable).parent)) or "openusage-ha"
NOW = "2026-11-23T12:00:00Z"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the `openusage-ha` command and return what it did."""
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a demo store shared by the module's tests."""
    folder = tmp_path_factory.mktemp("state")
    result = run("demo-store", str(folder), "--events", "5000", "--days", "100", "--seed", "7", "--now", NOW)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(folder / "telemetry.db")
    return folder / "telemetry.db"


async def test_snapshot_prints_the_core_figures(demo: Path) -> None:
    result = run("snapshot", "--db", str(demo), "--now", NOW, "--tz", "Europe/Warsaw", "--link", "openrouter=opencode")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    options = ReadOptions(provider_links=merge_links({"openrouter": "opencode"}))
    expected = snapshot_to_json(await read_store(demo, DEMO_NOW, WARSAW, options))
    assert printed == json.loads(json.dumps(expected))
    assert printed["schema_version"] == 1
    assert printed["now"] == NOW
    assert "openrouter" not in printed["by_provider"]
    assert printed["totals"]["30d"]["messages"] > 0
    assert printed["store"]["rollup_watermark"] == "2026-11-22"
    assert printed["store"]["oldest_raw_day"] >= "2026-08-25"  # 90 days of raw rows, the rest rolled up
    assert printed["totals"]["all"]["messages"] > printed["totals"]["30d"]["messages"]
    assert [q["provider_id"] for q in printed["quotas"]] == sorted(q["provider_id"] for q in printed["quotas"])
    assert printed["spool"] == {
        "hook_spool_files": 3, "hook_spool_oldest_age_seconds": 95.0, "hook_spool_tmp_files": 1,
        "spool_pending": 2, "spool_failed": 1, "spool_malformed": 1, "spool_oldest_age_seconds": 3600.0,
        "spool_last_error": "ingest: database is locked",
    }  # fmt: skip


def test_demo_store_is_deduplicated_realistically(demo: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(demo)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"usage_events", "usage_raw_events", "usage_rollup_daily", "daemon_meta", "balance_observations"} <= tables
    hooks = conn.execute(
        "SELECT COUNT(*) FROM usage_events e JOIN usage_raw_events r USING (raw_event_id) WHERE r.source_channel='hook'"
    ).fetchone()[0]
    errors = conn.execute("SELECT COUNT(*) FROM usage_events WHERE status = 'error'").fetchone()[0]
    blanked = conn.execute("SELECT COUNT(*) FROM usage_raw_events WHERE source_payload = '{}'").fetchone()[0]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert hooks > 0
    assert errors > 0
    assert blanked > 0


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["snapshot"], 2),
        (["snapshot", "--db", "x", "--now", "yesterday"], 2),
        (["snapshot", "--db", "x", "--tz", "Mars/Olympus"], 2),
        (["snapshot", "--db", "x", "--link", "nolink"], 2),
        (["snapshot", "--db", "x", "--active-minutes", "-1"], 2),
        (["frobnicate"], 2),
        (["demo-store", "d", "--events", "many"], 2),
    ],
)
def test_bad_arguments_exit_2(args: list[str], code: int) -> None:
    result = run(*args)
    assert result.returncode == code
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "not a regular file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(os.urandom(4096)), "not an SQLite database"),
        (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x00" * 84), "corrupt"),
    ],
)
def test_unreadable_store_exits_3_with_one_line(tmp_path: Path, make, cause: str) -> None:
    db = tmp_path / "telemetry.db"
    make(db)
    result = run("snapshot", "--db", str(db), "--now", NOW)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(db) in lines[0]
    assert cause in lines[0]
    assert result.stdout == ""


def test_demo_store_into_a_file_path_exits_2(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = run("demo-store", str(target))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_pip_install_runs_without_home_assistant(tmp_path: Path, demo: Path) -> None:
    """`pip install .` into a clean environment gives a working command with no homeassistant package."""
    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", str(REPO)], check=True, capture_output=True, timeout=600)
    has_ha = subprocess.run([python, "-c", "import homeassistant"], capture_output=True, check=False)
    assert has_ha.returncode != 0
    result = subprocess.run(
        [env_dir / "bin" / "openusage-ha", "snapshot", "--db", str(demo), "--now", NOW, "--tz", "UTC"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["totals"]["7d"]["messages"] > 0


def test_main_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same command through `main()`, so that its code is measured by coverage too.

    It runs in a worker thread: `asyncio.run` would leave the test runner's main thread without a loop.
    """
    from concurrent.futures import ThreadPoolExecutor

    from custom_components.openusage.core.cli import main as cli_main

    def main(argv: list[str]) -> int:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(cli_main, argv).result()

    assert main(["demo-store", str(tmp_path / "s"), "--events", "300", "--days", "3", "--now", NOW]) == 0
    capsys.readouterr()
    db = str(tmp_path / "s" / "telemetry.db")
    assert main(["snapshot", "--db", db, "--now", NOW, "--tz", "UTC", "--hook-spool", str(tmp_path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["spool"]["hook_spool_files"] == 0  # the overriding folder holds no hook files
    assert printed["spool"]["spool_pending"] == 2
    assert main(["snapshot", "--db", str(tmp_path / "none.db"), "--now", NOW]) == 3
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["snapshot", "--db", db, "--busy-timeout", "zero"])
    assert exit_info.value.code == 2
    assert main(["snapshot", "--db", db]) == 0  # default clock and the machine's zone
    assert json.loads(capsys.readouterr().out)["time_zone"]
    blocked = tmp_path / "blocked"
    blocked.write_text("x")
    assert main(["demo-store", str(blocked / "inner")]) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["snapshot", "--db", "x", "--now", "not a time"],
        ["snapshot", "--db", "x", "--tz", "Nowhere/Land"],
        ["snapshot", "--db", "x", "--link", "=x"],
        ["snapshot", "--db", "x", "--active-minutes", "soon"],
        ["snapshot", "--db", "x", "--active-minutes", "0"],
        ["demo-store", "d", "--days", "-1"],
        ["demo-store", "d", "--days", "many"],
    ],
)
def test_argument_checks(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from custom_components.openusage.core.cli import build_parser

    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_local_zone_is_a_real_zone() -> None:
    from custom_components.openusage.core.cli import local_zone

    assert local_zone().key


def test_snapshot_into_a_pipe_that_closes_early_ends_quietly(demo: Path) -> None:
    # `openusage-ha snapshot | head -1`: the reader goes away after one line.
    shell = f"'{COMMAND}' snapshot --db '{demo}' --now {NOW} --tz UTC | head -n 1"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, check=False)
    assert result.stdout == "{\n"
    assert result.stderr == ""  # no BrokenPipe traceback
    assert result.returncode == 0


def test_a_dry_run_needs_no_broker(demo: Path) -> None:
    result = run("publish", "--db", str(demo), "--dry-run", "--node-id", "laptop", "--breakdown-sensors", "model,tool")
    assert result.returncode == 0, result.stderr
    hub = next(line for line in result.stdout.splitlines() if line.startswith("homeassistant/device/openusage_laptop/"))
    document = json.loads(hub.partition(" ")[2])
    assert document["dev"]["name"] == "OpenUsage (laptop)"
    assert document["cmps"]["model_claude_sonnet_4_5_cost_today"]["name"] == "Model cost today (claude-sonnet-4-5)"
    assert "tool_bash_tool_calls_today" in document["cmps"]
    bad = run("publish", "--db", str(demo), "--dry-run", "--breakdown-sensors", "model,colour")
    assert bad.returncode == 2
    assert "breakdown_sensors" in bad.stderr


def test_dashboard_in_process(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same command through main() (measured by coverage), in a worker thread.

    Its asyncio.run must not unset the test runner's event loop.
    """
    from concurrent.futures import ThreadPoolExecutor

    from custom_components.openusage.core.cli import main

    def run(argv: list[str]) -> int:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(main, argv).result()

    assert run(["dashboard", "--db", str(demo), "--node-id", "laptop", "--link", "openrouter=opencode"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# OpenUsage dashboard for the MQTT publisher of node laptop")
    assert "sensor.claude_code_laptop_5_hour_usage" in json.dumps(yaml.safe_load(printed))
    assert run(["dashboard", "--db", str(demo.with_name("missing.db"))]) == 3


def test_dashboard_for_the_native_integration_and_for_an_mqtt_node(demo: Path) -> None:
    native = run("dashboard", "--db", str(demo))
    assert native.returncode == 0, native.stderr
    document = yaml.safe_load(native.stdout)
    text = json.dumps(document)
    assert "sensor.claude_code_5_hour_usage" in text
    assert "sensor.openusage_cost_7_days" in text
    assert "openusage:total_cost" in text
    node = run("dashboard", "--db", str(demo), "--node-id", "Dev Box")
    assert node.returncode == 0, node.stderr
    text = json.dumps(yaml.safe_load(node.stdout))
    assert "sensor.claude_code_dev_box_5_hour_usage" in text
    assert "sensor.openusage_dev_box_cost_7_days" in text
    assert "openusage:total_cost" not in text  # MQTT entities have no imported history
    missing = run("dashboard", "--db", str(demo.with_name("nope.db")))
    assert missing.returncode == 3
    assert missing.stdout == ""


def test_snapshot_keeps_what_it_read_in_the_cache_folder(demo: Path, tmp_path: Path) -> None:
    """Run twice with a cache folder: the same figures, the second from the kept mirror (a clean file is there)."""
    folder = tmp_path / "cache"
    first = run("snapshot", "--db", str(demo), "--now", NOW, "--tz", "UTC", "--cache-dir", str(folder))
    assert first.returncode == 0, first.stderr
    (kept,) = folder.glob("mirror-*.db")
    conn = sqlite3.connect(kept)
    assert dict(conn.execute("SELECT key, value FROM cache_meta").fetchall())["clean"] == "1"
    conn.close()
    second = run("snapshot", "--db", str(demo), "--now", NOW, "--tz", "UTC", "--cache-dir", str(folder))
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    uncached = run("snapshot", "--db", str(demo), "--now", NOW, "--tz", "UTC", "--no-cache",
                   "--cache-dir", str(tmp_path / "none"))  # fmt: skip
    assert uncached.stdout == first.stdout
    assert not (tmp_path / "none").exists()
    inside = run("snapshot", "--db", str(demo), "--cache-dir", str(demo.parent / "cache"))
    assert inside.returncode == 2
    assert inside.stderr.strip().splitlines() == [
        f"openusage-ha: --cache-dir {demo.parent / 'cache'}: inside openusage's state folder, which is never written to"
    ]
    assert not (demo.parent / "cache").exists()


@pytest.mark.parametrize("command", ["snapshot", "dashboard"])
def test_a_cache_folder_in_the_state_folder_is_refused_before_anything_is_read(
    demo: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from custom_components.openusage.core.cli import main

    assert main([command, "--db", str(demo), "--cache-dir", str(demo.parent / "kept")]) == 2
    assert "inside openusage's state folder" in capsys.readouterr().err
    assert not (demo.parent / "kept").exists()


_ARENAS_PROBE = """
import ctypes, sys, threading
if sys.argv[1] == "share":
    from custom_components.openusage.core.cli import _share_allocator_arenas
    _share_allocator_arenas()
barrier = threading.Barrier(8)
def work():
    kept = [bytes(2000) for _ in range(200)]  # past Python's small-object allocator: the C one's
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator arenas")
def test_the_publisher_s_threads_share_one_allocator_arena() -> None:
    """Eight threads that allocate at once get arenas of their own, unless the publisher's setting is made first."""

    def arenas(mode: str) -> int:
        result = subprocess.run([sys.executable, "-c", _ARENAS_PROBE, mode], capture_output=True, text=True,
                                check=True, cwd=REPO, timeout=60)  # fmt: skip
        return sum(line.startswith("Arena ") for line in result.stderr.splitlines())

    assert arenas("alone") > 2
    assert arenas("share") == 1
