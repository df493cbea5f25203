"""What the `openusage-ha` command exits with (README: `--once`); scripts and service managers read these."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The command's exit statuses."""

    OK = 0
    USAGE = 2  # a bad option or setting (argparse's own status for the same)
    STORE = 3  # the store cannot be read: nothing was published
    BROKER = 4  # the broker cannot be reached
