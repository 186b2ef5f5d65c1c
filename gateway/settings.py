"""The gateway's one settings object, read from the environment here and nowhere else.

A wrong value stops the start with one sentence that names the variable. The README's settings
table is printed by ``python -m gateway.settings`` (a test keeps the two equal).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from fashion_core import limits as request_limits
from fashion_core.contract import COND_MODEL_NAME
from fashion_core.envparse import (
    SettingsError,
    Variable,
    boolean,
    choice,
    integer,
    networks,
    number,
    read,
    refuse_unknown,
    served_name,
    target,
    text,
    url,
)
from fashion_gan import settings as api
from fashion_gan.settings import ApiSettings

__all__ = ["BACKENDS", "ENV", "PREFIXES", "VARIABLES", "Settings", "SettingsError", "from_env"]

Backend = Literal["embedded", "rest", "grpc"]
BACKENDS: tuple[Backend, ...] = ("embedded", "rest", "grpc")
T = TypeVar("T")
# every variable with these prefixes must be one of VARIABLES: a typo stops the start
PREFIXES = ("GATEWAY_", "TFSERVING_")
_API = ApiSettings()  # the defaults the Python API shares with the gateway


@dataclass(frozen=True)
class Settings:
    backend: Backend = "embedded"
    model_name: str = _API.model_name
    model_base_path: Path = _API.model_base_path
    # labels for the embedded backend (TF Serving reads its own copy via --model_config_file)
    model_config_file: Path | None = _API.model_config_file
    # the class-conditional model, served beside the first (requests with a category)
    conditional: bool = True
    cond_model_name: str = COND_MODEL_NAME
    cond_model_base_path: Path | None = None  # None: <cond_model_name> beside model_base_path
    rest_url: str = "http://localhost:8501"
    grpc_target: str = "localhost:8500"
    host: str = "127.0.0.1"
    port: int = 8000
    # train on miss
    train_on_miss: bool = True
    train_profile: str = _API.train_profile
    trainer_url: str | None = _API.trainer_url  # a remote job runner (training.jobserver)
    jobs_dir: Path = _API.jobs_dir
    admin_token: str | None = _API.admin_token
    retry_after_s: int = 30  # while a version is trained or loaded
    retry_busy_s: int = 2  # while the model server is busy, unreachable or broke off
    # upstream
    upstream_timeout_s: float = 10.0
    status_timeout_s: float = 2.0
    poll_interval_s: float = 1.0
    # batching: continuous (a call starts as soon as the model is free) up to this many images
    max_batch_images: int = 288
    batch_window_ms: float = 3.0
    # the model server's limit per call: max_batch_size in serving_config/batching.config
    upstream_max_batch: int = 72
    upstream_connections: int = 64  # REST: pooled HTTP connections to TF Serving
    # request limits
    max_grid: int = request_limits.MAX_GRID
    max_scale: int = request_limits.MAX_SCALE
    max_spacing: int = request_limits.MAX_SPACING
    max_body_bytes: int = 1 << 20
    # rollouts: share of unpinned traffic sent to label "canary" (0 = off)
    canary_percent: float = 0.0
    # where unpinned traffic goes when no canary share applies: a label (e.g. stable), or the
    # newest AVAILABLE version when unset
    default_label: str | None = None
    # proxies whose X-Forwarded-For is believed (an ingress); empty: nobody's
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # admission control (gateway/batching.py) and the server's own limits
    max_queue_wait_s: float = 1.0
    max_queue_images: int = 4096
    queue_timeout_s: float = 3.0
    max_connections: int = 1024
    # slow and idle connections, big bodies (gateway/connections.py, gateway/bodies.py)
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    keep_alive_s: int = 5
    max_header_bytes: int = 16384
    max_buffered_bytes: int = 64 << 20
    # embedded: loading versions on demand (gateway/backends/loader.py)
    pin_load_interval_s: float = 10.0
    failed_load_ttl_s: float = 300.0
    render_threads: int = 2
    shutdown_grace_s: float = 20.0
    canary_label: str = "canary"
    stable_label: str = "stable"
    log_level: str = "info"

    @property
    def cond_base_path(self) -> Path:
        """The conditional model's version folders (models/fashion_gan_cond by default)."""
        if self.cond_model_base_path is not None:
            return self.cond_model_base_path
        return self.model_base_path.parent / self.cond_model_name

    @functools.cached_property
    def limits(self) -> dict[str, request_limits.Limit]:
        """The request limits with this gateway's maxima (fashion_core/limits.py)."""
        return request_limits.table(self.max_grid, self.max_scale, self.max_spacing)


