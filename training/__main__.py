"""Train the Fashion-MNIST GAN and publish the generator as the next TF Serving version.

    python -m training --profile quick --model-base-path models/fashion_gan

Profiles: seed (the original recipe, 50 epochs), smoke (seconds, for tests), quick (recognisable
garments in minutes on 2 CPU cores), default (the best recipe). ``--set key=value`` overrides one
field of the profile (unknown keys are errors). Killing the command and running it again goes on
from the last finished epoch in --run-dir.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from export.cli_options import add_release_options
from fashion_core import atomic
from fashion_core.cards import training_section
from fashion_core.dataset import DataError
from fashion_core.progress import ProgressFile
from fashion_core.quiet import quiet_tensorflow
from training.config import PROFILES, ConfigError, TrainConfig, make_config
from training.runs import RunError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m training",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--profile", choices=list(PROFILES), default="quick", help="training recipe")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config field, e.g. --set epochs=5 (repeatable)",
    )
    p.add_argument(
        "--model-base-path",
        type=Path,
        default=Path("models/fashion_gan"),
        help="TF Serving base path; the new version goes to <base>/<next integer>/",
    )
    add_release_options(p)
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="checkpoints, sample sheets and state.json (default: runs/<profile>)",
    )
    p.add_argument("--fresh", action="store_true", help="discard an unfinished run in --run-dir")
    p.add_argument(
        "--keras-out",
        type=Path,
        default=Path("modelos/moda_generador.keras"),
        help="where the generator is also saved as a .keras file",
    )
    p.add_argument("--no-publish", action="store_true", help="train only; publish nothing")
    p.add_argument("--quiet", action="store_true", help="no per-step progress bar")
    p.add_argument(
        "--progress-file",
        type=Path,
        default=None,
        help="write progress as JSON here (epoch, step, losses, images/s, published version)",
    )
    return p.parse_args(argv)


def export_elsewhere(args: argparse.Namespace, cfg: TrainConfig, run_dir: Path) -> int:
    """Publish through ``python -m export`` under TensorFlow: a run trained under another
    backend saved its generator as .keras, which any backend loads; only TensorFlow writes
    SavedModels."""
    cmd = [
        sys.executable, "-m", "export", "--generator", str(args.keras_out),
        "--model-base-path", str(args.model_base_path), "--run-dir", str(run_dir),
        "--eval-samples", str(cfg.eval_samples), "--model-name", args.model_name,
        "--classifier", str(args.classifier),
    ]  # fmt: skip
    if args.data_dir:
        cmd += ["--data-dir", str(args.data_dir)]
    if args.progress_file:
        cmd += ["--progress-file", str(args.progress_file)]
    print(f"Publicando con TensorFlow: {shlex.join(cmd[1:])}", flush=True)
    return subprocess.run(cmd, env={**os.environ, "KERAS_BACKEND": "tensorflow"}).returncode


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_tensorflow()  # no CUDA probing noise on a CPU machine
    try:
        cfg = make_config(args.profile, args.overrides)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2

    def log(line: str) -> None:
        print(line, flush=True)

    from fashion_core.dataset import load

    try:
        data = load(args.data_dir)
    except DataError as exc:
        print(exc, file=sys.stderr)
        return 2
    # TensorFlow is imported only now, so --help, config and data errors answer at once
    import keras

    from training.checkpoint import CheckpointError
    from training.devices import DeviceError
    from training.train import train

    run_dir = args.run_dir or Path("runs") / cfg.profile
    log(f"Perfil {cfg.profile}: {cfg.epochs} épocas, lote {cfg.batch_size}, datos {data.source}")
    progress = ProgressFile(args.progress_file)
    started = time.perf_counter()
    try:
        result = train(
            cfg,
            data,
            run_dir,
            log=log,
            fresh=args.fresh,
            verbose=0 if args.quiet else 1,
            progress=progress,
        )
    except (RunError, DeviceError, CheckpointError) as exc:
        print(exc, file=sys.stderr)
        return 2
    log(f"Entrenamiento terminado en {time.perf_counter() - started:.1f}s")
    args.keras_out.parent.mkdir(parents=True, exist_ok=True)
    tmp_keras = args.keras_out.with_name(f".{args.keras_out.stem}.tmp.keras")
    result.generator.save(tmp_keras)
    atomic.replace(tmp_keras, args.keras_out)
    if args.no_publish:
        return 0
    if keras.backend.backend() != "tensorflow":
        return export_elsewhere(args, cfg, run_dir)
    from export.publish import PublishError
    from export.release import record_in_run, release

    training = training_section(result.state, run_dir)
    try:
        published = release(
            result.generator,
            args.model_base_path,
            data,
            args.classifier,
            cfg.eval_samples,
            training,
            args.model_name,
            log=log,
            on_phase=lambda phase: progress.update(force=True, phase=phase),
        )
    except (PublishError, OSError) as exc:
        # the trained run stays in --run-dir: the same command publishes it without retraining
        print(f"Publishing failed, the run is kept in {run_dir}: {exc}", file=sys.stderr)
        return 1
    record_in_run(run_dir, published.version)
    progress.update(force=True, phase="done", version=published.version)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
