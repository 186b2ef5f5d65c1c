"""Reliability under real traffic (issue 17): goodput, p99 and health-check latency of
``python -m gateway`` as it runs in production (no front proxy), for clients that behave as
real ones do, each scenario beside a baseline measured in the same run on the same machine.

    python -m benchmarks.reliability --model-base-path models/fashion_gan
    python -m benchmarks.reliability --model-base-path models/fashion_gan --seconds 10 \\
        --before /tmp/gateway-before   # the same scenarios against another checkout too

Embedded gateway (the model on the gateway's own CPUs):

- baseline: 3 clients asking 16x16 sheets in a closed loop, honouring Retry-After (enough to
  keep the model busy);
- retry flood: 256 connections, each its own client address, asking 16x16 sheets and asking
  again the moment any answer arrives (Retry-After ignored);
- idle connections: as many sockets as GATEWAY_MAX_CONNECTIONS that send nothing (each one the
  gateway closes is opened again), beside the baseline's clients;
- stalled uploads: 200 POSTs that announce 1 MB and stop after 900 kB (reopened likewise),
  beside the baseline's clients; the gateway's resident memory is sampled;
- small sheets: 32 connections asking 3x3 sheets, twice.

The first four run in turn, ``--rounds`` times (each meets the machine's other work as much as
the others do), and each is reported summed over its rounds.

REST gateway in front of the TF Serving stand-in (tfserving_standin, on the same CPUs):

- baseline: 40 clients asking 3x3 sheets;
- slow upstream: every predict takes 5 s (within the gateway's 6 s deadline);
- failing upstream: every predict takes 10 s (past the deadline: 504).

Throughout, a health check (/healthz and /readyz, each every 100 ms on a new connection, as a
kubelet probes), and the same probe of a control server that does nothing else
(benchmarks.echo): on a machine shared with other work, the gateway cannot answer faster than
that, so the table shows both.

Targets: goodput under the flood, idle and stalled connections at least 70% of the baseline's;
health p99 within 50 ms everywhere (where the control itself is slower, within 50 ms of the
control's); no 503 for the small sheets;
refusals at once (p50 within 50 ms) while the upstream is slow or failing, and one request at a
time trying a failing upstream (its 504s come in at most one wave per deadline).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.holders import hold, stalled_upload
from benchmarks.procs import (
    child_env,
    embedded_gateway_env,
    free_port,
    machine,
    memory_mb,
    wait_status,
)
from benchmarks.reliability_report import Outcome, print_table
from benchmarks.traffic import OVERLOAD_MIX, Kind, drive, probe
from tfserving_standin.children import Children
from tfserving_standin.harness import StandIn

SMALL = [Kind("3x3", "GET", "/api/generar-diseno")]
HOST = "127.0.0.1"


@contextmanager
def gateway(
    children: Children, name: str, env: dict[str, str], source: Path | None
) -> Iterator[tuple[str, int]]:
    """``python -m gateway`` (from ``source``, another checkout, when given) on a free port;
    yields its URL and pid once /healthz answers."""
    port = free_port(HOST)
    full = child_env({**env, "GATEWAY_HOST": HOST, "GATEWAY_PORT": str(port)})
    started = time.perf_counter()
    # run in that checkout: `python -m` puts the working folder first on the import path
    proc = children.spawn(name, [sys.executable, "-m", "gateway"], full, cwd=source)
    try:
        wait_status(proc, HOST, port, "/healthz", started, 180)
        yield f"http://{HOST}:{port}", proc.pid
    finally:
        children.stop(name)


@contextmanager
def standin(base: Path) -> Iterator[StandIn]:
    """The TF Serving stand-in over ``base`` (the shared harness), stopped on leaving."""
    with StandIn(
        model_name="fashion_gan",
        base_path=base,
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
        startup_timeout_s=240,
        host=HOST,
        own_session=True,
    ) as server:
        yield server


@contextmanager
def control(children: Children) -> Iterator[str]:
    """benchmarks.echo on a free port: the machine's own health-check latency."""
    port = free_port(HOST)
    argv = [sys.executable, "-m", "benchmarks.echo", "--host", HOST, "--port", str(port)]
    proc = children.spawn("control", argv, child_env({}))
    try:
        wait_status(proc, HOST, port, "/", time.perf_counter(), 30)
        yield f"http://{HOST}:{port}"
    finally:
        children.stop("control")


CONTROL = ""  # the control server's URL (set once by main)


