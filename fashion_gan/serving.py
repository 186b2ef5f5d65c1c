"""``ServingClient``: latents -> images straight from TF Serving, over REST or gRPC.

For tensor consumers who call TF Serving themselves. It is the gateway's own wire code
(gateway/backends/rest.py and grpc.py behind gateway/chunking.py), so it keeps the same rules:
calls within TF Serving's max_batch_size, short calls padded to exact sizes, a version resolved
before a REST predict so the answer says which version drew it. The async backends run on a
private event loop thread; the methods block and are safe to call from many threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

import numpy as np

from fashion_core.contract import LABEL, MODEL_NAME
from gateway.backends.base import Backend, Generated, Pin, VersionState
from gateway.chunking import ChunkedBackend
from gateway.errors import BadRequest, NoVersion, UpstreamError
from gateway.settings import Settings

__all__ = ["Prediction", "ServingClient", "ServingError"]
T = TypeVar("T")
Prediction = Generated  # .images (n, 28, 28, 1) float32 in [-1, 1], .version


class ServingError(Exception):
    """TF Serving refused or failed. ``status``: 400 (a label it does not define), 404 (a
    version it has not loaded, or no version at all), 502 (a bad answer), 503 (unreachable
    or overloaded; ``retry_after`` seconds), 504 (the deadline passed)."""

    def __init__(self, message: str, status: int, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class ServingClient:
    """``ServingClient(rest_url="http://localhost:8501")`` or ``(grpc_target="localhost:8500")``."""

    def __init__(
        self,
        rest_url: str | None = None,
        grpc_target: str | None = None,
        *,
        model_name: str = MODEL_NAME,
        timeout_s: float = 10.0,
        max_batch: int = Settings.upstream_max_batch,
    ) -> None:
        if (rest_url is None) == (grpc_target is None):
            raise ValueError("give exactly one of rest_url (REST) or grpc_target (gRPC).")
        rest = rest_url is not None
        settings = Settings(
            backend="rest" if rest else "grpc",
            model_name=model_name,
            rest_url=(rest_url or Settings.rest_url).rstrip("/"),
            grpc_target=grpc_target or Settings.grpc_target,
            upstream_timeout_s=timeout_s,
            status_timeout_s=timeout_s,
        )
        inner: Backend
        if rest:
            from gateway.backends.rest import RestBackend

            inner = RestBackend(settings)
        else:
            from gateway.backends.grpc import GrpcBackend

            inner = GrpcBackend(settings)
        self.transport = settings.backend
        self._backend = ChunkedBackend(inner, max_batch)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="serving-client", daemon=True
        )
        self._thread.start()
        self._run(self._backend.start())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result()
        except UpstreamError as exc:
            raise ServingError(str(exc), exc.status, exc.retry_after) from None
        except BadRequest as exc:  # NotPinnable: an unknown version or label
            raise ServingError(str(exc), exc.status) from None
        except NoVersion as exc:
            raise ServingError(str(exc), 404) from None

    def predict(
        self, latents: Any, *, version: int | None = None, label: str | None = None
    ) -> Prediction:
        """latents (n, latent_dim) -> ``Prediction(images, version)``; ``version`` or
        ``label`` pins one, else TF Serving's newest AVAILABLE version answers."""
        pin = _pin(version, label)
        z = np.asarray(latents, dtype=np.float32)
        dim = self.latent_dim(version=version, label=label)
        if z.ndim != 2 or z.shape[1] != dim or len(z) == 0:
            raise ValueError(f"latents must have shape (n, {dim}) with n >= 1, not {z.shape}.")
        if not np.isfinite(z).all():
            raise ValueError("latents must be finite numbers (no NaN or infinity).")
        return self._run(self._backend.generate(z, pin))

    def images(self, latents: Any, *, version: int | None = None, label: str | None = None) -> Any:
        """Just the images of ``predict``: float32 (n, 28, 28, 1) in [-1, 1]."""
        return self.predict(latents, version=version, label=label).images

    def latent_dim(self, *, version: int | None = None, label: str | None = None) -> int:
        """The length of z the version takes, from its signature metadata."""
        return self._run(self._backend.latent_dim(_pin(version, label)))

    def versions(self) -> list[VersionState]:
        """TF Serving's versions of the model and their states (AVAILABLE, LOADING, ...)."""
        return self._run(self._backend.status()).versions

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._backend.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
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
