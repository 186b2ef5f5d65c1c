"""Model backends behind one interface: embedded (the in-process SavedModel) or TF Serving over
rest or grpc (the library's transports, fashion_gan/tfserving/). ``make_backend(settings)``
picks one; only the embedded one imports TensorFlow."""

from __future__ import annotations

from fashion_gan.tfserving import ServingConfig, transport
from gateway.backends.base import Backend, Generated, ModelStatus, Pin, VersionState
from gateway.settings import Settings

__all__ = [
    "Backend",
    "Generated",
    "ModelStatus",
    "Pin",
    "VersionState",
    "make_backend",
    "serving_config",
]


def serving_config(settings: Settings, conditional: bool = False) -> ServingConfig:
    """The TF Serving client configuration the gateway's settings describe, for the first
    model or (``conditional``) the class-conditional one."""
    rest = settings.backend == "rest"
    return ServingConfig(
        rest_url=settings.rest_url if rest else None,
        grpc_target=None if rest else settings.grpc_target,
        model_name=settings.cond_model_name if conditional else settings.model_name,
        timeout_s=settings.upstream_timeout_s,
        status_timeout_s=settings.status_timeout_s,
        retry_busy_s=settings.retry_busy_s,
        retry_loading_s=settings.retry_after_s,
        pool_size=settings.upstream_connections,
        resolve_ttl_s=settings.poll_interval_s,
        max_batch=settings.upstream_max_batch,
    )


def make_backend(settings: Settings, conditional: bool = False) -> Backend:
    """The backend of the first model, or (``conditional``) of the class-conditional one."""
    if settings.backend == "embedded":
        from gateway.backends.embedded import EmbeddedBackend

        if conditional:
            return EmbeddedBackend(settings, settings.cond_base_path, settings.cond_model_name)
        return EmbeddedBackend(settings)
    # unchunked: the gateway chunks every backend's calls itself (gateway/service.py)
    return transport(serving_config(settings, conditional))
