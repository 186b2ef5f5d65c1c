"""Publish an existing generator as the next TF Serving version.

    python -m export --generator modelos/moda_generador.keras --model-base-path models/fashion_gan

Measures the quality figures (needs Fashion-MNIST: --data-dir / FASHION_MNIST_DIR, else Keras'
downloader) unless --no-eval, then writes, verifies and renames the version atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from export.cli_options import add_release_options, model_name
from fashion_core.dataset import DataError
from fashion_core.quiet import quiet_tensorflow


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__.split("\n\n")[0])
    p.add_argument("--generator", type=Path, required=True, help="a generator saved as .keras")
    p.add_argument(
        "--model-base-path",
        type=Path,
        required=True,
        help="TF Serving base path; the version goes to <base>/<next integer>/",
    )
    add_release_options(p)
    p.add_argument(
        "--eval-samples", type=int, default=10000, help="generated images for the figures"
    )
    p.add_argument("--no-eval", action="store_true", help="publish without quality figures")
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="training run folder: its state.json goes into the model card, and it is marked "
        "published",
    )
    p.add_argument(
        "--progress-file",
        type=Path,
        default=None,
        help="write the phase and the published version here as JSON (a training job's file)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_tensorflow()  # no CUDA probing noise on a CPU machine
    if not args.generator.is_file():
        print(
            f"{args.generator} does not exist: pass a generator saved as .keras.", file=sys.stderr
        )
        return 2
    import keras

    from export.release import record_in_run, release
    from export.signature import is_conditional
    from export.zcategory import CategoryFromZ  # noqa: F401  (a .keras file may hold one)
    from fashion_core.cards import training_section
    from fashion_core.dataset import load
    from fashion_core.progress import ProgressFile

    try:
        generator = keras.models.load_model(args.generator, compile=False)
        data = None if args.no_eval else load(args.data_dir)
    except DataError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"{args.generator} is not a loadable Keras model ({exc}).", file=sys.stderr)
        return 2
    args.model_name = model_name(args, is_conditional(generator))
    training = {}
    if args.run_dir and (args.run_dir / "state.json").is_file():
        training = training_section(
            json.loads((args.run_dir / "state.json").read_text()), args.run_dir
        )
    progress = ProgressFile(args.progress_file, carry_on=True)
    published = release(
        generator,
        args.model_base_path,
        data,
        args.classifier,
        args.eval_samples,
        training,
        args.model_name,
        on_phase=lambda phase: progress.update(force=True, phase=phase),
    )
    if args.run_dir and training:
        record_in_run(args.run_dir, published.version)
    progress.update(force=True, phase="done", version=published.version)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
