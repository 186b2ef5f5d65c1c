"""TF Serving clients: the REST and gRPC transports mirror each other (tritonclient-style),
take one ``ServingConfig``, raise one error type (``ServingError``) and keep every call within
the server's ``max_batch_size``.

    from fashion_gan.tfserving import ServingConfig, connect
    transport = connect(ServingConfig(grpc_target="localhost:8500"))   # async, chunked
    await transport.start(); out = await transport.generate(z, LATEST)

``fashion_gan.ServingClient`` wraps one for blocking code. No TensorFlow is imported.
"""

from __future__ import annotations

from fashion_gan.tfserving.chunking import MIN_ROWS, Chunked, padded, split
from fashion_gan.tfserving.config import DEFAULT_MAX_BATCH, ServingConfig
from fashion_gan.tfserving.errors import (
    BadInput,
    NotPinnable,
    NoVersion,
    ServingError,
    UpstreamError,
)
from fashion_gan.tfserving.values import (
    LATEST,
    Generated,
    ModelStatus,
    Pin,
    RemoteTransport,
    Transport,
    VersionState,
)

__all__ = [
    "DEFAULT_MAX_BATCH",
    "LATEST",
    "MIN_ROWS",
    "BadInput",
    "Chunked",
    "Generated",
    "ModelStatus",
    "NoVersion",
    "NotPinnable",
    "Pin",
    "RemoteTransport",
    "ServingConfig",
    "ServingError",
    "Transport",
    "UpstreamError",
    "VersionState",
    "connect",
    "padded",
    "split",
    "transport",
]


def transport(config: ServingConfig) -> RemoteTransport:
    """The bare transport the config names (REST for ``rest_url``, gRPC for ``grpc_target``);
    grpcio is imported only for gRPC."""
    if config.rest_url is not None:
        from fashion_gan.tfserving.rest import RestTransport

        return RestTransport(config)
    from fashion_gan.tfserving.grpc import GrpcTransport

    return GrpcTransport(config)


def connect(config: ServingConfig) -> Chunked:
    """The transport, every call within ``config.max_batch`` rows (and padded to be exact)."""
    return Chunked(transport(config), config.max_batch)
