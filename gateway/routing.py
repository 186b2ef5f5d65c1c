"""Which version a request goes to: its explicit pin, else the canary share of clients to label
"canary" and the rest to "stable" (or to GATEWAY_DEFAULT_LABEL / the newest version when no
canary share is set). A client always lands on the same side: the split hashes a stable key."""

from __future__ import annotations

import zlib

from gateway.backends.base import Pin
from gateway.settings import Settings


def choose(explicit: Pin | None, client_key: str, s: Settings) -> tuple[Pin, str]:
    """(pin, traffic route) for a request; the route labels metrics and X-Traffic-Route."""
    if explicit is not None:
        return explicit, "pinned"
    if s.canary_percent <= 0:
        return (Pin(label=s.default_label), "stable") if s.default_label else (Pin(), "latest")
    bucket = zlib.crc32(client_key.encode()) % 10000  # 0.01% steps
    if bucket < s.canary_percent * 100:
        return Pin(label=s.canary_label), "canary"
    return Pin(label=s.stable_label), "stable"
