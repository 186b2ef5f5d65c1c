"""The training loop: compiled GAN steps, one console line per epoch, a fixed-noise sample sheet
and a checkpoint after every epoch, and resume from the last finished epoch.

A run folder holds everything of one run:
    state.json          config + finished epochs + losses (written atomically after each epoch)
    ckpt/               tf.train.Checkpoint of both networks, both optimizers and the noise seed
    sheets/epoch_NNN.png  the fixed noise batch drawn after each epoch
Running the same command again with the same folder goes on from the last finished epoch.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fashion_core import atomic
from fashion_core.dataset import FashionMNIST
from fashion_core.progress import ProgressFile
from fashion_core.render import sheet_png
from training.config import TrainConfig
from training.data import make_dataset
from training.model import GAN, build_discriminator, build_generator

SHEET_ROWS = SHEET_COLS = 4
Log = Callable[[str], None]


class RunError(Exception):
    """The run folder cannot be resumed with this config (message: one sentence)."""


@dataclass
class TrainResult:
    generator: keras.Model
    epochs: int
    seconds_per_epoch: list[float] = field(default_factory=list)
    losses: dict[str, float] = field(default_factory=dict)
    resumed_from: int = 0


def fixed_noise(cfg: TrainConfig) -> np.ndarray:
    """The run's one fixed noise batch: the same garments, watched improving epoch by epoch."""
    rng = np.random.default_rng(cfg.seed)
    return rng.standard_normal((SHEET_ROWS * SHEET_COLS, cfg.latent_dim)).astype(np.float32)


