"""Shared fixtures.

The project's custom_components package is imported before Home Assistant starts, so that Home Assistant's loader finds
this integration rather than its own test folder.
"""

from __future__ import annotations

import custom_components  # noqa: F401  (must come before Home Assistant looks for integrations)
from tests.unprivileged import open_dir  # noqa: F401  (a fixture for every test folder)
