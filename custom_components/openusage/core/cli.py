"""The `openusage-ha` command: `snapshot`, `publish`, `dashboard` and `demo-store`.

Exit codes: 0 done, 2 bad arguments, 3 the store cannot be read, 4 the broker cannot be reached
(`publish --once`). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import voluptuous as vol

from .clock import parse_time
from .dashboard import dashboard, to_yaml
from .discovery import node_id_from
from .exit_codes import ExitCode
from .forecast import budget_map
from .publisher import Publisher, dry_run, install_signal_handlers
from .reader import DEFAULT_ACTIVE_MINUTES, ReadOptions, StoreError, default_store_path, merge_links, read_store
from .settings import (
    PASSWORD_ENV,
    SCHEMA,
    PublishSettings,
    SettingsError,
    budget_amount,
    cache_file,
    load_toml,
    local_zone,
    parse_link,
    parse_provider_budget,
    parse_zone,
)
from .settings import publish_settings as settings_from
from .snapshot_json import snapshot_to_json

_T = TypeVar("_T")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def _instant(text: str) -> datetime:
    parsed = parse_time(text)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}")
    if not 1971 <= parsed.year <= 9000:  # the windows reach a month back, and the rollup by days
        raise argparse.ArgumentTypeError(f"not a time openusage could have recorded: {text!r}")
    return parsed


def _argument(check: Callable[[Any], _T]) -> Callable[[str], _T]:
    """One of the settings' checks as an argparse type: its refusal becomes argparse's (exit 2, one line)."""

    def parse(text: str) -> _T:
        try:
            return check(text)
        except vol.Invalid as err:
            raise argparse.ArgumentTypeError(err.msg) from None

    return parse


_zone = _argument(parse_zone)
_link = _argument(parse_link)
_provider_budget = _argument(parse_provider_budget)
_budget = _argument(budget_amount)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number above zero: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _cache_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", type=Path, help="where to keep what was read between runs "
                        "(default: $XDG_CACHE_HOME/openusage-ha)")  # fmt: skip
    parser.add_argument("--no-cache", action="store_const", const=True, default=None,
                        help="read the whole store on every start")  # fmt: skip


def _budget_arguments(
    parser: argparse.ArgumentParser, default_total: float | None, default_providers: list[Any] | None
) -> None:
    parser.add_argument("--budget", type=_budget, default=default_total, metavar="USD",
                        help="a monthly budget for all providers together (metrics.md §8)")  # fmt: skip
    parser.add_argument("--provider-budget", type=_provider_budget, action="append", default=default_providers,
                        metavar="PROVIDER=USD", help="one provider's monthly budget, e.g. claude_code=100")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """Build the `openusage-ha` command line."""
    parser = _Parser(prog="openusage-ha", description="AI coding-agent usage from the openusage store.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    snap = commands.add_parser("snapshot", help="print every figure as JSON")
    snap.add_argument("--db", type=Path, required=True, help="path of telemetry.db")
    snap.add_argument("--now", type=_instant, help="the instant to compute at (default: now)")
    snap.add_argument("--tz", type=_zone, help="IANA time zone of 'today' (default: this machine's)")
    snap.add_argument("--active-minutes", type=_positive, default=DEFAULT_ACTIVE_MINUTES)
    snap.add_argument("--link", type=_link, action="append", default=[], metavar="SRC=DST",
                      help="extra provider link, e.g. openrouter=opencode")  # fmt: skip
    snap.add_argument("--hook-spool", type=Path, help="hook spool folder (default: beside the store)")
    snap.add_argument("--spool", type=Path, help="telemetry spool folder (default: beside the store)")
    snap.add_argument("--busy-timeout", type=_positive, default=5.0, help="seconds to wait for a lock")
    _budget_arguments(snap, default_total=0.0, default_providers=[])
    _cache_arguments(snap)

    pub = commands.add_parser("publish", help="publish the figures to an MQTT broker with HA discovery")
    pub.add_argument("--config", type=Path, help="TOML file with any of these settings")
    pub.add_argument("--db", type=Path, help="path of telemetry.db")
    pub.add_argument("--broker", help="mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    pub.add_argument("--username")
    pub.add_argument("--password-file", type=Path, help=f"file holding the password (or set {PASSWORD_ENV})")
    pub.add_argument("--tls-ca", type=Path)
    pub.add_argument("--tls-cert", type=Path)
    pub.add_argument("--tls-key", type=Path)
    pub.add_argument("--discovery-prefix")
    pub.add_argument("--node-id", help="this machine's id in topics and unique ids (default: the host name)")
    pub.add_argument("--interval", type=_positive, help="seconds between refreshes (default 60)")
    pub.add_argument("--tz", type=_zone)
    pub.add_argument("--active-minutes", type=_positive)
    pub.add_argument("--link", type=_link, action="append", default=None, metavar="SRC=DST")
    _budget_arguments(pub, default_total=None, default_providers=None)
    _cache_arguments(pub)
    pub.add_argument(
        "--breakdown-sensors", metavar="KINDS", help="also a sensor per model, agent, project or tool: KINDS=model,tool"
    )
    pub.add_argument("--once", action="store_true", help="publish once, then exit")
    pub.add_argument("--dry-run", action="store_true", help="print topics and payloads instead of connecting")
    pub.add_argument("-v", "--verbose", action="store_true")

    board = commands.add_parser("dashboard", help="print a dashboard for this store's entities, ready to paste")
    board.add_argument("--db", type=Path, default=None, help="path of telemetry.db (default: openusage's)")
    board.add_argument("--node-id", help="for the entities this machine's publisher makes (default: native ones)")
    board.add_argument("--link", type=_link, action="append", default=[], metavar="SRC=DST",
                       help="an extra provider link, as set in the integration's options")  # fmt: skip
    _budget_arguments(board, default_total=0.0, default_providers=[])
    _cache_arguments(board)

    demo = commands.add_parser("demo-store", help="write a realistic demo store and spools")
    demo.add_argument("dir", type=Path)
    demo.add_argument("--days", type=_count, default=120)
    demo.add_argument("--events", type=_count, default=20_000)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--now", type=_instant)
    return parser


def _snapshot(args: argparse.Namespace) -> int:
    try:
        cache = cache_file(args.db, args.cache_dir, no_cache=bool(args.no_cache), environ=os.environ)
    except SettingsError as err:
        print(f"openusage-ha: {err}", file=sys.stderr)
        return ExitCode.USAGE
    options = ReadOptions(
        cache=cache,
        active_minutes=args.active_minutes,
        provider_links=merge_links(dict(args.link)),
        budgets=budget_map(args.budget, dict(args.provider_budget)),
        busy_timeout=args.busy_timeout,
        hook_spool=args.hook_spool,
        telemetry_spool=args.spool,
    )
    now = args.now or datetime.now(UTC)
    zone = args.tz or local_zone()
    try:
        snapshot = asyncio.run(read_store(args.db, now, zone, options))
    except StoreError as err:
        print(f"openusage-ha: {err}", file=sys.stderr)
        return ExitCode.STORE
    json.dump(snapshot_to_json(snapshot), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return ExitCode.OK


def _dashboard(args: argparse.Namespace) -> int:
    path = args.db or default_store_path()
    try:
        cache = cache_file(path, args.cache_dir, no_cache=bool(args.no_cache), environ=os.environ)
    except SettingsError as err:
        print(f"openusage-ha: {err}", file=sys.stderr)
        return ExitCode.USAGE
    options = ReadOptions(
        provider_links=merge_links(dict(args.link)),
        budgets=budget_map(args.budget, dict(args.provider_budget)),
        cache=cache,
    )
    try:
        snapshot = asyncio.run(read_store(path, datetime.now(UTC), local_zone(), options))
    except StoreError as err:
        print(f"openusage-ha: {err}", file=sys.stderr)
        return ExitCode.STORE
    node_id = node_id_from(args.node_id) if args.node_id is not None else None
    mode = f"the MQTT publisher of node {node_id}" if node_id else "the native integration"
    print(
        f"# OpenUsage dashboard for {mode}, made by `openusage-ha dashboard`.\n"
        "# Settings → Dashboards → Add dashboard → New dashboard from scratch; open it, then\n"
        "# ⋮ → Edit dashboard → ⋮ → Raw configuration editor, and paste this."
    )
    print(to_yaml(dashboard(snapshot, node_id)))
    return ExitCode.OK


def _demo_store(args: argparse.Namespace) -> int:
    # The writer is installed with the command, not with the integration (HACS ships no demo writer).
    from openusage_demo import generate_demo_store

    if args.dir.exists() and not args.dir.is_dir():
        print(f"openusage-ha: {args.dir}: not a folder", file=sys.stderr)
        return ExitCode.USAGE
    try:
        path = generate_demo_store(args.dir, days=args.days, events=args.events, seed=args.seed, now=args.now)
    except OSError as err:
        print(f"openusage-ha: {args.dir}: {err.strerror or err}", file=sys.stderr)
        return ExitCode.USAGE
    print(path)
    return ExitCode.OK


def publish_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> PublishSettings:
    """Command-line options over the TOML file's settings over the defaults, through one schema."""
    given: dict[str, Any] = load_toml(args.config) if args.config else {}
    for name in SCHEMA.schema:
        value = getattr(args, str(name), None)
        if value is not None:
            given[str(name)] = value
    return settings_from(given, environ, dry_run=args.dry_run)


