"""The training loop: the seed's console line after every epoch, a progress bar, a fixed-noise
sample sheet and a checkpoint per epoch, and resume from the last finished epoch.

Backend-neutral: the step itself comes from ``training.devices`` (TensorFlow or JAX, one device
or several); this loop only feeds it chunks of batches and keeps the run folder
(``training.runs``). Running the same command again with the same folder goes on from the last
finished epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np

from fashion_core import atomic
from fashion_core.dataset import NUM_CLASSES, FashionMNIST
from fashion_core.progress import ProgressFile
from fashion_core.render import sheet_png
from training import checkpoint
from training.config import TrainConfig
from training.data import Feed, prefetched
from training.devices import Placement, Runner, place
from training.parts import Parts, build_parts, float32_generator
from training.runs import RunError, open_run, save_state

SHEET_ROWS = SHEET_COLS = 4
COND_SHEET_COLS = 8  # a conditional run's sheet: ten rows (the categories) of this many
Log = Callable[[str], None]


class EpochDriver(Protocol):
    """Decides, after each epoch, whether the run goes on (the progressive job's publish points
    and time budget, ``training.progressive``). It may add to ``state``, which is saved after."""

    def finished(self, state: dict[str, Any]) -> bool: ...

    def after_epoch(self, epochs_done: int, generator: keras.Model, state: dict[str, Any]) -> bool:
        """Return True to stop the run now."""
        ...


@dataclass
class TrainResult:
    generator: keras.Model  # float32, the EMA generator when the recipe keeps one
    state: dict[str, Any]  # the run's state.json: config, epochs, losses, speed, devices
    resumed_from: int = 0


def fixed_noise(cfg: TrainConfig) -> np.ndarray:
    """The run's one fixed noise batch: the same garments, watched improving epoch by epoch."""
    rng = np.random.default_rng(cfg.seed)
    return rng.standard_normal((SHEET_ROWS * SHEET_COLS, cfg.latent_dim)).astype(np.float32)


def sheet_inputs(cfg: TrainConfig) -> tuple[Any, int, int]:
    """(the generator's fixed inputs, rows, cols) of the per-epoch sheet. A conditional run's
    sheet has one row per category, the same COND_SHEET_COLS latents in every row: each column
    is one idea drawn as every category."""
    if not cfg.labelled:
        return fixed_noise(cfg), SHEET_ROWS, SHEET_COLS
    rng = np.random.default_rng(cfg.seed)
    z = rng.standard_normal((COND_SHEET_COLS, cfg.latent_dim)).astype(np.float32)
    categories = np.repeat(np.arange(NUM_CLASSES, dtype=np.int32), COND_SHEET_COLS)
    return [np.tile(z, (NUM_CLASSES, 1)), categories], NUM_CLASSES, COND_SHEET_COLS


def _epoch(
    runner: Runner,
    feed: Feed,
    epoch: int,
    bar: keras.utils.Progbar | None,
    progress: ProgressFile,
    on_chunk: Callable[[int], None] | None = None,
    first_step: int = 0,
) -> tuple[float, float, float]:
    """One epoch through the runner; returns (seconds, mean gen loss, mean disc loss).
    ``on_chunk(steps done in the run)`` is called after every compiled call; the run's earlier
    epochs took ``first_step`` steps."""
    started = time.perf_counter()
    done, g_sum, d_sum = 0, 0.0, 0.0
    for chunk in prefetched(feed.chunks(epoch)):
        g, d = runner.run(*chunk)
        k = len(chunk[0])
        done, g_sum, d_sum = done + k, g_sum + g * k, d_sum + d * k
        if on_chunk is not None:
            on_chunk(first_step + done)
        if bar is not None:
            bar.update(done, values=[("gen_loss", g), ("disc_loss", d)])
        seconds = time.perf_counter() - started
        progress.update(step=done, images_per_s=round(done * feed.batch_size / seconds, 1))
    runner.sync()
    return time.perf_counter() - started, g_sum / done, d_sum / done


def _end_of_epoch(
    cfg: TrainConfig, run_dir: Path, parts: Parts, state: dict[str, Any], sheet: Any
) -> None:
    done = state["completed_epochs"] + 1
    inputs, rows, cols = sheet
    images = keras.ops.convert_to_numpy(parts.shown(inputs, training=False))
    png = sheet_png(images, rows, cols, spacing=2, scale=2)
    atomic.write_bytes(run_dir / "sheets" / f"epoch_{done:03d}.png", png)
    # checkpoint before state.json: state never claims an epoch whose weights are not on disk
    checkpoint.save(run_dir, parts.state_variables())
    state["completed_epochs"] = done
    save_state(run_dir, state)


