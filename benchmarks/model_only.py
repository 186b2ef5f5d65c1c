"""The model alone, in-process: the ceiling every serving path is measured against.

    python -m benchmarks.model_only --model-base-path /tmp/m --seconds 5

Publishes a version first when the base path has none (random weights: speed does not depend on
them), then calls the newest version's ``serving_default`` signature back to back, at one sheet
per call (batch 9) and batched (GATEWAY_MAX_BATCH_IMAGES images per call), each once without and
once with the gateway's PNG rendering. Prints one JSON object on stdout; benchmarks.serving runs
this in a child process so that the orchestrator never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.procs import machine_busy_s
from fashion_core.versions import list_versions, version_dir

SHEET = 9  # images in the default 3x3 sheet


def ensure_version(base_path: Path) -> tuple[int, bool]:
    """(newest version, whether this call published it)."""
    versions = list_versions(base_path)
    if versions:
        return versions[-1], False
    from export.publish import publish
    from training.model import build_generator

    generator = build_generator()  # untrained: the benchmark measures speed, not looks
    return publish(generator, base_path, card={}).version, True


def measure(
    fn: Any, latent: int, images: int, seconds: float, render: bool, warmup: int = 3
) -> dict[str, Any]:
    """Back-to-back calls of ``images`` images for ``seconds``: sheets/s and call latency."""
    import tensorflow as tf

    from fashion_core.contract import INPUT, OUTPUT
    from fashion_core.render import sheet_png

    rng = np.random.default_rng(0)
    sheets = images // SHEET

    def call() -> None:
        z = rng.standard_normal((images, latent), dtype=np.float32)
        out = fn(**{INPUT: tf.constant(z)})[OUTPUT].numpy()  # (images, 28, 28, 1)
        if render:
            for i in range(sheets):
                sheet_png(out[i * SHEET : (i + 1) * SHEET], 3, 3)

    for _ in range(warmup):
        call()
    latencies: list[float] = []
    busy0, own0 = machine_busy_s(), time.process_time()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(latencies) < 3:
        t = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    others = machine_busy_s() - busy0 - (time.process_time() - own0)
    latencies.sort()
    return {
        "images_per_call": images,
        "sheets_per_call": sheets,
        "render": render,
        "calls": len(latencies),
        "sheets_per_s": sheets * len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        # CPU used by everything else on the machine meanwhile, as a share of all its CPUs
        "others_pct": max(0.0, 100 * others / (elapsed * len(os.sched_getaffinity(0)))),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-base-path", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--batch-images", type=int, default=288, help="images per batched call")
    args = parser.parse_args(argv)

    version, published = ensure_version(args.model_base_path)
    path = version_dir(args.model_base_path, version)
    import tensorflow as tf

    from fashion_core.contract import INPUT, SIGNATURE

    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures[SIGNATURE]
    latent = int(fn.structured_input_signature[1][INPUT].shape[-1])
    batched = max(SHEET, args.batch_images // SHEET * SHEET)  # whole sheets only
    rows = [
        measure(fn, latent, images, args.seconds, render)
        for render in (False, True)
        for images in (SHEET, batched)
    ]
    result = {"version": version, "published": published, "path": str(path), "rows": rows}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
