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
from typing import TYPE_CHECKING, Any

from fashion_core import atomic
from fashion_core.progress import ProgressFile
from training.config import TrainConfig

if TYPE_CHECKING:
    from training.companion import Publish


def export_command(
    args: argparse.Namespace,
    cfg: TrainConfig,
    generator: Path,
    run_dir: Path,
    target: tuple[Path, str] | None = None,
) -> list[str]:
    """``python -m export`` for a generator saved as .keras, with this command's options;
    ``target``: (base path, model name) other than this command's (the companion model)."""
    base, name = target or (args.model_base_path, args.model_name)
    cmd = [
        sys.executable, "-m", "export", "--generator", str(generator),
        "--model-base-path", str(base), "--run-dir", str(run_dir),
        "--eval-samples", str(cfg.eval_samples), "--model-name", name,
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
    target: tuple[Path, str] | None = None,
) -> int:
    """Measure (unless ``quality`` is given) and publish under TensorFlow; the version.
    ``target``: (base path, model name) other than this command's (the companion model)."""
    from export.publish import PublishError
    from export.release import release

    base, name = target or (args.model_base_path, args.model_name)
    try:
        published = release(
            generator,
            base,
            data,
            args.classifier,
            cfg.eval_samples,
            training,
            name,
            log=lambda line: print(line, flush=True),
            on_phase=lambda phase: progress.update(force=True, phase=phase),
            quality=quality,
        )
    except (PublishError, OSError) as exc:
        raise PublishFailed(str(exc)) from None
    return published.version


def publish_in_subprocess(
    args: argparse.Namespace,
    cfg: TrainConfig,
    generator: Any,
    run_dir: Path,
    target: tuple[Path, str] | None = None,
) -> int:
    """Publish a generator trained under another backend through ``python -m export``."""
    keras_file = run_dir / "candidate.keras"
    save_keras(generator, keras_file)
    cmd = export_command(args, cfg, keras_file, run_dir, target)
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
    from training.companion import Companion
    from training.follow import config_lock, follow_version
    from training.progressive import ProgressiveJob
    from training.runs import save_state

    def publisher(target: tuple[Path, str] | None) -> Publish:
        def publish(generator: Any, quality: dict[str, Any], training: dict[str, Any]) -> int:
            if keras.backend.backend() != "tensorflow":
                return publish_in_subprocess(args, cfg, generator, run_dir, target)
            return publish_here(args, cfg, data, generator, training, quality, progress, target)

        return publish

    # the labels file named, else the one a rollout keeps beside the base path by default
    beside = args.model_base_path.parent / "models.config"
    labels = args.model_config_file or (beside if beside.exists() else None)

    def pruner(base: Path, name: str) -> Callable[[], list[int]]:
        def prune_old() -> list[int]:
            if labels is None:
                return prune(base, cfg.keep_versions, set(), log)
            # under the rollout's lock: a rollout must not label a version being removed
            with config_lock(labels) as held:
                if not held:
                    return []  # pruned after the next version instead
                return prune(base, cfg.keep_versions, protected_versions(labels, name), log)

        return prune_old

    def follow(name: str, base: Path, version: int, state: dict[str, Any]) -> None:
        # the models.config named (the job runner passes TF Serving's, or the gateway's
        # MODEL_CONFIG_FILE): a specific policy there loads only what it lists
        if args.model_config_file is not None:
            follow_version(args.model_config_file, name, base, version, state, log)

    companion = None
    if cfg.category_from_z and not cfg.conditional and args.cond_model_base_path is not None:
        target = (args.cond_model_base_path, args.cond_model_name)
        companion = Companion(
            args.cond_model_name,
            args.cond_model_base_path,
            publisher(target),
            pruner(*target),
        )
        log(f"También se publica {args.cond_model_name} en {args.cond_model_base_path}.")

    return ProgressiveJob(
        cfg,
        data=data,
        run_dir=run_dir,
        base_path=args.model_base_path,
        classifier_path=args.classifier,
        publish=publisher(None),
        prune=pruner(args.model_base_path, args.model_name),
        log=log,
        progress=progress,
        data_dir=args.data_dir,
        model_name=args.model_name,
        follow=follow,
        companion=companion,
        save=lambda state: save_state(run_dir, state),
    )