class EpochReport(keras.callbacks.Callback):  # type: ignore[misc]
    """After each epoch: the seed's console line, the sample sheet, the checkpoint, state.json."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: Path,
        ckpt: tf.train.CheckpointManager,
        state: dict[str, Any],
        log: Log,
        progress: ProgressFile,
        steps: int,
    ) -> None:
        super().__init__()
        self.cfg, self.run_dir, self.ckpt, self.state, self.log = cfg, run_dir, ckpt, state, log
        self.progress, self.steps = progress, steps
        self.noise = fixed_noise(cfg)
        self.started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.started = time.perf_counter()
        self.progress.update(force=True, phase="training", epoch=epoch, step=0)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # throttled to about one write a second by ProgressFile
        seconds = time.perf_counter() - self.started
        rate = (batch + 1) * self.cfg.batch_size / seconds if seconds > 0 else None
        self.progress.update(step=batch + 1, images_per_s=rate)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        seconds = time.perf_counter() - self.started
        logs = logs or {}
        g, d = float(logs.get("gen_loss", float("nan"))), float(logs.get("disc_loss", float("nan")))
        done = epoch + 1
        self.log(
            f"Época de moda {done}/{self.cfg.epochs} completada en {seconds:.1f}s"
            f" — gen_loss {g:.4f}, disc_loss {d:.4f}"
        )
        gan: GAN = self.model
        images = gan.generator(self.noise, training=False)
        sheet = self.run_dir / "sheets" / f"epoch_{done:03d}.png"
        png = sheet_png(np.asarray(images), SHEET_ROWS, SHEET_COLS, spacing=2, scale=2)
        atomic.write_bytes(sheet, png)
        # checkpoint before state.json: state never claims an epoch whose weights are not on disk
        self.ckpt.save(checkpoint_number=done)
        self.state["completed_epochs"] = done
        self.state["seconds_per_epoch"].append(round(seconds, 3))
        self.state["losses"] = {"gen_loss": g, "disc_loss": d}
        atomic.write_json(self.run_dir / "state.json", self.state)
        self.progress.update(
            force=True,
            epoch=done,
            step=self.steps,
            losses={"gen_loss": g, "disc_loss": d},
            images_per_s=round(self.steps * self.cfg.batch_size / seconds, 1),
        )


def _open_run(cfg: TrainConfig, run_dir: Path, fresh: bool) -> dict[str, Any]:
    state_file = run_dir / "state.json"
    if state_file.exists() and not fresh:
        state: dict[str, Any] = json.loads(state_file.read_text())
        if state.get("config") != cfg.to_dict():
            raise RunError(
                f"{run_dir} holds a run with another config; pass --fresh to start over there "
                "or choose another --run-dir."
            )
        if state.get("completed_epochs", 0) < cfg.epochs or "published_version" not in state:
            return state  # unfinished, or finished but never published: nothing is thrown away
        # that run finished and was published: this command asks for a new one
    if run_dir.exists():
        shutil.rmtree(run_dir)
    (run_dir / "sheets").mkdir(parents=True)
    state = {"config": cfg.to_dict(), "completed_epochs": 0, "seconds_per_epoch": [], "losses": {}}
    atomic.write_json(state_file, state)
    return state


def mark_published(run_dir: Path, version: int) -> None:
    """Record that the run's generator is published: the next run with this folder starts anew
    (until then a finished run is kept, and running again publishes it without retraining)."""
    state_file = run_dir / "state.json"
    state = json.loads(state_file.read_text())
    atomic.write_json(state_file, {**state, "published_version": version})


def train(
    cfg: TrainConfig,
    data: FashionMNIST,
    run_dir: Path,
    log: Log = print,
    fresh: bool = False,
    verbose: int = 1,
    progress: ProgressFile | None = None,
) -> TrainResult:
    """Train (or resume) the GAN described by ``cfg`` in ``run_dir``; returns the generator.
    ``progress`` receives epoch, step, losses and images/s as data (the job's progress.json)."""
    progress = progress or ProgressFile(None)
    state = _open_run(cfg, run_dir, fresh)
    keras.utils.set_random_seed(cfg.seed)
    generator = build_generator(cfg.latent_dim, cfg.width)
    gan = GAN(generator, build_discriminator(cfg.width), cfg.latent_dim, cfg.seed)
    g_opt = keras.optimizers.Adam(cfg.gen_lr, beta_1=cfg.beta_1)
    d_opt = keras.optimizers.Adam(cfg.disc_lr, beta_1=cfg.beta_1)
    gan.compile(g_opt, d_opt, jit_compile=cfg.jit_compile)
    gan.build_for_checkpoint()

    ckpt = tf.train.Checkpoint(
        generator=generator,
        discriminator=gan.discriminator,
        g_opt=g_opt,
        d_opt=d_opt,
        seed=gan.seed_generator.state,
    )
    manager = tf.train.CheckpointManager(ckpt, str(run_dir / "ckpt"), max_to_keep=2)
    initial = int(state["completed_epochs"])
    if initial:
        if manager.latest_checkpoint is None:
            raise RunError(f"{run_dir}/state.json says {initial} epochs but has no checkpoint.")
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        if initial >= cfg.epochs:
            log(f"La ejecución en {run_dir} ya terminó sin publicarse: se publica sin reentrenar.")
        else:
            log(f"Reanudando desde la época {initial}/{cfg.epochs} ({run_dir}).")

    images = data.x_train[: cfg.train_samples] if cfg.train_samples else data.x_train
    dataset = make_dataset(images, cfg.batch_size, cfg.shuffle_buffer, cfg.seed + initial)
    steps = len(images) // cfg.batch_size  # drop_remainder
    progress.update(force=True, epoch=initial, epochs=cfg.epochs, steps=steps)
    report = EpochReport(cfg, run_dir, manager, state, log, progress, steps)
    # fit() warns that it will not shuffle a tf.data pipeline: ours shuffles itself
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    gan.fit(dataset, epochs=cfg.epochs, initial_epoch=initial, callbacks=[report], verbose=verbose)
    return TrainResult(
        generator=generator,
        epochs=cfg.epochs,
        seconds_per_epoch=list(state["seconds_per_epoch"]),
        losses=dict(state["losses"]),
        resumed_from=initial,
    )
