"""Shared fixtures.

The project's custom_components package is imported before Home Assistant starts, so that Home Assistant's loader finds
this integration rather than its own test folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import custom_components  # noqa: F401  (must come before Home Assistant looks for integrations)
from tests.unprivileged import open_dir  # noqa: F401  (a fixture for every test folder)


@pytest.fixture(autouse=True)
def cache_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the command's default cache folder (and its subprocesses') out of the user's own."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(folder))
    return folder
