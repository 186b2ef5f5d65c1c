"""``ServingClient``: latents -> images straight from TF Serving, over REST or gRPC, blocking.

For tensor consumers who call TF Serving themselves, and for ops tools (the rollout tool asks
each replica through one). It drives the same async transports the gateway uses
(fashion_gan/tfserving/), so it keeps the same rules: calls within TF Serving's
max_batch_size, short calls padded to exact sizes, a version resolved before a REST predict so
the answer says which version drew it. The transports run on a private event loop thread: the
methods block, are safe to call from many threads, and work inside a running event loop too.
"""

from __future__ import annotations

import asyncio
import numbers
import threading
from collections.abc import Coroutine, Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from fashion_core.contract import LABEL, MODEL_NAME
from fashion_gan.tfserving import (
    DEFAULT_MAX_BATCH,
    Chunked,
    Generated,
    Pin,
    ServingConfig,
    ServingError,
    VersionState,
    transport,
)

__all__ = ["Prediction", "ServingClient", "ServingError"]
T = TypeVar("T")
Prediction = Generated  # .images (n, 28, 28, 1) float32 in [-1, 1], .version


class ServingClient:
    """``ServingClient(rest_url="http://localhost:8501")`` or ``(grpc_target="localhost:8500")``,
    or ``ServingClient(config=ServingConfig(...))``. Failures raise ``ServingError`` (``status``
    400/404 for a version or label the server does not have, 502/503/504 for its faults)."""

    def __init__(
        self,
        rest_url: str | None = None,
        grpc_target: str | None = None,
        *,
        model_name: str = MODEL_NAME,
        timeout_s: float = 10.0,
        max_batch: int = DEFAULT_MAX_BATCH,
        config: ServingConfig | None = None,
    ) -> None:
        if config is None:
            config = ServingConfig(
                rest_url=rest_url,
                grpc_target=grpc_target,
                model_name=model_name,
                timeout_s=timeout_s,
                status_timeout_s=timeout_s,
                max_batch=max_batch,
            )
        elif rest_url is not None or grpc_target is not None:
            raise ValueError("give either config or rest_url/grpc_target, not both.")
        self.config = config
        self.transport = config.transport
        self._remote = transport(config)
        self._backend = Chunked(self._remote, config.max_batch)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="serving-client", daemon=True
        )
        self._thread.start()
        try:
            self._run(self._backend.start())
        except BaseException:
            self._stop()  # no loop thread left behind by a client that never started
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def predict(
        self,
        latents: Any,
        *,
        version: int | None = None,
        label: str | None = None,
        category: int | Sequence[int] | None = None,
    ) -> Prediction:
        """latents (n, latent_dim) -> ``Prediction(images, version)``; ``version`` or
        ``label`` pins one, else TF Serving's newest AVAILABLE version answers. ``category``
        (the conditional model, ``model_name="fashion_gan_cond"``): one int for every row, or
        one per row; None for the unconditional model. A category the model does not have
        raises ``BadInput`` (status 400)."""
        pin = _pin(version, label)
        z = np.asarray(latents, dtype=np.float32)
        dim = self.latent_dim(version=version, label=label)
        if z.ndim != 2 or z.shape[1] != dim or len(z) == 0:
            raise ValueError(f"latents must have shape (n, {dim}) with n >= 1, not {z.shape}.")
        if not np.isfinite(z).all():
            raise ValueError("latents must be finite numbers (no NaN or infinity).")
        categories = _categories(category, len(z))
        if categories is None:
            return self._run(self._backend.generate(z, pin))
        return self._run(self._backend.generate(z, pin, categories))

    def images(
        self,
        latents: Any,
        *,
        version: int | None = None,
        label: str | None = None,
        category: int | Sequence[int] | None = None,
    ) -> Any:
        """Just the images of ``predict``: float32 (n, 28, 28, 1) in [-1, 1]."""
        return self.predict(latents, version=version, label=label, category=category).images

    def latent_dim(self, *, version: int | None = None, label: str | None = None) -> int:
        """The length of z the version takes, from its signature metadata."""
        return self._run(self._backend.latent_dim(_pin(version, label)))

    def resolve(self, *, label: str | None = None) -> int:
        """The version the server serves now for ``label`` (or for unpinned calls)."""
        return self._run(self._remote.resolve(_pin(None, label)))

    def versions(self) -> list[VersionState]:
        """TF Serving's versions of the model and their states (AVAILABLE, LOADING, ...)."""
        return self._run(self._backend.status()).versions

    def close(self) -> None:
        """Close the transport; calls still in flight on other threads fail, none hangs."""
        if self._loop.is_running():
            self._run(self._backend.close())
            self._stop()

    def _stop(self) -> None:
        async def cancel_the_rest() -> None:
            current = asyncio.current_task()
            for task in asyncio.all_tasks():
                if task is not current:
                    task.cancel()

        asyncio.run_coroutine_threadsafe(cancel_the_rest(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _categories(category: int | Sequence[int] | None, rows: int) -> np.ndarray | None:
    """None, or int64 (rows,): one int repeated, or a sequence of exactly ``rows`` ints. The
    range is the model's to check (it refuses one it does not have)."""
    if category is None:
        return None
    sentence = "category must be a whole number (0-9) or a sequence of them, one per row."
    if isinstance(category, numbers.Integral):
        values: list[Any] = [category] * rows
    elif isinstance(category, Iterable) and not isinstance(category, str | bytes):
        values = list(category)
    else:
        raise ValueError(sentence)
    if not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in values):
        raise ValueError(sentence)
    if len(values) != rows:
        raise ValueError(f"category must be one whole number, or {rows} of them (one per row).")
    return np.asarray(values, dtype=np.int64)


def _pin(version: int | None, label: str | None) -> Pin:
    if version is not None and label is not None:
        raise ValueError("give either version or label, not both.")
    if label is not None and not LABEL.fullmatch(label):
        # "." or ".." would be URL path segments: /labels/../metadata is the newest version's
        raise ValueError(
            "label must be 1-64 letters, digits, '_', '-' or '.', starting with a "
            "letter or digit, e.g. stable."
        )
    return Pin(version=version, label=label)
