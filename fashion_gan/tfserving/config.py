"""What a TF Serving client needs to know, and nothing else: where the server is, how long a
call may take, what to tell a caller about coming back, how many connections to hold.

    ServingConfig(rest_url="http://localhost:8501")      # REST
    ServingConfig(grpc_target="localhost:8500")          # gRPC

The gateway builds one from its settings (gateway/backends/__init__.py); a script builds one
directly. Nothing here reads the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fashion_core.contract import MODEL_NAME

# TF Serving's max_batch_size in serving_config/batching.config: a call with more rows is
# refused ("Task size N is larger than maximum input batch size M")
DEFAULT_MAX_BATCH: Final = 72


@dataclass(frozen=True)
class ServingConfig:
    rest_url: str | None = None  # http://host:8501 (REST)
    grpc_target: str | None = None  # host:8500 (gRPC)
    model_name: str = MODEL_NAME
    timeout_s: float = 10.0  # deadline of every predict
    status_timeout_s: float = 2.0  # deadline of status and metadata calls
    retry_busy_s: int = 2  # Retry-After while the server is busy, unreachable or broke off
    retry_loading_s: int = 30  # Retry-After while a version is not loaded on every replica
    pool_size: int = 64  # REST: pooled connections for predictions
    resolve_ttl_s: float = 1.0  # how long "newest" or a label stays resolved to one version
    max_batch: int = DEFAULT_MAX_BATCH

    def __post_init__(self) -> None:
        if (self.rest_url is None) == (self.grpc_target is None):
            raise ValueError("give exactly one of rest_url (REST) or grpc_target (gRPC).")
        if self.rest_url is not None:
            object.__setattr__(self, "rest_url", self.rest_url.rstrip("/"))

    @property
    def transport(self) -> str:
        return "rest" if self.rest_url is not None else "grpc"

    @property
    def where(self) -> str:
        return self.rest_url or self.grpc_target or ""
