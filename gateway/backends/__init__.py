"""Model backends behind one interface: embedded (in-process SavedModel), rest and grpc
(TF Serving). ``make_backend(settings)`` picks one; only the embedded one imports TensorFlow."""

from __future__ import annotations

from gateway.backends.base import Backend, Generated, ModelStatus, Pin, VersionState
from gateway.settings import Settings

__all__ = ["Backend", "Generated", "ModelStatus", "Pin", "VersionState", "make_backend"]


def make_backend(settings: Settings) -> Backend:
    if settings.backend == "embedded":
        from gateway.backends.embedded import EmbeddedBackend

        return EmbeddedBackend(settings)
    if settings.backend == "rest":
        from gateway.backends.rest import RestBackend

        return RestBackend(settings)
    from gateway.backends.grpc import GrpcBackend

    return GrpcBackend(settings)
