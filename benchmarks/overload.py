"""Overload: 256 closed-loop clients asking for 16x16 sheets for 15 s from the embedded gateway,
about 4x what it can serve on 2 cores, with /healthz probed every 50 ms throughout.

    python -m benchmarks.overload --model-base-path models/fashion_gan
    python -m benchmarks.overload --model-base-path models/fashion_gan --clients 64 --seconds 5

Prints the answers by status, the latencies of the 200s and of the 503s, /healthz's, and the
targets of the reliability issue with a verdict: no client timeout, every answer 200 or a 503
with Retry-After, p99 of the 200s <= 2 s, 503s within 50 ms, /healthz within 50 ms throughout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.procs import embedded_gateway_env, machine, start_gateway
from benchmarks.traffic import OVERLOAD_MIX, Tally, drive, percentile, probe
from tfserving_standin.children import Children


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.overload", description=__doc__)
    p.add_argument("--model-base-path", type=Path, required=True)
    p.add_argument("--clients", type=int, default=256)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument(
        "--impolite", action="store_true", help="clients ignore Retry-After and ask again at once"
    )
    args = p.parse_args(argv)
    m = machine()
    print(f"machine: {m.nproc} cores ({m.cpu_model}), {m.mem_gb} GB, load {m.loadavg}")
    with tempfile.TemporaryDirectory() as tmp, Children(Path(tmp)) as children:
        env = embedded_gateway_env(args.model_base_path, Path(tmp))
        _, url = start_gateway(children, "gateway", env)

        async def run() -> tuple[Tally, list[float]]:
            await drive(url, OVERLOAD_MIX, 4, 3.0)  # warm-up: the model's speed is measured
            until = time.monotonic() + args.seconds
            polite = not args.impolite
            load = asyncio.create_task(
                drive(url, OVERLOAD_MIX, args.clients, args.seconds, polite=polite)
            )
            health = await probe(url, until)
            return await load, health

        tally, health = asyncio.run(run())
    served = tally.latencies[("16x16", 200)]
    refused = tally.latencies[("16x16", 503)]
    others = {s: n for s, n in tally.statuses["16x16"].items() if s not in (200, 503)}
    rows = [
        ("answers 200", f"{len(served)}", ""),
        ("answers 503 (Retry-After)", f"{len(refused)}", ""),
        ("other answers", f"{others or 0}", "0"),
        ("client timeouts (10 s)", f"{tally.timeouts}", "0"),
        ("200s p50 / p99", f"{_ms(served, 0.5)} / {_ms(served, 0.99)}", "p99 <= 2000 ms"),
        ("503s p50 / p99 / max", f"{_ms(refused, 0.5)} / {_ms(refused, 0.99)} / {_ms(refused, 1)}",
         "<= 50 ms"),
        ("/healthz p50 / p99 / max", f"{_ms(health, 0.5)} / {_ms(health, 0.99)} / {_ms(health, 1)}",
         "<= 50 ms"),
    ]  # fmt: skip
    manners = "ignoring" if args.impolite else "honouring"
    print(
        f"\n{args.clients} clients x 16x16 sheets, {args.seconds:g} s, embedded gateway, "
        f"clients {manners} Retry-After\n"
    )
    for name, value, want in rows:
        print(f"{name:<28}{value:<34}{want}")
    ok = (
        not others
        and tally.timeouts == 0
        and percentile(served, 0.99) <= 2.0
        and percentile(refused, 1.0) <= 0.05
        and percentile(health, 1.0) <= 0.05
    )
    print(f"\nverdict: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def _ms(values: list[float], q: float) -> str:
    return f"{1000 * percentile(values, q):.0f} ms" if values else "-"


if __name__ == "__main__":
    sys.exit(main())