# glibc's `mallopt` parameter: how many allocator arenas the process's threads share at most.
_M_ARENA_MAX = -8


def _share_allocator_arenas() -> None:
    """Let the publisher's threads share one allocator arena; glibc would give each busy thread one of its own.

    Each arena keeps memory that was given back to it: with the event loop's, SQLite's, the MQTT client's and the
    worker's threads, about 8 MB more at the peak of a first read of 1,000,000 rows (two arenas kept as much as
    eight). The threads take turns at Python's lock anyway. Outside glibc: nothing.
    """
    if sys.platform != "linux":
        return
    try:
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1)
    except (OSError, AttributeError):  # a C library without mallopt (musl)
        return


def _publish(args: argparse.Namespace) -> int:
    _share_allocator_arenas()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = publish_settings(args, os.environ)
    except SettingsError as err:
        print(f"openusage-ha: {err}", file=sys.stderr)
        return ExitCode.USAGE
    if args.dry_run:
        return dry_run(settings, sys.stdout)
    publisher = Publisher(settings)
    if args.once:  # one short cycle: the default signal handling is fine
        return publisher.run(once=True)
    restore = install_signal_handlers(publisher)
    try:
        return publisher.run()
    finally:
        restore()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `openusage-ha` command; return its exit code."""
    args = build_parser().parse_args(argv)
    command = {"snapshot": _snapshot, "publish": _publish, "dashboard": _dashboard}.get(args.command, _demo_store)
    try:
        status = command(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`snapshot | head`): it has what it wanted. Nothing more goes to the pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    return status


if __name__ == "__main__":
    sys.exit(main())
