"""Serving benchmark: model alone, the gateway with each backend, and the seed's Flask path, in
one run on this machine, with the issue's targets checked at the end.

    python -m benchmarks.serving                          # everything, >= 5 s per row
    python -m benchmarks.serving --seconds 2 --json bench.json
    python -m benchmarks.serving --backends embedded,seed --concurrency 1,32
    python -m benchmarks.serving --model-base-path models/fashion_gan   # a trained model

Steps, one after another so that they never compete for the CPUs:

1. model: publish a version with random weights when the base path has none (default: a temp
   dir), then call its SavedModel alone, at batch 9 and batched, without and with PNG rendering
   (benchmarks.model_only, in a child process: this one never imports TensorFlow);
2. ``python -m gateway`` with each backend (rest and grpc against the TF Serving stand-in,
   tests.standin_harness): time to /healthz and /readyz, then GET /api/generar-diseno at each
   concurrency (benchmarks.loadgen, its own process), then resident memory and whether
   TensorFlow is mapped into the gateway;
3. the seed's path (benchmarks.seed_flask) with the same load.

Each load row is a closed loop (every client sends its next request when its answer arrives),
measured for at least ``--seconds`` after ``--warmup`` and after every client had one answer,
and until every client had one answer inside the window (see benchmarks.loadgen). The load
average at the start is printed: on a shared machine other users' work moves every number.
Every child is stopped when the run ends, also on Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks.procs import (
    REPO_ROOT,
    BenchError,
    Children,
    Machine,
    child_env,
    free_port,
    loads_tensorflow,
    machine,
    machine_busy_s,
    memory_mb,
    process_cpu_s,
    wait_status,
)
from gateway.settings import ENV as GATEWAY_ENV

HOST = "127.0.0.1"
MODEL_NAME = "fashion_gan"
DESIGN = "/api/generar-diseno"
BACKENDS = ("embedded", "rest", "grpc", "seed")
# targets from the issue
MIN_CEILING_SHARE = 0.70
MIN_SEED_FACTOR = 20.0
MAX_EXTRA_P50_MS = 5.0
MAX_REST_RSS_MB = 150.0
MAX_REST_READY_S = 2.0
NOISY_OTHERS_PCT = 10.0  # others' CPU share above which a row's speed is not trustworthy


@dataclass
class Row:
    path: str
    concurrency: str
    sheets_per_s: float | None
    p50_ms: float | None
    p95_ms: float | None
    errors: int | None
    note: str = ""
    error_kinds: dict[str, int] = field(default_factory=dict)
    # CPU the rest of the machine (other users) used meanwhile, % of all CPUs: the noise gauge
    others_pct: float | None = None


@dataclass
class Server:
    """Start and memory numbers of one server process."""

    name: str
    healthz_s: float | None = None
    ready_s: float | None = None
    rss_mb: float | None = None
    peak_rss_mb: float | None = None
    tensorflow: bool | None = None
    failure: str = ""


@dataclass
class Check:
    name: str
    value: str
    target: str
    ok: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return "n/a" if self.ok is None else ("PASS" if self.ok else "FAIL")


@dataclass
class Run:
    args: argparse.Namespace
    work: Path
    children: Children
    rows: list[Row] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def row(self, path: str, concurrency: int | str) -> Row | None:
        for r in self.rows:
            if r.path == path and r.concurrency == str(concurrency):
                return r
        return None


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
    """The TF Serving stand-in over the same base path; yields the gateway's upstream settings
    and the stand-in's process id."""
    from tests.standin_harness import StandIn

    with StandIn(
        model_name=MODEL_NAME,
        base_path=run.args.model_base_path,
        env={"TF_CPP_MIN_LOG_LEVEL": "3"},
    ) as server:
        assert server.process is not None
        upstream = {
            "TFSERVING_REST_URL": server.rest_url,
            "TFSERVING_GRPC_TARGET": server.grpc_target,
        }
        yield upstream, server.process.pid


