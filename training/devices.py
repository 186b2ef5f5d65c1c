"""Where a run trains: the Keras backend, its devices, and the runner that steps on them.

One device: the backend's default (the first GPU it sees, else the CPU). Several
(``devices=N``): data parallel over the first N GPUs, or, on a machine without GPUs, over N
virtual CPU devices, which is how the suite tests it: TensorFlow splits the CPU into logical
devices itself, JAX needs ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` set before it
starts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import keras
import numpy as np

from training.config import TrainConfig
from training.parts import Parts


class DeviceError(Exception):
    """The devices the config asks for are not there (message: one sentence)."""


class Runner(Protocol):
    def run(self, *batches: np.ndarray) -> tuple[float, float]:
        """(real, noise), a conditional run's with (labels, categories): one chunk's arrays."""
        ...

    def sync(self) -> None: ...


@dataclass
class Placement:
    backend: str
    devices: list[str]
    _scope: Any = None
    _make: Any = None

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Variables created here are placed (replicated) on the devices."""
        with self._scope if self._scope is not None else contextlib.nullcontext():
            yield

    def runner(self, parts: Parts, cfg: TrainConfig) -> Runner:
        runner: Runner = self._make(parts, cfg)
        return runner

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "devices": self.devices}


def place(cfg: TrainConfig) -> Placement:
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow(cfg.devices)
    if backend == "jax":
        return _jax(cfg.devices)
    raise DeviceError(f"Training runs under KERAS_BACKEND tensorflow or jax, not {backend}.")


def _tensorflow(n: int) -> Placement:
    import tensorflow as tf

    from training.step_tf import TFRunner

    gpus = tf.config.list_physical_devices("GPU")
    if n == 1:
        names = [gpus[0].name if gpus else "/device:CPU:0"]
        strategy = tf.distribute.get_strategy()
        return Placement("tensorflow", names, None, lambda p, c: TFRunner(p, c, strategy))
    if gpus:
        if len(gpus) < n:
            raise DeviceError(f"devices={n} but TensorFlow sees {len(gpus)} GPUs.")
        names = [f"/gpu:{i}" for i in range(n)]
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        # asking how many logical devices there are would start the runtime and freeze them:
        # split first, and only if that is refused (already started) count what there is
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
            )
        except RuntimeError:
            if len(tf.config.list_logical_devices("CPU")) < n:
                raise DeviceError(
                    f"devices={n}: TensorFlow started before the CPU could be split into "
                    f"{n} devices; train in a fresh process."
                ) from None
        names = [f"/cpu:{i}" for i in range(n)]
    strategy = tf.distribute.MirroredStrategy(names)
    return Placement("tensorflow", names, strategy.scope(), lambda p, c: TFRunner(p, c, strategy))


def _jax(n: int) -> Placement:
    import jax

    from training.step_jax import JaxRunner

    devices = jax.devices()
    if len(devices) < n:
        hint = (
            f"; on a CPU set XLA_FLAGS=--xla_force_host_platform_device_count={n}"
            if devices[0].platform == "cpu"
            else ""
        )
        raise DeviceError(f"devices={n} but JAX sees {len(devices)} devices{hint}.")
    names = [f"{d.platform}:{d.id} ({d.device_kind})" for d in devices[:n]]
    if n == 1:
        return Placement("jax", names, None, lambda p, c: JaxRunner(p, c, None))
    distribution = keras.distribution.DataParallel(devices=devices[:n])
    mesh = distribution.device_mesh.backend_mesh
    # (steps, batch, ...): the batch axis is split across the mesh, the steps are not
    spec = jax.sharding.PartitionSpec(None, distribution.batch_dim_name)  # type: ignore[no-untyped-call]
    sharding = jax.sharding.NamedSharding(mesh, spec)
    return Placement("jax", names, distribution.scope(), lambda p, c: JaxRunner(p, c, sharding))
