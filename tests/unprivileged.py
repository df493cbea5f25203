"""Tests that need an ordinary user: root reads and writes everywhere."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """Return a folder an unprivileged user can reach (pytest's own tmp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="openusage-test-"))
    folder.chmod(0o755)
    yield folder
    folder.chmod(0o755)
    shutil.rmtree(folder)


def run_unprivileged(work: Callable[[], str]) -> str:
    """Run `work` in a forked child that first gives up root; return what it returned, or fail if it raised.

    Root reads and writes everywhere, so permission cases need an ordinary user.
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child exits without running pytest's teardown
        code = 1
        try:
            os.close(reader)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            os.write(writer, work().encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        reported = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return reported