# --- verdicts ----------------------------------------------------------------------------------
def checks(run: Run) -> list[Check]:
    """The issue's targets, from the numbers of this run."""
    top = max(run.args.concurrency)
    emb_top, emb_1 = run.row("gateway embedded", top), run.row("gateway embedded", 1)
    ceiling = run.row(f"model only b={_batched(run)}", "-")
    solo = run.row("model only b=9", "-")
    seeds = [r for r in run.rows if r.path == "seed flask+pyplot" and r.sheets_per_s is not None]
    seed_top = run.row("seed flask+pyplot", top)
    out: list[Check] = []

    def rate(r: Row | None) -> float | None:
        return None if r is None else r.sheets_per_s

    a, b = rate(emb_top), rate(ceiling)
    out.append(
        Check(
            f"embedded c={top} / model-only batched ceiling",
            _pct(a, b),
            f">= {MIN_CEILING_SHARE:.0%}",
            None if a is None or not b else a / b >= MIN_CEILING_SHARE,
        )
    )
    for what, s in (
        (f"seed c={top}", rate(seed_top)),
        ("seed best", max((r.sheets_per_s or 0.0 for r in seeds), default=None)),
    ):
        out.append(
            Check(
                f"embedded c={top} / {what}",
                "-" if a is None or not s else f"{a / s:.1f}x  ({a:.1f} / {s:.2f} sheets/s)",
                f">= {MIN_SEED_FACTOR:g}x",
                None if a is None or not s else a / s >= MIN_SEED_FACTOR,
            )
        )
    errs = None if emb_top is None else emb_top.errors
    out.append(
        Check(f"embedded c={top} errors", _txt(errs), "0", None if errs is None else errs == 0)
    )
    p1 = None if emb_1 is None else emb_1.p50_ms
    p0 = None if solo is None else solo.p50_ms
    extra = None if p1 is None or p0 is None else p1 - p0
    out.append(
        Check(
            "embedded c=1 p50 - model-only b=9 p50",
            "-" if extra is None else f"{extra:+.1f} ms  ({p1:.1f} - {p0:.1f})",
            f"<= {MAX_EXTRA_P50_MS:g} ms",
            None if extra is None else extra <= MAX_EXTRA_P50_MS,
        )
    )
    rest = next((s for s in run.servers if s.name == "gateway rest"), None)
    rss = None if rest is None else rest.rss_mb
    ready = None if rest is None else rest.ready_s
    tf_in = None if rest is None else rest.tensorflow
    out += [
        Check(
            "rest gateway RSS after load",
            "-" if rss is None else f"{rss:.1f} MB",
            f"< {MAX_REST_RSS_MB:g} MB",
            None if rss is None else rss < MAX_REST_RSS_MB,
        ),
        Check(
            "rest gateway spawn -> /readyz 200",
            "-" if ready is None else f"{ready:.2f} s",
            f"<= {MAX_REST_READY_S:g} s",
            None if ready is None else ready <= MAX_REST_READY_S,
        ),
        Check(
            "rest gateway without TensorFlow",
            "-" if tf_in is None else ("TF mapped" if tf_in else "no TF mapped"),
            "no TF",
            None if tf_in is None else not tf_in,
        ),
    ]
    return out


