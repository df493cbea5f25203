"""Bad settings, on the command line and in the TOML file.

Exit 2 with one line, never a traceback, a busy loop or a hang; and a password is never echoed.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from custom_components.openusage.core.cli import main
from tests.storebuilder import message, store


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """`openusage-ha ARGS` in this process (so that coverage sees the settings code), as a finished process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exited:  # argparse's own refusals
            code = int(exited.code or 0)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Return a small demo store."""
    path = tmp_path / "telemetry.db"
    with store(path) as w:
        message(w, "2026-08-17T10:00:00Z", message_id="m")
    return path


def _refused(result: subprocess.CompletedProcess[str], says: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert says in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--interval", "nan"], "--interval"),
        (["--interval", "inf"], "--interval"),
        (["--interval", "0.01"], "interval: must be a number from 1 to 3600"),
        (["--active-minutes", "nan"], "--active-minutes"),
        (["--broker", "mqtt://[::1"], "not a broker URL"),
        (["--broker", "http://host"], "must look like mqtt://"),
        (["--discovery-prefix", "home/#"], "wildcards"),
        (["--discovery-prefix", "home/+/x"], "wildcards"),
        (["--breakdown-sensors", "model,colour"], "'colour' is none of"),
        (["--tz", "Mars/Olympus"], "unknown time zone"),
        (["--budget", "-1"], "--budget: must be a number from 0 to 1e+06"),
        (["--budget", "nan"], "--budget"),
        (["--provider-budget", "claude_code"], "expected PROVIDER=AMOUNT"),
        (["--provider-budget", "claude_code=inf"], "expected PROVIDER=AMOUNT"),
        (["--provider-budget", "=5"], "expected PROVIDER=AMOUNT"),
    ],
)
def test_bad_options(db: Path, extra: list[str], says: str) -> None:
    _refused(run("publish", "--db", str(db), "--broker", "mqtt://127.0.0.1:1", "--once", *extra), says)


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ("interval = -1", "interval: must be a number from 1 to 3600"),
        ("active_minutes = -5", "active_minutes: must be a number"),
        ('interval = "fast"', "interval: not a number"),
        ('password = "hunter2"', "password"),  # unknown: a password goes in a file, never in the settings
        ("link = 5", "link"),
        ('discovery_prefix = "#"', "wildcards"),
        ("node_id = 7", "node_id"),
        ("budget = -3", "budget: must be a number from 0"),
        ('provider_budget = ["codex=lots"]', "expected PROVIDER=AMOUNT"),
        ('provider_budget = "codex=5"', "provider_budget"),
    ],
)
def test_bad_settings_files(db: Path, tmp_path: Path, toml: str, says: str) -> None:
    config = tmp_path / "publish.toml"
    config.write_text(f'db = "{db}"\nbroker = "mqtt://127.0.0.1:1"\n{toml}\n')
    result = run("publish", "--config", str(config), "--once")
    _refused(result, says)
    assert "hunter2" not in result.stderr


def test_a_password_in_the_broker_url_is_refused_and_never_echoed(db: Path) -> None:
    result = run("publish", "--db", str(db), "--broker", "mqtt://user:s3cret@127.0.0.1:1", "--once")
    _refused(result, "password")
    assert "s3cret" not in result.stderr


def test_a_password_file_that_is_not_text(db: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_bytes(b"\xff\xfe\x00binary")
    _refused(run("publish", "--db", str(db), "--broker", "mqtt://127.0.0.1:1", "--password-file", str(secret),
                 "--once"), "not UTF-8")  # fmt: skip


def test_budgets_from_the_command_line_and_the_file_reach_the_figures(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "publish.toml"
    config.write_text(f'db = "{db}"\nbudget = 50\nprovider_budget = ["Claude_Code=20", "codex=0"]\n')
    result = run("publish", "--config", str(config), "--dry-run", "--provider-budget", "codex=5")
    assert result.returncode == 0, result.stderr
    assert '"budget_used"' in result.stdout  # the file's budget for all providers
    assert "codex_budget_used" in result.stdout  # the command line's list replaces the file's
    assert "claude_code_budget_used" not in result.stdout
    # In its own process: the snapshot command's asyncio.run would leave this one without an event loop.
    snapshot = subprocess.run(
        [sys.executable, "-m", "custom_components.openusage.core.cli", "snapshot", "--db", str(db),
         "--now", "2026-08-17T12:00:00Z", "--budget", "10", "--provider-budget", "claude_code=0"],
        capture_output=True, text=True, check=False, timeout=120, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert snapshot.returncode == 0, snapshot.stderr
    assert '"amount_usd": 10.0' in snapshot.stdout
    assert '"provider": "claude_code"' not in snapshot.stdout  # a budget of 0 is none


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--now", "0001-01-01T00:00:00Z"], "--now"),
        (["--active-minutes", "nan"], "--active-minutes"),
        (["--busy-timeout", "inf"], "--busy-timeout"),
    ],
)
def test_bad_snapshot_arguments(db: Path, extra: list[str], says: str) -> None:
    _refused(run("snapshot", "--db", str(db), *extra), says)
