"""The `openusage-ha` command: `snapshot`, `demo-store` (and the MQTT publisher's `publish`).

Exit codes: 0 done, 2 bad arguments, 3 the store cannot be read. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .clock import parse_time
from .demo import generate_demo_store
from .reader import DEFAULT_ACTIVE_MINUTES, ReadOptions, StoreError, merge_links, read_store
from .snapshot_json import snapshot_to_json

EXIT_USAGE = 2
EXIT_STORE = 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _instant(text: str) -> datetime:
    parsed = parse_time(text)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}")
    return parsed


def _zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone: {text!r}") from None


def _link(text: str) -> tuple[str, str]:
    source, sep, target = text.partition("=")
    if not sep or not source.strip() or not target.strip():
        raise argparse.ArgumentTypeError(f"expected SRC=DST, got {text!r}")
    return source, target


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above zero: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def local_zone() -> ZoneInfo:
    """The machine's time zone as an IANA zone (UTC when it cannot be named)."""
    try:
        localtime = Path("/etc/localtime").resolve()
        if "zoneinfo" in localtime.parts:
            return ZoneInfo("/".join(localtime.parts[localtime.parts.index("zoneinfo") + 1 :]))
    except (OSError, ZoneInfoNotFoundError, ValueError):
        pass
    tz_env = time.tzname[0] if time.tzname else ""
    try:
        return ZoneInfo(tz_env) if tz_env else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def build_parser() -> argparse.ArgumentParser:
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

    demo = commands.add_parser("demo-store", help="write a realistic demo store and spools")
    demo.add_argument("dir", type=Path)
    demo.add_argument("--days", type=_count, default=120)
    demo.add_argument("--events", type=_count, default=20_000)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--now", type=_instant)
    return parser


def _snapshot(args: argparse.Namespace) -> int:
    options = ReadOptions(
        active_minutes=args.active_minutes,
        provider_links=merge_links(dict(args.link)),
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
        return EXIT_STORE
    json.dump(snapshot_to_json(snapshot), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _demo_store(args: argparse.Namespace) -> int:
    if args.dir.exists() and not args.dir.is_dir():
        print(f"openusage-ha: {args.dir}: not a folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        path = generate_demo_store(args.dir, days=args.days, events=args.events, seed=args.seed, now=args.now)
    except OSError as err:
        print(f"openusage-ha: {args.dir}: {err.strerror or err}", file=sys.stderr)
        return EXIT_USAGE
    print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "snapshot":
        return _snapshot(args)
    return _demo_store(args)


if __name__ == "__main__":
    sys.exit(main())
