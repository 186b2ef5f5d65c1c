"""Train the Fashion-MNIST GAN and publish the generator as the next TF Serving version.

    python -m training --profile quick --model-base-path models/fashion_gan

Profiles: seed (the original recipe, 50 epochs), smoke (seconds, for tests), quick (recognisable
garments in minutes on 2 CPU cores), default (the best recipe). ``--set key=value`` overrides one
field of the profile (unknown keys are errors). Killing the command and running it again goes on
from the last finished epoch in --run-dir. ``--set conditional=true`` trains the class-conditional
model (designs on request by category), published under its own name, base path, run
folder and .keras file unless the options name others:

    python -m training --profile quick --set conditional=true    # to models/fashion_gan_cond
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from export.cli_options import add_release_options, model_name
from fashion_core.cards import training_section
from fashion_core.contract import COND_MODEL_NAME
from fashion_core.dataset import DataError
from fashion_core.progress import ProgressFile
from fashion_core.quiet import quiet_tensorflow
from training.config import PROFILES, ConfigError, TrainConfig, make_config
from training.publishing import (
    PublishFailed,
    export_elsewhere,
    progressive_job,
    publish_here,
    save_keras,
)
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
        default=None,
        help="TF Serving base path; the new version goes to <base>/<next integer>/ (default: "
        "models/fashion_gan, models/fashion_gan_cond for a conditional run)",
    )
    add_release_options(p)
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="checkpoints, sample sheets and state.json (default: runs/<profile>, "
        "runs/<profile>_cond for a conditional run)",
    )
    p.add_argument("--fresh", action="store_true", help="discard an unfinished run in --run-dir")
    p.add_argument(
        "--keras-out",
        type=Path,
        default=None,
        help="where the generator is also saved as a .keras file (default: "
        "modelos/moda_generador.keras, modelos/moda_generador_cond.keras for a conditional run)",
    )
    p.add_argument("--no-publish", action="store_true", help="train only; publish nothing")
    p.add_argument(
        "--cond-model-base-path",
        type=Path,
        default=None,
        help="a category_from_z profile (quick) publishes its conditional networks as the "
        "class-conditional model too, here (default: fashion_gan_cond beside --model-base-path)",
    )
    p.add_argument(
        "--cond-model-name",
        default=COND_MODEL_NAME,
        help="the class-conditional model's name in its warm-up requests and models.config",
    )
    p.add_argument(
        "--no-cond-model",
        action="store_true",
        help="publish the first model only, even from a category_from_z profile",
    )
    p.add_argument(
        "--model-config-file",
        type=Path,
        default=os.environ.get("MODEL_CONFIG_FILE") or None,
        help="TF Serving's models.config: a progressive job never prunes the versions it "
        "names (default: $MODEL_CONFIG_FILE)",
    )
    p.add_argument("--quiet", action="store_true", help="no per-step progress bar")
    p.add_argument(
        "--progress-file",
        type=Path,
        default=None,
        help="write progress as JSON here (epoch, step, losses, images/s, published version)",
    )
    return p.parse_args(argv)


def fill_defaults(args: argparse.Namespace, cfg: TrainConfig) -> Path:
    """Fill in the options left to their defaults; returns the run folder. A conditional run's
    are its own: never a version of another signature in the first model's base path, nor its
    generator over the first one's .keras file, nor its run in the first one's folder."""
    kind = "_cond" if cfg.conditional else ""
    args.model_name = model_name(args, cfg.conditional)
    args.model_base_path = args.model_base_path or Path("models") / f"fashion_gan{kind}"
    args.keras_out = args.keras_out or Path(f"modelos/moda_generador{kind}.keras")
    if args.no_cond_model:
        args.cond_model_base_path = None
    elif args.cond_model_base_path is None:
        args.cond_model_base_path = args.model_base_path.parent / "fashion_gan_cond"
    return Path(args.run_dir or Path("runs") / f"{cfg.profile}{kind}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_tensorflow()  # no CUDA probing noise on a CPU machine
    try:
        cfg = make_config(args.profile, args.overrides)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    run_dir = fill_defaults(args, cfg)

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
    from training.schedule import BudgetOnly
    from training.train import train

    source = data.folder or data.source
    log(f"Perfil {cfg.profile}: {cfg.epochs} épocas, lote {cfg.batch_size}, datos {source}")
    progress = ProgressFile(args.progress_file)
    driver: Any = None
    if cfg.time_budget_s:  # --no-publish: train to the budget, publish and prune nothing
        driver = (
            BudgetOnly(cfg)
            if args.no_publish
            else progressive_job(args, cfg, data, run_dir, log, progress)
        )
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
            driver=driver,
        )
    except (RunError, DeviceError, CheckpointError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except PublishFailed as exc:
        print(f"Publishing failed, the run is kept in {run_dir}: {exc}", file=sys.stderr)
        return 1
    log(f"Entrenamiento terminado en {time.perf_counter() - started:.1f}s")
    save_keras(result.generator, args.keras_out)
    if driver is not None and not args.no_publish:  # published along the way
        progress.update(force=True, phase="done", improving=False, next_candidate_at=None)
        return 0
    if args.no_publish:
        return 0
    if keras.backend.backend() != "tensorflow":
        return export_elsewhere(args, cfg, run_dir)
    from export.release import record_in_run

    try:
        version = publish_here(
            args,
            cfg,
            data,
            result.generator,
            training_section(result.state, run_dir),
            None,
            progress,
        )
    except PublishFailed as exc:
        # the trained run stays in --run-dir: the same command publishes it without retraining
        print(f"Publishing failed, the run is kept in {run_dir}: {exc}", file=sys.stderr)
        return 1
    record_in_run(run_dir, version)
    progress.update(force=True, phase="done", version=version)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