async def scenario(
    name: str,
    url: str,
    mix: list[Kind],
    clients: int,
    seconds: float,
    *,
    polite: bool = True,
    sources: int | None = 2,
    holder: tuple[int, bytes] | None = None,
    pid: int | None = None,
) -> Outcome:
    """Clients over ``mix`` (and connections held, and the health probe) for ``seconds``."""
    until = time.monotonic() + seconds
    host, port = url.removeprefix("http://").split(":")
    load0 = os.getloadavg()[0]
    load = asyncio.create_task(drive(url, mix, clients, seconds, polite=polite, sources=sources))
    held = None
    if holder is not None:
        held = asyncio.create_task(hold(host, int(port), holder[0], seconds, holder[1]))
    memory: list[float] = []

    async def sample() -> None:
        while pid is not None and time.monotonic() < until:
            memory.append(memory_mb(pid)[0])
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    health = await asyncio.gather(
        probe(url, until, 0.1, fresh=True),
        probe(url, until, 0.1, fresh=True, path="/readyz"),
        probe(CONTROL, until, 0.1, fresh=True, path="/"),
    )
    tally = await load
    await sampler
    return Outcome(
        name,
        seconds,
        tally,
        sorted(health[0] + health[1]),
        control=sorted(health[2]),
        held=None if held is None else await held,
        memory=memory,
        load=(load0, os.getloadavg()[0]),
        images=9 if mix is SMALL else 256,
    )


async def embedded_runs(
    url: str, pid: int, seconds: float, max_connections: int, rounds: int
) -> list[Outcome]:
    """``rounds`` rounds of baseline, flood, idle and stalled connections, so that each meets
    the machine's other work as much as the others do (its load drifts over minutes)."""
    await drive(url, OVERLOAD_MIX, 3, 3.0, sources=2)  # warm-up: the model's speed is measured
    big, runs = OVERLOAD_MIX, dict[str, Outcome]()

    def keep(o: Outcome) -> None:
        runs[o.name] = runs[o.name].merge(o) if o.name in runs else o

    for _ in range(rounds):
        keep(await scenario("baseline", url, big, 3, seconds, pid=pid))
        keep(
            await scenario("retry flood", url, big, 256, seconds, polite=False, sources=3, pid=pid)
        )
        await asyncio.sleep(3)  # the flood's held requests are answered
        idle = (max_connections, b"")
        keep(await scenario("idle connections", url, big, 3, seconds, holder=idle, pid=pid))
        stalled = (200, stalled_upload(sent=900_000))
        keep(await scenario("stalled uploads", url, big, 3, seconds, holder=stalled, pid=pid))
    for n in (1, 2):
        keep(await scenario(f"small sheets #{n}", url, SMALL, 32, seconds, sources=None))
    return list(runs.values())


async def rest_runs(url: str, upstream: StandIn, seconds: float) -> list[Outcome]:
    await drive(url, SMALL, 8, 3.0, sources=4)
    runs = [await scenario("rest baseline", url, SMALL, 40, seconds, sources=4)]
    upstream.set_faults(delay_ms=5000)
    runs.append(await scenario("slow upstream", url, SMALL, 40, seconds, sources=5))
    upstream.clear_faults()
    await asyncio.sleep(6)  # the slow calls still running end; each scenario starts healthy
    upstream.set_faults(delay_ms=10000)
    runs.append(await scenario("failing upstream", url, SMALL, 40, seconds, sources=6))
    upstream.clear_faults()
    return runs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__)
    p.add_argument("--model-base-path", type=Path, required=True)
    p.add_argument("--seconds", type=float, default=8.0, help="per scenario and round")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the embedded scenarios")
    p.add_argument(
        "--before", type=Path, default=None, help="also run the gateway from this checkout"
    )
    p.add_argument("--skip-rest", action="store_true", help="only the embedded scenarios")
    args = p.parse_args(argv)
    m = machine()
    print(f"machine: {m.nproc} cores ({m.cpu_model}), {m.mem_gb} GB, load {m.loadavg}")
    max_connections = 1024
    results: dict[str, list[Outcome]] = {}
    global CONTROL
    with (
        tempfile.TemporaryDirectory() as tmp,
        Children(Path(tmp)) as children,
        control(children) as CONTROL,
    ):
        for label, source in [("now", None), ("before", args.before)]:
            if label == "before" and source is None:
                continue
            env = embedded_gateway_env(args.model_base_path, Path(tmp) / label)
            with gateway(children, f"embedded-{label}", env, source) as (url, pid):
                runs = asyncio.run(
                    embedded_runs(url, pid, args.seconds, max_connections, args.rounds)
                )
            if not args.skip_rest:
                with standin(args.model_base_path.resolve()) as upstream:
                    rest_env = {
                        **env,
                        "GATEWAY_BACKEND": "rest",
                        "TFSERVING_REST_URL": upstream.rest_url,
                        "GATEWAY_UPSTREAM_TIMEOUT_S": "6",
                    }
                    with gateway(children, f"rest-{label}", rest_env, source) as (url, _):
                        # long enough for a few of the slow upstream's 5 s calls
                        runs += asyncio.run(rest_runs(url, upstream, max(args.seconds, 15.0)))
            results[label] = runs
    print_table(results, m, args.seconds, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
