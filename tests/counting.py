"""Counting the mirror's full rebuilds in a test (the real ones run)."""

from __future__ import annotations

import pytest

from custom_components.openusage.core import mirror


def count_rebuilds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Return a list that grows by one at each full rebuild of any reader's mirror."""
    counted: list[int] = []
    rebuild = mirror.UsageMirror._rebuild

    async def counting(self: mirror.UsageMirror, *args: object, **kwargs: object) -> object:
        counted.append(1)
        return await rebuild(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mirror.UsageMirror, "_rebuild", counting)
    return counted