# every variable the gateway reads, in README order (tests/test_settings.py checks the README's
# table is exactly this one: python -m gateway.settings prints it)
VARIABLES: tuple[Variable, ...] = (
    Variable("GATEWAY_BACKEND", "backend", choice(BACKENDS), "`embedded`, `rest` or `grpc`"),
    api.MODEL_NAME_VAR,
    api.MODEL_BASE_PATH,
    api.MODEL_CONFIG_FILE,
    Variable(
        "GATEWAY_CONDITIONAL",
        "conditional",
        boolean,
        "serve the class-conditional model too: requests with a `category` (off: they get 404)",
    ),
    api.COND_MODEL_NAME_VAR,
    api.COND_MODEL_BASE_PATH,
    Variable("TFSERVING_REST_URL", "rest_url", url, "TF Serving REST"),
    Variable("TFSERVING_GRPC_TARGET", "grpc_target", target, "TF Serving gRPC"),
    Variable("GATEWAY_HOST", "host", text, "listen address"),
    Variable("GATEWAY_PORT", "port", integer(1, 65535), "listen port"),
    Variable(
        "GATEWAY_TRAIN_ON_MISS",
        "train_on_miss",
        boolean,
        "start a training job when the base path has no version",
    ),
    api.TRAIN_PROFILE,
    api.TRAINER_URL,
    api.JOBS_DIR,
    api.ADMIN_TOKEN,
    Variable(
        "GATEWAY_RETRY_AFTER_S",
        "retry_after_s",
        integer(1, 3600),
        "Retry-After while a version is trained or loaded",
    ),
    Variable(
        "GATEWAY_RETRY_BUSY_S",
        "retry_busy_s",
        integer(1, 600),
        "Retry-After while the model server is busy, unreachable or broke off",
    ),
    Variable(
        "GATEWAY_UPSTREAM_TIMEOUT_S",
        "upstream_timeout_s",
        number(0.01, 600),
        "deadline of every model call, on every backend",
    ),
    Variable(
        "GATEWAY_STATUS_TIMEOUT_S",
        "status_timeout_s",
        number(0.01, 60),
        "deadline of status/metadata calls",
    ),
    Variable(
        "GATEWAY_POLL_INTERVAL_S",
        "poll_interval_s",
        number(0.05, 3600),
        "embedded: new-version check; rest: version-resolution cache",
    ),
    Variable(
        "GATEWAY_MAX_BATCH_IMAGES",
        "max_batch_images",
        integer(1, 4096),
        "most images the batcher merges before the model calls",
    ),
    Variable(
        "GATEWAY_BATCH_WINDOW_MS",
        "batch_window_ms",
        number(0, 1000),
        "under load, extra wait to fill a batch (a lone request never waits)",
    ),
    Variable(
        "GATEWAY_UPSTREAM_MAX_BATCH",
        "upstream_max_batch",
        integer(1, 4096),
        "most rows in one model call: TF Serving's `max_batch_size` (in batching.config)",
    ),
    Variable(
        "GATEWAY_UPSTREAM_CONNECTIONS",
        "upstream_connections",
        integer(1, 1024),
        "rest: pooled HTTP connections to TF Serving",
    ),
    Variable("GATEWAY_MAX_GRID", "max_grid", integer(1, 64), "largest rows/cols"),
    Variable("GATEWAY_MAX_SCALE", "max_scale", integer(1, 32), "largest scale"),
    Variable("GATEWAY_MAX_SPACING", "max_spacing", integer(0, 64), "largest spacing"),
    Variable(
        "GATEWAY_MAX_BODY_BYTES", "max_body_bytes", integer(1024, 64 << 20), "largest POST body"
    ),
    Variable(
        "GATEWAY_CANARY_PERCENT",
        "canary_percent",
        number(0, 100),
        "share of clients (by `X-Client-Id`, else address) sent to label `canary`",
    ),
    Variable(
        "GATEWAY_DEFAULT_LABEL",
        "default_label",
        served_name,
        "label for the rest of unpinned traffic (else the newest version)",
    ),
    Variable(
        "GATEWAY_TRUSTED_PROXIES",
        "trusted_proxies",
        networks,
        "proxies (addresses or networks, comma-separated) whose `X-Forwarded-For` names the "
        "client for the canary split",
    ),
    Variable(
        "GATEWAY_MAX_QUEUE_WAIT_S",
        "max_queue_wait_s",
        number(0.01, 60),
        "refuse (503) a request when the images ahead would take longer at the measured speed",
    ),
    Variable(
        "GATEWAY_MAX_QUEUE_IMAGES",
        "max_queue_images",
        integer(1, 1 << 20),
        "refuse (503) a request when more images than this wait",
    ),
    Variable(
        "GATEWAY_QUEUE_TIMEOUT_S",
        "queue_timeout_s",
        number(0.01, 600),
        "drop (503) an admitted request still waiting for the model after this long",
    ),
    Variable(
        "GATEWAY_MAX_CONNECTIONS",
        "max_connections",
        integer(1, 1 << 16),
        "open connections; past this a request closes the longest-idle one to get in (503 "
        "when none is idle); health checks are always answered",
    ),
    Variable(
        "GATEWAY_HEADER_TIMEOUT_S",
        "header_timeout_s",
        number(0.1, 600),
        "a connection that has not sent a whole request head this long after opening (or "
        "after starting one) is closed",
    ),
    Variable(
        "GATEWAY_BODY_TIMEOUT_S",
        "body_timeout_s",
        number(0.1, 600),
        "a request body not received whole this long after the gateway starts reading it gets 408",
    ),
    Variable(
        "GATEWAY_KEEP_ALIVE_S",
        "keep_alive_s",
        integer(1, 600),
        "an idle kept-alive connection is closed after this long (uvicorn's timeout_keep_alive)",
    ),
    Variable(
        "GATEWAY_MAX_HEADER_BYTES",
        "max_header_bytes",
        integer(1024, 1 << 20),
        "a request head larger than this gets 431",
    ),
    Variable(
        "GATEWAY_MAX_BUFFERED_BYTES",
        "max_buffered_bytes",
        integer(1 << 20, 1 << 34),
        "request bodies held in memory at once, all requests together; past it 503",
    ),
    Variable(
        "GATEWAY_PIN_LOAD_INTERVAL_S",
        "pin_load_interval_s",
        number(0, 3600),
        "embedded: at most one load of a version that is not loaded per this many seconds "
        "(others get 503 with Retry-After)",
    ),
    Variable(
        "GATEWAY_FAILED_LOAD_TTL_S",
        "failed_load_ttl_s",
        number(0, 86400),
        "embedded: a version that failed to load is not tried again for this long",
    ),
    Variable(
        "GATEWAY_RENDER_THREADS",
        "render_threads",
        integer(1, 64),
        "threads that encode PNGs (off the event loop)",
    ),
    Variable(
        "GATEWAY_SHUTDOWN_GRACE_S",
        "shutdown_grace_s",
        number(0, 600),
        "on SIGTERM, how long requests in flight may take to finish",
    ),
    Variable(
        "GATEWAY_LOG_LEVEL",
        "log_level",
        choice(("critical", "error", "warning", "info", "debug")),
        "log level",
    ),
)
ENV: dict[str, str] = {v.env: v.field for v in VARIABLES}  # variable name -> field name
assert set(ENV.values()) == {f.name for f in fields(Settings)} - {"canary_label", "stable_label"}


def from_env(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Build Settings from ``environ`` (unset or empty variables keep their defaults). A
    GATEWAY_* or TFSERVING_* variable that is not a setting is refused, naming the nearest."""
    refuse_unknown(environ, PREFIXES, ENV)
    return Settings(**{**read(environ, VARIABLES), **overrides})


def markdown_table() -> str:
    """The README's settings table, from VARIABLES and the defaults of Settings."""
    defaults = Settings()
    rows = ["| variable | default | what |", "|---|---|---|"]
    for var in VARIABLES:
        value = getattr(defaults, var.field)
        shown = "(unset)" if value is None else "(none)" if value == () else str(value)
        rows.append(f"| `{var.env}` | `{shown}` | {var.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
