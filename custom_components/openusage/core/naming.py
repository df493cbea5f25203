"""Names made from the store's keys: slugs for ids and topics, entity ids as Home Assistant makes them, words."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection, Iterable


def slug(text: str, limit: int = 64) -> str:
    """Lower-case [a-z0-9_] form of a name from the store: safe in ids and MQTT topics."""
    cleaned = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 9] + "_" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return cleaned or "unknown"


def _plainness(key: str) -> tuple[int, str]:
    """How much slugging changes a key (then the key): the plainest of keys that slug alike keeps the slug."""
    return sum(not (c.islower() or c.isdigit() or c == "_") for c in key), key


def unique_slugs(keys: Iterable[str], taken: Collection[str] = ()) -> dict[str, str]:
    """Give each key a slug that no other key has, nor a `taken` one.

    Of keys that slug alike (`a.b`, `a_b`, `A-B`), the plainest keeps the plain slug and the others add a hash
    of their own text.
    """
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(slug(key), []).append(key)
    found: dict[str, str] = {}
    for plain, members in groups.items():
        members.sort(key=_plainness)
        for index, key in enumerate(members):
            unique = index == 0 and plain not in taken
            found[key] = plain if unique else f"{plain}_{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    return found


def entity_slug(text: str) -> str:
    """Make the part of an entity id Home Assistant makes of a name (as its `slugify`).

    Accents are dropped, letters lower-cased, runs of anything else become `_`.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_") or "unknown"


def readable(key: str) -> str:
    """Write a metric key as words: `usage_five_hour` → `Usage five hour`."""
    words = re.sub(r"[_\-]+", " ", key).strip()
    return words[:1].upper() + words[1:] if words else key
