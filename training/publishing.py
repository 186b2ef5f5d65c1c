"""How ``python -m training`` publishes what it trains: in this process under TensorFlow, or
through ``python -m export`` (TensorFlow) for a run trained under another backend, once at the
end of a run or along the way for a progressive job (``training.progressive``)."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fashion_core import atomic
from fashion_core.progress import ProgressFile
from training.config import TrainConfig


def export_command(
    args: argparse.Namespace, cfg: TrainConfig, generator: Path, run_dir: Path
) -> list[str]:
    """``python -m export`` for a generator saved as .keras, with this command's options."""
    cmd = [
        sys.executable, "-m", "export", "--generator", str(generator),
        "--model-base-path", str(args.model_base_path), "--run-dir", str(run_dir),
        "--eval-samples", str(cfg.eval_samples), "--model-name", args.model_name,
        "--classifier", str(args.classifier),
    ]  # fmt: skip
    if args.data_dir:
        cmd += ["--data-dir", str(args.data_dir)]
    return cmd


def export_elsewhere(args: argparse.Namespace, cfg: TrainConfig, run_dir: Path) -> int:
    """Publish through ``python -m export`` under TensorFlow: a run trained under another
    backend saved its generator as .keras, which any backend loads; only TensorFlow writes
    SavedModels."""
    cmd = export_command(args, cfg, args.keras_out, run_dir)
    if args.progress_file:
        cmd += ["--progress-file", str(args.progress_file)]
    print(f"Publicando con TensorFlow: {shlex.join(cmd[1:])}", flush=True)
    return subprocess.run(cmd, env={**os.environ, "KERAS_BACKEND": "tensorflow"}).returncode


class PublishFailed(Exception):
    """A version could not be published (message: one sentence)."""


def save_keras(generator: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    generator.save(tmp)
    atomic.replace(tmp, path)


def publish_here(
    args: argparse.Namespace,
    cfg: TrainConfig,
    data: Any,
    generator: Any,
    training: dict[str, Any],
    quality: dict[str, Any] | None,
    progress: ProgressFile,
) -> int:
    """Measure (unless ``quality`` is given) and publish under TensorFlow; the version."""
    from export.publish import PublishError
    from export.release import release

    try:
        published = release(
            generator,
            args.model_base_path,
            data,
            args.classifier,
            cfg.eval_samples,
            training,
            args.model_name,
            log=lambda line: print(line, flush=True),
            on_phase=lambda phase: progress.update(force=True, phase=phase),
            quality=quality,
        )
    except (PublishError, OSError) as exc:
        raise PublishFailed(str(exc)) from None
    return published.version


def publish_in_subprocess(
    args: argparse.Namespace, cfg: TrainConfig, generator: Any, run_dir: Path
) -> int:
    """Publish a generator trained under another backend through ``python -m export``."""
    keras_file = run_dir / "candidate.keras"
    save_keras(generator, keras_file)
    cmd = export_command(args, cfg, keras_file, run_dir)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    print(proc.stdout, end="", flush=True)
    found = re.search(r"Publicada la versión (\d+)", proc.stdout)
    if proc.returncode or not found:
        raise PublishFailed((proc.stderr.strip().splitlines() or ["export failed"])[-1])
    return int(found.group(1))


def progressive_job(
    args: argparse.Namespace,
    cfg: TrainConfig,
    data: Any,
    run_dir: Path,
    log: Callable[[str], None],
    progress: ProgressFile,
) -> Any:
    """The driver of a profile with a time budget: publishes along the way, prunes old ones."""
    import keras

    from export.prune import protected_versions, prune
    from training.progressive import ProgressiveJob

    def publish(generator: Any, quality: dict[str, Any], training: dict[str, Any]) -> int:
        if keras.backend.backend() != "tensorflow":
            return publish_in_subprocess(args, cfg, generator, run_dir)
        return publish_here(args, cfg, data, generator, training, quality, progress)

    # the labels file named, else the one a rollout keeps beside the base path by default
    beside = args.model_base_path.parent / "models.config"
    labels = args.model_config_file or (beside if beside.exists() else None)

    def prune_old() -> list[int]:
        protected = protected_versions(labels, args.model_name)
        return prune(args.model_base_path, cfg.keep_versions, protected, log)

    return ProgressiveJob(
        cfg,
        data=data,
        run_dir=run_dir,
        base_path=args.model_base_path,
        classifier_path=args.classifier,
        publish=publish,
        prune=prune_old,
        log=log,
        progress=progress,
        data_dir=args.data_dir,
    )
