"""A closed-loop HTTP load generator: N concurrent clients, each sending its next GET as soon as
the previous answer arrived, for a fixed time after a warm-up.

    python -m benchmarks.loadgen --url http://127.0.0.1:8000/api/generar-diseno \\
        --concurrency 8 --seconds 5 --warmup 1

One asyncio loop, one keep-alive connection per client (benchmarks.http1: a small HTTP/1.1
client, cheap in CPU), run in its own process by benchmarks.serving so that it never shares a GIL
with the server it measures. Only
answers that arrive inside the measured window count (see ``Window``: at least ``--seconds`` and
one answer per client, at most max(seconds, timeout)); a 200 counts as a success only when its
body is a PNG. Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.http1 import Connection, HttpError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Window:
    """The measured window of a closed loop. It opens at the first answer after the warm-up once
    every client has had one answer (steady state), and closes at the first answer after
    ``seconds`` once it holds at least one answer per client, or at ``cap_s`` regardless. Opening
    and closing on an answer keeps whole batches in it when a batching server answers its
    clients in bursts."""

    clients: int
    seconds: float
    cap_s: float
    not_before: float  # perf_counter time the warm-up ends
    start: float | None = None
    end: float | None = None
    answered: set[int] = field(default_factory=set)  # clients with an answer so far
    latencies: list[float] = field(default_factory=list)  # successes in the window, seconds
    errors: Counter[str] = field(default_factory=Counter)
    bytes: int = 0

    def closed(self, now: float) -> bool:
        return self.end is not None or (self.start is not None and now > self.start + self.cap_s)

    def record(
        self, client: int, ended: float, latency: float, error: str | None, size: int
    ) -> None:
        if self.start is None:
            self.answered.add(client)
            if ended >= self.not_before and len(self.answered) == self.clients:
                self.start = ended  # this answer itself is the last of the warm-up
            return
        if self.end is not None:
            return  # finished after the window closed
        if error is None:
            self.latencies.append(latency)
            self.bytes += size
        else:
            self.errors[error] += 1
        count = len(self.latencies) + sum(self.errors.values())
        if ended >= self.start + self.seconds and count >= self.clients:
            self.end = ended


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when it is empty)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


async def _client(url: str, me: int, window: Window, timeout: float) -> None:
    conn = Connection(url)
    try:
        while not window.closed(time.perf_counter()):
            started = time.perf_counter()
            error: str | None = None
            size = 0
            try:
                status, body = await conn.get(timeout)
                if status != 200:
                    error = f"HTTP {status}"
                elif not body.startswith(PNG_SIGNATURE):
                    error = "200 without a PNG body"
                size = len(body)
            except (TimeoutError, OSError, HttpError, asyncio.IncompleteReadError) as exc:
                error = type(exc).__name__
            ended = time.perf_counter()
            window.record(me, ended, ended - started, error, size)
    finally:
        conn.close()


async def run(
    url: str, concurrency: int, seconds: float, warmup: float, timeout: float
) -> dict[str, Any]:
    """Drive ``url`` with ``concurrency`` clients; the numbers of the measured window."""
    cap = max(seconds, timeout)
    window = Window(concurrency, seconds, cap, time.perf_counter() + warmup)
    tasks = [asyncio.create_task(_client(url, i, window, timeout)) for i in range(concurrency)]
    # bounded: warm-up (each client's first answer takes at most ``timeout``), the window (at
    # most ``cap``), then the requests still in flight (at most ``timeout``)
    await asyncio.wait_for(asyncio.gather(*tasks), warmup + 2 * timeout + cap + 5)
    lat = sorted(window.latencies)
    elapsed = 0.0
    if window.start is not None:
        elapsed = (window.end or window.start + cap) - window.start
    p50, p95 = percentile(lat, 50), percentile(lat, 95)
    return {
        "url": url,
        "concurrency": concurrency,
        "window_s": elapsed,
        "ok": len(lat),
        "errors": sum(window.errors.values()),
        "error_kinds": dict(window.errors),
        "sheets_per_s": len(lat) / elapsed if elapsed else 0.0,
        "p50_ms": None if p50 is None else 1000 * p50,
        "p95_ms": None if p95 is None else 1000 * p95,
        "mean_png_bytes": window.bytes / len(lat) if lat else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window (at least)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured lead-in")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.url, args.concurrency, args.seconds, args.warmup, args.timeout))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
