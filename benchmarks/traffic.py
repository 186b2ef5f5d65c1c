"""Closed-loop traffic for the reliability benchmarks (and the short soak in the suite): N
clients, each sending its next request as soon as the previous answer arrived, drawn from a mix
of request kinds, each with the statuses that are right for it. A 503 with Retry-After is always
right (the gateway refusing work it could not finish soon); anything else outside a kind's
statuses is "unexpected", and so is a client timeout. A client told to retry after N seconds
waits that long first, plus up to a second of random jitter so that refused clients do not all
come back in the same instant, as the project's own client (fashion_gan.GatewayClient) and any
polite HTTP client do; ``polite=False`` clients ask again at once.

One asyncio loop and one keep-alive connection per client (benchmarks.http1: little client CPU,
which matters when the clients share 2 cores with the gateway they measure).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from benchmarks.http1 import Connection, HttpError, encode_request

SHEET = "/api/generar-diseno"


@dataclass(frozen=True)
class Kind:
    name: str
    method: str
    target: str  # path and query
    body: bytes = b""
    ok: frozenset[int] = frozenset({200})


def soak_mix(latent_dim: int = 100) -> list[Kind]:
    """Seeded and unseeded sheets, posted latents, big sheets, bad input, health checks."""
    rng = random.Random(0)
    latents = [[round(rng.gauss(0, 1), 4) for _ in range(latent_dim)] for _ in range(4)]
    return [
        Kind("unseeded", "GET", SHEET),
        Kind("seeded", "GET", f"{SHEET}?seed=7"),
        Kind("seeded-9x9", "GET", f"{SHEET}?seed=8&rows=9&cols=9"),
        Kind("post", "POST", SHEET, json.dumps({"latents": latents}).encode()),
        Kind("big", "GET", f"{SHEET}?rows=16&cols=16&scale=2"),
        Kind("bad-query", "GET", f"{SHEET}?rows=999", ok=frozenset({400})),
        Kind("bad-body", "POST", SHEET, b"[" * 3000, ok=frozenset({400})),
        Kind("healthz", "GET", "/healthz"),
    ]


OVERLOAD_MIX = [Kind("16x16", "GET", f"{SHEET}?rows=16&cols=16")]


@dataclass
class Tally:
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[tuple[str, int], list[float]] = field(default_factory=lambda: defaultdict(list))
    timeouts: int = 0
    broken: int = 0  # connection errors
    unexpected: Counter[str] = field(default_factory=Counter)  # "kind status"
    # when each answer of a status came (monotonic), to tell waves of answers apart
    ends: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    def record(self, kind: Kind, status: int, seconds: float, retry_after: str | None) -> None:
        self.statuses[kind.name][status] += 1
        self.latencies[(kind.name, status)].append(seconds)
        self.ends[status].append(time.monotonic())
        refused = status == 503 and retry_after is not None
        if status not in kind.ok and not refused:
            self.unexpected[f"{kind.name} {status}"] += 1

    def count(self, status: int) -> int:
        return sum(c[status] for c in self.statuses.values())


def source(number: int, first: int = 1) -> str:
    """Client ``number``'s own loopback address, 127.<first>.x.y: a client of its own for
    the gateway's per-address fairness and pacing."""
    return f"127.{first}.{number // 250}.{number % 250 + 1}"


async def drive(
    url: str,
    mix: list[Kind],
    clients: int,
    seconds: float,
    timeout_s: float = 10.0,
    polite: bool = True,
    ramp_s: float = 1.0,
    sources: int | None = None,
) -> Tally:
    """Run ``clients`` closed-loop clients over ``mix`` for ``seconds``, starting at random
    moments of the first ``ramp_s`` (256 connections opened in the same instant measure the
    accept queue, not the gateway). ``sources``: each client connects from its own address
    127.<sources>.x.y (else all from 127.0.0.1, one client as far as the gateway can tell)."""
    tally, deadline = Tally(), time.monotonic() + seconds
    requests = {k.name: encode_request(url + k.target, k.method, k.body) for k in mix}

    async def client(number: int) -> None:
        here = None if sources is None else source(number, sources)
        rng, conn = random.Random(number), Connection(url, here)
        await asyncio.sleep(rng.random() * ramp_s)  # clients arrive over the first second
        while time.monotonic() < deadline:
            kind = rng.choice(mix)
            started = time.monotonic()
            try:
                status, _ = await conn.send(requests[kind.name], timeout_s)
            except TimeoutError:
                tally.timeouts += 1
                continue
            except (OSError, HttpError):
                tally.broken += 1
                await asyncio.sleep(0.05)
                continue
            retry = conn.headers.get("retry-after")
            tally.record(kind, status, time.monotonic() - started, retry)
            if polite and status == 503 and retry and retry.isdigit():
                pause = float(retry) + rng.random()
                await asyncio.sleep(min(pause, max(deadline - time.monotonic(), 0)))
        conn.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    return tally


async def probe(
    url: str, until: float, every_s: float = 0.05, fresh: bool = False, path: str = "/healthz"
) -> list[float]:
    """Seconds each GET ``path`` took, one every ``every_s``, on a connection of its own
    (``fresh``: a new connection for every probe, as a kubelet's probes come). A failed probe
    counts as infinitely slow."""
    conn, seconds = Connection(url + path), []
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            status, _ = await conn.get(10.0)
        except (TimeoutError, OSError, HttpError):
            status = 0
        seconds.append(time.monotonic() - started if status == 200 else float("inf"))
        if fresh:
            conn.close()
        await asyncio.sleep(every_s)
    conn.close()
    return seconds


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
