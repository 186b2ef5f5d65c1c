"""The input pipeline, in NumPy so the JAX backend needs no TensorFlow: Fashion-MNIST in
[-1, 1], a fresh permutation every epoch, batches of ``batch_size`` (the remainder dropped, as
the seed's ``drop_remainder``), and the generator's noise, in chunks of ``steps_per_execution``
steps that a background thread prepares while the previous chunk trains.

A conditional run's feed also carries the images' labels, shuffled and chunked with them, and
the categories the generator is asked for, uniform over the ten.

Everything an epoch draws comes from the generator seeded by (seed, epoch), so a run resumed at
epoch e sees the same images and noise as one that never stopped.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from fashion_core.dataset import NUM_CLASSES, to_unit_range

# real (k, B, 28, 28, 1) and noise (k, B, latent), float32; a conditional run's chunk adds the
# real images' labels and the generator's categories, (k, B) int32 each
Chunk = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Feed:
    images: np.ndarray  # (N, 28, 28, 1) float32 in [-1, 1]
    batch_size: int
    latent_dim: int
    steps_per_execution: int
    seed: int
    epoch_images: int | None = None  # an epoch's share of the images (None = all once)
    labels: np.ndarray | None = None  # (N,) the images' classes: a conditional run's feed

    @classmethod
    def from_uint8(
        cls,
        images: np.ndarray,
        batch_size: int,
        latent_dim: int,
        steps_per_execution: int,
        seed: int,
        epoch_images: int | None = None,
        labels: np.ndarray | None = None,
    ) -> Feed:
        return cls(
            to_unit_range(images),
            batch_size,
            latent_dim,
            steps_per_execution,
            seed,
            epoch_images,
            None if labels is None else labels.astype(np.int32),
        )

    @property
    def steps(self) -> int:
        per_epoch = min(self.epoch_images or len(self.images), len(self.images))
        return per_epoch // self.batch_size

    def chunks(self, epoch: int) -> Iterator[Chunk]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.images))
        b, k_max = self.batch_size, self.steps_per_execution
        for start in range(0, self.steps, k_max):
            k = min(k_max, self.steps - start)
            real = self.images[order[start * b : (start + k) * b]].reshape(
                k, b, *self.images.shape[1:]
            )
            noise = rng.standard_normal((k, b, self.latent_dim), dtype=np.float32)
            if self.labels is None:
                yield real, noise
                continue
            labels = self.labels[order[start * b : (start + k) * b]].reshape(k, b)
            categories = rng.integers(0, NUM_CLASSES, (k, b), dtype=np.int32)
            yield real, noise, labels, categories


def prefetched(chunks: Iterator[Chunk], depth: int = 2) -> Iterator[Chunk]:
    """``chunks`` produced on a background thread, at most ``depth`` ahead: gathering the next
    batches overlaps the train step (NumPy's fancy indexing releases the GIL)."""
    q: queue.Queue[Chunk | BaseException | None] = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                q.put(chunk)
            q.put(None)
        except BaseException as exc:  # handed to the consumer, raised there
            q.put(exc)

    thread = threading.Thread(target=produce, name="feed", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.01)
