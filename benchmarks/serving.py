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
   tfserving_standin run as a command): time to /healthz and /readyz, then GET
   /api/generar-diseno at each concurrency (benchmarks.loadgen, its own process), then
   resident memory and whether TensorFlow is mapped into the gateway;
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
import shutil
import signal
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from types import FrameType

from benchmarks.procs import (
    machine,
)
from benchmarks.serving_report import (
    BACKENDS,
    MODEL_NAME,
    Run,
    checks,
    report,
)
from benchmarks.serving_steps import _step, gateway, model_only, seed, thin_gateways
from tfserving_standin.children import Children


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


if __name__ == "__main__":
    raise SystemExit(main())
