"""Which version a request goes to: its explicit pin, else the canary share of clients to label
"canary" and the rest to "stable" (or to GATEWAY_DEFAULT_LABEL / the newest version when no
canary share is set). A client always lands on the same side: the split hashes a stable key,
``X-Client-Id``, else the client's address. Behind an ingress every connection comes from the
ingress, so the address is read from ``X-Forwarded-For``, but only when the connection comes
from one of GATEWAY_TRUSTED_PROXIES (anyone else could write any address there)."""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Mapping, Sequence

from gateway.backends.base import Pin
from gateway.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _in(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str, headers: Mapping[str, str], trusted: Sequence[Network]) -> str:
    """The client's address: the peer, or, when the peer is a trusted proxy, the nearest
    address in X-Forwarded-For that is not one of the trusted proxies."""
    if not trusted or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop
    return hops[0] if hops else peer


def client_key(peer: str, headers: Mapping[str, str], s: Settings) -> str:
    return headers.get("x-client-id") or client_address(peer, headers, s.trusted_proxies)


def splits(s: Settings) -> bool:
    """Whether unpinned traffic depends on who asks (answers then carry Vary)."""
    return s.canary_percent > 0


def choose(explicit: Pin | None, key: str, s: Settings) -> tuple[Pin, str]:
    """(pin, traffic route) for a request; the route labels metrics and X-Traffic-Route."""
    if explicit is not None:
        return explicit, "pinned"
    if s.canary_percent <= 0:
        return (Pin(label=s.default_label), "stable") if s.default_label else (Pin(), "latest")
    bucket = zlib.crc32(key.encode()) % 10000  # 0.01% steps
    if bucket < s.canary_percent * 100:
        return Pin(label=s.canary_label), "canary"
    return Pin(label=s.stable_label), "stable"
