"""The measuring steps of the serving benchmark: the model alone, a gateway per backend (the
rest and grpc ones against the TF Serving stand-in, run as a command), the seed's Flask path;
each row in a child process of its own (benchmarks.serving runs them in order)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.procs import (
    REPO_ROOT,
    BenchError,
    child_env,
    free_port,
    loads_tensorflow,
    machine_busy_s,
    memory_mb,
    process_cpu_s,
    wait_status,
)
from benchmarks.serving_report import (
    DESIGN,
    HOST,
    MODEL_NAME,
    Row,
    Run,
    Server,
)
from gateway.settings import ENV as GATEWAY_ENV
from tfserving_standin.harness import StandIn, StandInError


# --- steps -------------------------------------------------------------------------------------
def model_only(run: Run) -> None:
    """Publish a version if needed, then one pass of the model-only rows. A second pass keeps,
    per row, the faster of the two: the ceiling is the best the model alone was seen to do."""
    argv = [
        sys.executable,
        "-m",
        "benchmarks.model_only",
        f"--model-base-path={run.args.model_base_path}",
        f"--seconds={run.args.seconds}",
        f"--batch-images={run.args.batch_images}",
    ]
    out = _child_json(argv, timeout=600 + 8 * run.args.seconds)
    if not run.model:
        run.model = {k: v for k, v in out.items() if k != "rows"}
    run.model.setdefault("passes", []).append(out["rows"])
    for r in out["rows"]:
        what = "model+render" if r["render"] else "model only"
        new = Row(
            f"{what} b={r['images_per_call']}",
            "-",
            r["sheets_per_s"],
            r["p50_ms"],
            r["p95_ms"],
            0,
            f"{r['sheets_per_call']} sheet(s)/call, {r['calls']} calls",
            others_pct=r["others_pct"],
        )
        old = run.row(new.path, "-")
        if old is None:
            run.rows.append(new)
            continue
        seen = f"best of 2 passes: {old.sheets_per_s:.2f} / {new.sheets_per_s:.2f} sheets/s"
        if (new.sheets_per_s or 0.0) > (old.sheets_per_s or 0.0):
            run.rows[run.rows.index(old)] = new
            old = new
        old.note = f"{old.note}; {seen}"


def gateway(
    run: Run, backend: str, upstream: dict[str, str], upstream_pid: int | None = None
) -> None:
    """Start ``python -m gateway`` with ``backend``, time its start, load it, read its memory.
    ``upstream_pid`` (the stand-in) counts as this benchmark's CPU, not the others'."""
    port = free_port(HOST)
    env = child_env(
        {
            "GATEWAY_BACKEND": backend,
            "MODEL_NAME": MODEL_NAME,
            "MODEL_BASE_PATH": str(run.args.model_base_path),
            "GATEWAY_HOST": HOST,
            "GATEWAY_PORT": str(port),
            "GATEWAY_TRAIN_ON_MISS": "false",
            "GATEWAY_JOBS_DIR": str(run.work / "jobs"),
            "GATEWAY_LOG_LEVEL": run.args.gateway_log_level,
            **upstream,
        },
        drop=set(GATEWAY_ENV),  # nothing from the caller's shell changes the measured config
    )
    label = f"gateway {backend}"
    argv = [sys.executable, "-m", "gateway"]
    ours = [] if upstream_pid is None else [upstream_pid]
    _serve(run, label, f"gateway-{backend}", argv, env, port, ours=ours)


def seed(run: Run) -> None:
    """The seed's Flask + pyplot path, loaded like the gateway."""
    port = free_port(HOST)
    argv = [
        sys.executable,
        "-m",
        "benchmarks.seed_flask",
        f"--model-dir={run.model['path']}",
        f"--host={HOST}",
        f"--port={port}",
    ]
    _serve(run, "seed flask+pyplot", "seed", argv, child_env({}), port, probe=DESIGN)