def train(
    cfg: TrainConfig,
    data: FashionMNIST,
    run_dir: Path,
    log: Log = print,
    fresh: bool = False,
    verbose: int = 1,
    progress: ProgressFile | None = None,
    on_epoch: Callable[[int, keras.Model], None] | None = None,
    on_chunk: Callable[[int, Callable[[], keras.Model]], None] | None = None,
    driver: EpochDriver | None = None,
) -> TrainResult:
    """Train (or resume) the GAN described by ``cfg`` in ``run_dir``; returns the generator.
    ``progress`` receives epoch, step, losses and images/s as data (the job's progress.json);
    ``on_epoch(epochs_done, generator)`` is called after each epoch's checkpoint with the
    generator sheets show (benchmarks score recipes along the way with it); ``driver`` decides
    after each epoch whether to stop (and publishes along the way). ``state["clock_s"]`` counts
    the run's seconds of training (and whatever the driver adds), across resumes."""
    progress = progress or ProgressFile(None)
    # devices first: TensorFlow splits a CPU into logical devices only before its runtime starts
    placement: Placement = place(cfg)
    state = open_run(cfg, run_dir, fresh, log)
    keras.utils.set_random_seed(cfg.seed)
    with placement.scope():
        parts = build_parts(cfg)
    initial = int(state["completed_epochs"])
    if initial:
        if not checkpoint.exists(run_dir):
            raise RunError(f"{run_dir}/state.json says {initial} epochs but has no checkpoint.")
        checkpoint.restore(run_dir, parts.state_variables())
        if initial >= cfg.epochs:
            log(f"La ejecución en {run_dir} ya terminó sin publicarse: se publica sin reentrenar.")
        else:
            log(f"Reanudando desde la época {initial}/{cfg.epochs} ({run_dir}).")
    state.update(placement.describe(), resumed_from_epoch=initial)
    # a batch that grows (cfg.batch_growth): each epoch's batch; a new size, a new compiled step
    batch = cfg.batch_at(initial)
    runner = placement.runner(parts, replace(cfg, batch_size=batch))
    images = data.x_train[: cfg.train_samples] if cfg.train_samples else data.x_train
    labels = data.y_train[: len(images)] if cfg.labelled else None
    feed = Feed.from_uint8(
        images, batch, cfg.latent_dim, cfg.steps_per_execution, cfg.seed, cfg.epoch_images, labels
    )
    per_epoch = min(cfg.epoch_images or len(images), len(images))
    progress.update(force=True, epoch=initial, epochs=cfg.epochs, steps=feed.steps)
    sheet = sheet_inputs(cfg)

    def shown() -> keras.Model:
        runner.sync()  # the JAX step keeps its state outside Keras until synced
        return parts.shown

    def chunk_hook(step: int) -> None:
        if on_chunk is not None:
            on_chunk(step, shown)

    epochs = range(initial, cfg.epochs)
    if driver is not None and driver.finished(state):
        epochs = range(0)
    for epoch in epochs:
        if cfg.batch_at(epoch) != feed.batch_size:  # the optimizers' state carries on
            batch = cfg.batch_at(epoch)
            runner = placement.runner(parts, replace(cfg, batch_size=batch))
            feed = replace(feed, batch_size=batch)
        progress.update(force=True, phase="training", epoch=epoch, step=0, steps=feed.steps)
        bar = keras.utils.Progbar(feed.steps) if verbose else None
        seconds, g, d = _epoch(
            runner,
            feed,
            epoch,
            bar,
            progress,
            chunk_hook if on_chunk else None,
            cfg.steps_before(epoch, per_epoch),
        )
        rate = round(feed.steps * feed.batch_size / seconds, 1)
        # a progressive job counts its budget, not its (upper bound of) epochs
        of = f" ({state.get('clock_s', 0) + seconds:.0f}s de {cfg.time_budget_s:.0f}s)"
        log(
            f"Época de moda {epoch + 1}"
            + (of if cfg.time_budget_s else f"/{cfg.epochs}")
            + f" completada en {seconds:.1f}s — gen_loss {g:.4f}, disc_loss {d:.4f}"
        )
        state["seconds_per_epoch"].append(round(seconds, 3))
        state["clock_s"] = round(state.get("clock_s", 0.0) + seconds, 3)
        state["images_per_s"].append(rate)
        state["losses"] = {"gen_loss": g, "disc_loss": d}
        _end_of_epoch(cfg, run_dir, parts, state, sheet)
        losses = {"gen_loss": g, "disc_loss": d}
        progress.update(
            force=True, epoch=epoch + 1, step=feed.steps, losses=losses, images_per_s=rate
        )
        if on_epoch is not None:
            on_epoch(epoch + 1, parts.shown)
        if driver is not None:
            stop = driver.after_epoch(epoch + 1, parts.shown, state)
            save_state(run_dir, state)
            if stop:
                break
    return TrainResult(float32_generator(parts.shown, cfg), state, resumed_from=initial)