def _batched(run: Run) -> int:
    images: int = run.args.batch_images
    return max(9, images // 9 * 9)


def _pct(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.0%}  ({a:.1f} / {b:.1f} sheets/s)"


def _txt(v: object) -> str:
    return "-" if v is None else str(v)


# --- output ------------------------------------------------------------------------------------
def table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    """Plain aligned text; columns in ``right`` are right-aligned."""
    widths = [max(len(x) for x in col) for col in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _num(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def report(run: Run, info: Machine, verdicts: list[Check]) -> str:
    """The whole result as plain text: context lines, the rows, the processes, the targets."""
    load = " ".join(f"{x:.2f}" for x in info.loadavg)
    parts = [
        f"machine: nproc {info.nproc} (cpu_count {info.cpu_count}), {info.cpu_model}, "
        f"{info.mem_gb} GB, Python {info.python}, load average at start {load}, at end "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    ]
    if run.model:
        made = "published now, random weights" if run.model["published"] else "existing"
        parts.append(f"model: {run.model['path']} (version {run.model['version']}, {made})")
    parts.append(
        f"load: closed loop, {run.args.seconds:g} s measured after {run.args.warmup:g} s warm-up "
        f"per row; GET {DESIGN} (unseeded 3x3); a success is a 200 with a PNG body"
    )
    parts += run.notes
    rows = [
        [
            r.path,
            r.concurrency,
            _num(r.sheets_per_s, 2),
            _num(r.p50_ms),
            _num(r.p95_ms),
            _txt(r.errors),
            _num(r.others_pct, 0),
            r.note,
        ]
        for r in run.rows
    ]
    parts += [
        "",
        table(
            ["path", "conc", "sheets/s", "p50 ms", "p95 ms", "errors", "others %", "note"],
            rows,
            {1, 2, 3, 4, 5, 6},
        ),
        "(others %: CPU that processes outside this benchmark used during the row, as a share "
        "of all CPUs; above ~10 % the row is slowed by other users' work)",
    ]
    if run.servers:
        srows = [
            [
                s.name,
                _num(s.healthz_s, 2),
                _num(s.ready_s, 2),
                _num(s.rss_mb),
                _num(s.peak_rss_mb),
                "-" if s.tensorflow is None else ("yes" if s.tensorflow else "no"),
                "FAILED: " + s.failure.splitlines()[0] if s.failure else "",
            ]
            for s in run.servers
        ]
        heads = ["process", "up s", "ready s", "RSS MB", "peak MB", "TF mapped", ""]
        parts += ["", table(heads, srows, {1, 2, 3, 4})]
        parts.append(
            "(up: spawn -> first 200 on /healthz; ready: -> /readyz 200; the seed has neither, "
            f"both are its first 200 on {DESIGN}; RSS read after the load rows)"
        )
    vrows = [[c.name, c.value, c.target, c.verdict] for c in verdicts]
    parts += ["", table(["target", "measured", "wanted", "verdict"], vrows, set())]
    noisy = [r.others_pct for r in run.rows if r.others_pct is not None]
    if noisy and max(noisy) > NOISY_OTHERS_PCT:
        parts.append(
            f"warning: other processes used up to {max(noisy):.0f} % of the CPUs during this run "
            f"(median {statistics.median(noisy):.0f} %); the speed verdicts compare rows measured "
            "at different moments, so rerun on a quiet machine before trusting them"
        )
    return "\n".join(parts)


# --- main --------------------------------------------------------------------------------------
def _levels(text: str) -> list[int]:
    try:
        levels = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected e.g. 1,8,32, got {text!r}") from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError(f"concurrency levels must be >= 1, got {text!r}")
    return levels


def _backends(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in BACKENDS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(BACKENDS)}, got {text!r}")
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.serving",
        description="Model alone, gateway per backend and the seed's Flask path, on this machine.",
    )
    p.add_argument("--seconds", type=float, default=5.0, help="measured time per row")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured lead-in per load row")
    p.add_argument("--concurrency", type=_levels, default=[1, 8, 32], help="e.g. 1,8,32")
    p.add_argument(
        "--backends", type=_backends, default=list(BACKENDS), help="embedded,rest,grpc,seed"
    )
    p.add_argument("--model-base-path", type=Path, help="default: a temp dir, removed after")
    p.add_argument("--batch-images", type=int, default=288, help="model-only batched call size")
    p.add_argument("--request-timeout", type=float, default=30.0, help="per request, seconds")
    p.add_argument("--gateway-log-level", default="info", help="GATEWAY_LOG_LEVEL of the gateway")
    p.add_argument("--json", type=Path, help="also write every number to this file")
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0:
        p.error("--seconds must be > 0 and --warmup >= 0")
    return args


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop children


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C raises KeyboardInterrupt even where the caller started us with SIGINT ignored
    # (a background job); SIGTERM and SIGHUP unwind the same way: every child gets stopped
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    own_models = args.model_base_path is None
    if own_models:
        args.model_base_path = work / "models" / MODEL_NAME
    args.model_base_path = args.model_base_path.resolve()
    args.model_base_path.mkdir(parents=True, exist_ok=True)
    print(f"benchmarks.serving: child logs in {work}", file=sys.stderr)
    run = Run(args, work, Children(work))
    try:
        with run.children:  # leaving it stops every child still running
            _step("model alone")
            model_only(run)
            if "embedded" in args.backends:
                _step("gateway embedded")
                gateway(run, "embedded", {})
                _step("model alone, second pass")
                model_only(run)
            thin = [b for b in ("rest", "grpc") if b in args.backends]
            if thin:
                thin_gateways(run, thin)
            if "seed" in args.backends:
                _step("seed flask+pyplot")
                run.notes.append(
                    "seed generator: the same SavedModel's serving_default signature, loaded "
                    "once; matplotlib Agg, plt.subplots(3,3), Flask dev server threaded=True"
                )
                seed(run)
        verdicts = checks(run)
        print(report(run, info, verdicts))
        if args.json:
            doc = {
                "machine": asdict(info),
                "settings": {k: str(v) for k, v in vars(args).items()},
                "model": run.model,
                "rows": [asdict(r) for r in run.rows],
                "servers": [asdict(s) for s in run.servers],
                "checks": [{**asdict(c), "verdict": c.verdict} for c in verdicts],
                "notes": run.notes,
            }
            args.json.write_text(json.dumps(doc, indent=2) + "\n")
        return 1 if any(s.failure for s in run.servers) else 0
    except KeyboardInterrupt:
        print("interrupted: every child stopped", file=sys.stderr)
        return 130
    finally:
        if own_models:
            shutil.rmtree(work / "models", ignore_errors=True)
        if any(s.failure for s in run.servers):
            print(f"benchmarks.serving: logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def thin_gateways(run: Run, backends: list[str]) -> None:
    """The rest and grpc gateways, both against one stand-in (stopped afterwards)."""
    from tests.standin_harness import StandInError

    _step("TF Serving stand-in")
    run.notes.append(
        "rest/grpc upstream: tests.tfserving_standin, a Python stand-in for TF Serving on the "
        "same CPUs (not the C++ tensorflow_model_server)"
    )
    try:
        with standin(run) as (upstream, pid):
            for b in backends:
                _step(f"gateway {b}")
                gateway(run, b, upstream, pid)
    except StandInError as exc:
        for b in backends:
            run.servers.append(Server(f"gateway {b}", failure=f"stand-in failed: {exc}"))
        print(f"stand-in: {exc}", file=sys.stderr)


def _step(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what} ...", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
