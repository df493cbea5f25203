"""Settings written as `name=value` text.

They are provider links (`openrouter=opencode`), one parser for the integration's options, the command line and the
publisher's file.
"""

from __future__ import annotations


def items(text: str) -> list[str]:
    """Return the items of a text written one per line or separated by commas, blank ones left out."""
    return [item for item in text.replace(",", "\n").splitlines() if item.strip()]


def parse_link(text: str) -> tuple[str, str]:
    """`source=target`: a provider id and the openusage provider it stands for. Raises ValueError."""
    source, sep, target = text.partition("=")
    if not sep or not source.strip() or not target.strip():
        raise ValueError(f"expected SRC=DST, got {text!r}")
    return source.strip().lower(), target.strip().lower()


def parse_links(text: str) -> dict[str, str]:
    """Parse provider links, one per line or comma-separated; raise ValueError on a malformed one."""
    return dict(parse_link(item) for item in items(text))