def _serve(
    run: Run,
    label: str,
    name: str,
    argv: list[str],
    env: dict[str, str],
    port: int,
    probe: str | None = None,
    ours: list[int] | None = None,
) -> None:
    """Spawn a server, time /healthz then /readyz (or ``probe`` for both), drive it at each
    concurrency, read its memory after the load, stop it."""
    server = Server(label)
    run.servers.append(server)
    started = time.perf_counter()
    proc = run.children.spawn(name, argv, env)
    try:
        server.healthz_s = wait_status(proc, HOST, port, probe or "/healthz", started, 120)
        server.ready_s = wait_status(proc, HOST, port, probe or "/readyz", started, 120)
        for c in run.args.concurrency:
            url = f"http://{HOST}:{port}{DESIGN}"
            run.rows.append(_load(run, label, url, c, [proc.pid, *(ours or [])]))
        server.rss_mb, server.peak_rss_mb = memory_mb(proc.pid)
        server.tensorflow = loads_tensorflow(proc.pid)
    except BenchError as exc:
        server.failure = f"{exc}\n--- {name} log tail ---\n{run.children.log_tail(name)}"
        print(f"{label}: {server.failure}", file=sys.stderr)
    finally:
        run.children.stop(name)


def _load(run: Run, label: str, url: str, concurrency: int, pids: list[int]) -> Row:
    """One loadgen run in its own process. ``pids``: the servers it loads, for the share of CPU
    that the rest of the machine used meanwhile."""
    argv = [
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        f"--url={url}",
        f"--concurrency={concurrency}",
        f"--seconds={run.args.seconds}",
        f"--warmup={run.args.warmup}",
        f"--timeout={run.args.request_timeout}",
    ]
    budget = run.args.warmup + run.args.seconds + 3 * run.args.request_timeout + 60
    busy0, wall0 = machine_busy_s(), time.perf_counter()
    ours0 = sum(map(process_cpu_s, pids)) + _own_cpu_s()
    out = _child_json(argv, timeout=budget)
    ours = sum(map(process_cpu_s, pids)) + _own_cpu_s() - ours0
    others = machine_busy_s() - busy0 - ours
    wall = (time.perf_counter() - wall0) * len(os.sched_getaffinity(0))
    kinds = [f"{k}: {v}" for k, v in out["error_kinds"].items()]
    note = ", ".join([f"{out['ok']} ok in {out['window_s']:.1f} s", *kinds])
    return Row(
        label,
        str(concurrency),
        out["sheets_per_s"],
        out["p50_ms"],
        out["p95_ms"],
        out["errors"],
        note,
        out["error_kinds"],
        max(0.0, 100 * others / wall),
    )


def _own_cpu_s() -> float:
    """CPU seconds of this process and of its children that have been waited for (loadgen)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _child_json(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run a short-lived child to completion and parse the JSON line it prints."""
    try:
        done = subprocess.run(
            argv,
            cwd=REPO_ROOT,
            env=child_env({}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )  # run() kills the child itself on a timeout or Ctrl-C
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(argv[2:4])} did not finish within {timeout:g}s") from None
    if done.returncode != 0:
        raise BenchError(
            f"{' '.join(argv[2:4])} failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@contextmanager
def standin(run: Run) -> Iterator[tuple[dict[str, str], int]]:
    """The TF Serving stand-in (tfserving_standin, started by its harness) over the same base
    path; yields the gateway's upstream settings and the stand-in's process id."""
    server = StandIn(
        model_name=MODEL_NAME,
        base_path=run.args.model_base_path,
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
        startup_timeout_s=180,
        host=HOST,
        own_session=True,
    )
    with server:
        assert server.process is not None
        yield (
            {"TFSERVING_REST_URL": server.rest_url, "TFSERVING_GRPC_TARGET": server.grpc_target},
            server.process.pid,
        )


def thin_gateways(run: Run, backends: list[str]) -> None:
    """The rest and grpc gateways, both against one stand-in (stopped afterwards)."""
    _step("TF Serving stand-in")
    run.notes.append(
        "rest/grpc upstream: tfserving_standin, a Python stand-in for TF Serving on the "
        "same CPUs (not the C++ tensorflow_model_server)"
    )
    try:
        with standin(run) as (upstream, pid):
            for b in backends:
                _step(f"gateway {b}")
                gateway(run, b, upstream, pid)
    except (BenchError, StandInError) as exc:
        for b in backends:
            run.servers.append(Server(f"gateway {b}", failure=f"stand-in failed: {exc}"))
        print(f"stand-in: {exc}", file=sys.stderr)


def _step(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what} ...", file=sys.stderr, flush=True)
