"""Soak: 64 closed-loop clients sending mixed traffic (seeded and unseeded sheets, posted
latents, big sheets, bad input, health checks) to the embedded gateway for 10 minutes, its
memory and open files sampled throughout.

    python -m benchmarks.soak --model-base-path models/fashion_gan
    python -m benchmarks.soak --model-base-path models/fashion_gan --seconds 60 --clients 16

Targets: no unexpected answer (every one is the kind's own status, or a 503 with Retry-After),
no client timeout, resident memory growing less than 10% from the end of the warm-up (the first
tenth of the run, at least 2 s) to the end, and no growth in open file descriptors.
tests/test_soak.py runs a 12-second version of the same.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.procs import embedded_gateway_env, machine, memory_mb, start_gateway
from benchmarks.traffic import Tally, drive, open_fds, percentile, soak_mix
from tfserving_standin.children import Children

MAX_RSS_GROWTH = 0.10


@dataclass
class SoakReport:
    tally: Tally
    seconds: float
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (t, RSS MB, fds)

    def _after_warmup(self) -> list[tuple[float, float, int]]:
        # the first tenth of the run, and at least the 1 s over which clients arrive and a
        # second more (on a busy machine they arrive late): connections still being opened
        # are not growth
        warm = max(0.1 * self.seconds, 2.0)
        return [s for s in self.samples if s[0] >= warm] or self.samples

    @property
    def rss_growth(self) -> float:
        steady = self._after_warmup()
        return (steady[-1][1] - steady[0][1]) / steady[0][1]

    @property
    def fd_growth(self) -> int:
        steady = self._after_warmup()
        return steady[-1][2] - steady[0][2]

    def verdict(self) -> bool:
        return (
            not self.tally.unexpected
            and self.tally.timeouts == 0
            and self.rss_growth < MAX_RSS_GROWTH
            and self.fd_growth <= 0
        )


async def soak(
    url: str, pid: int, clients: int, seconds: float, every_s: float = 5.0
) -> SoakReport:
    """Mixed traffic against ``url`` (served by process ``pid``) with samples of its memory and
    open files every ``every_s``."""
    report, started = SoakReport(Tally(), seconds), time.monotonic()

    async def sample() -> None:
        while (t := time.monotonic() - started) <= seconds:
            report.samples.append((t, memory_mb(pid)[0], open_fds(pid)))
            await asyncio.sleep(every_s)
        report.samples.append((time.monotonic() - started, memory_mb(pid)[0], open_fds(pid)))

    sampler = asyncio.create_task(sample())
    report.tally = await drive(url, soak_mix(), clients, seconds)
    await sampler
    return report


def print_report(r: SoakReport) -> None:
    print(f"{'kind':<12}{'answers by status':<40}{'p50 ms':>8}{'p99 ms':>8}")
    for kind, statuses in sorted(r.tally.statuses.items()):
        lat = [x for (k, _), v in r.tally.latencies.items() if k == kind for x in v]
        text = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
        p50, p99 = 1000 * percentile(lat, 0.5), 1000 * percentile(lat, 0.99)
        print(f"{kind:<12}{text:<40}{p50:>8.0f}{p99:>8.0f}")
    first, last = r._after_warmup()[0], r.samples[-1]
    print(
        f"\nunexpected answers: {dict(r.tally.unexpected) or 0}; client timeouts: "
        f"{r.tally.timeouts}; broken connections: {r.tally.broken}"
    )
    print(
        f"resident memory: {first[1]:.1f} MB after warm-up -> {last[1]:.1f} MB at the end "
        f"({100 * r.rss_growth:+.1f}%, target < {100 * MAX_RSS_GROWTH:.0f}%)"
    )
    print(f"open files: {first[2]} -> {last[2]} (target: no growth)")
    print(f"\nverdict: {'PASS' if r.verdict() else 'FAIL'}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    p.add_argument("--model-base-path", type=Path, required=True)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--seconds", type=float, default=600.0)
    args = p.parse_args(argv)
    m = machine()
    print(f"machine: {m.nproc} cores ({m.cpu_model}), {m.mem_gb} GB, load {m.loadavg}")
    with tempfile.TemporaryDirectory() as tmp, Children(Path(tmp)) as children:
        env = embedded_gateway_env(args.model_base_path, Path(tmp))
        proc, url = start_gateway(children, "gateway", env)
        report = asyncio.run(soak(url, proc.pid, args.clients, args.seconds))
    print(f"\n{args.clients} clients, mixed traffic, {args.seconds:g} s, embedded gateway\n")
    print_report(report)
    return 0 if report.verdict() else 1


if __name__ == "__main__":
    sys.exit(main())
