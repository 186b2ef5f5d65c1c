"""The gateway's one settings object, read from the environment here and nowhere else.

A wrong value stops the start with one sentence that names the variable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from fashion_core.contract import MODEL_NAME, PROFILES

Backend = Literal["embedded", "rest", "grpc"]
BACKENDS: tuple[Backend, ...] = ("embedded", "rest", "grpc")
T = TypeVar("T")


class SettingsError(ValueError):
    """An environment variable has a value the gateway cannot use."""


@dataclass(frozen=True)
class Settings:
    backend: Backend = "embedded"
    model_name: str = MODEL_NAME
    model_base_path: Path = Path("models/fashion_gan")
    # labels for the embedded backend (TF Serving reads its own copy via --model_config_file)
    model_config_file: Path | None = None
    rest_url: str = "http://localhost:8501"
    grpc_target: str = "localhost:8500"
    host: str = "127.0.0.1"
    port: int = 8000
    # train on miss
    train_on_miss: bool = True
    train_profile: str = "quick"
    trainer_url: str | None = None  # a remote job runner (python -m training.jobserver)
    jobs_dir: Path = Path("runs/jobs")
    admin_token: str | None = None
    retry_after_s: int = 30
    # upstream
    upstream_timeout_s: float = 10.0
    status_timeout_s: float = 2.0
    poll_interval_s: float = 1.0
    # batching: continuous (a call starts as soon as the model is free) up to this many images
    max_batch_images: int = 288
    batch_window_ms: float = 3.0
    # request limits
    max_grid: int = 16
    max_scale: int = 8
    max_spacing: int = 8
    max_body_bytes: int = 1 << 20
    # rollouts: share of unpinned traffic sent to label "canary" (0 = off)
    canary_percent: float = 0.0
    # where unpinned traffic goes when no canary share applies: a label (e.g. stable), or the
    # newest AVAILABLE version when unset
    default_label: str | None = None
    canary_label: str = "canary"
    stable_label: str = "stable"
    log_level: str = "info"


# variable name -> field name; every variable the gateway reads is in this table
ENV: dict[str, str] = {
    "GATEWAY_BACKEND": "backend",
    "MODEL_NAME": "model_name",
    "MODEL_BASE_PATH": "model_base_path",
    "MODEL_CONFIG_FILE": "model_config_file",
    "TFSERVING_REST_URL": "rest_url",
    "TFSERVING_GRPC_TARGET": "grpc_target",
    "GATEWAY_HOST": "host",
    "GATEWAY_PORT": "port",
    "GATEWAY_TRAIN_ON_MISS": "train_on_miss",
    "GATEWAY_TRAIN_PROFILE": "train_profile",
    "GATEWAY_TRAINER_URL": "trainer_url",
    "GATEWAY_JOBS_DIR": "jobs_dir",
    "GATEWAY_ADMIN_TOKEN": "admin_token",
    "GATEWAY_RETRY_AFTER_S": "retry_after_s",
    "GATEWAY_UPSTREAM_TIMEOUT_S": "upstream_timeout_s",
    "GATEWAY_STATUS_TIMEOUT_S": "status_timeout_s",
    "GATEWAY_POLL_INTERVAL_S": "poll_interval_s",
    "GATEWAY_MAX_BATCH_IMAGES": "max_batch_images",
    "GATEWAY_BATCH_WINDOW_MS": "batch_window_ms",
    "GATEWAY_MAX_GRID": "max_grid",
    "GATEWAY_MAX_SCALE": "max_scale",
    "GATEWAY_MAX_SPACING": "max_spacing",
    "GATEWAY_MAX_BODY_BYTES": "max_body_bytes",
    "GATEWAY_CANARY_PERCENT": "canary_percent",
    "GATEWAY_DEFAULT_LABEL": "default_label",
    "GATEWAY_LOG_LEVEL": "log_level",
}


def _int(lo: int, hi: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(
                f"{name} must be an integer from {lo} to {hi}, got {raw!r}."
            ) from None
        if not lo <= value <= hi:
            raise SettingsError(f"{name} must be an integer from {lo} to {hi}, got {raw!r}.")
        return value

    return parse


def _float(lo: float, hi: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not lo <= value <= hi:  # NaN fails this too
            raise SettingsError(f"{name} must be a number from {lo:g} to {hi:g}, got {raw!r}.")
        return value

    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        if raw not in options:
            raise SettingsError(f"{name} must be one of {', '.join(options)}, got {raw!r}.")
        return raw

    return parse


def _bool(name: str, raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}.")


def _url(name: str, raw: str) -> str:
    if not re.fullmatch(r"https?://[^/\s]+(/\S*)?", raw):
        raise SettingsError(f"{name} must be an http:// or https:// URL, got {raw!r}.")
    return raw.rstrip("/")


def _target(name: str, raw: str) -> str:
    if not re.fullmatch(r"[^\s:/]+:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5}", raw):
        raise SettingsError(f"{name} must be host:port, got {raw!r}.")
    return raw


def _name(name: str, raw: str) -> str:
    # TF Serving: names match [^/:]+ (contract: REST)
    if not re.fullmatch(r"[^/:\s]+", raw):
        raise SettingsError(f"{name} must be a model name without '/', ':' or spaces, got {raw!r}.")
    return raw


def _text(name: str, raw: str) -> str:
    if not raw:
        raise SettingsError(f"{name} must not be empty.")
    return raw


def _path(name: str, raw: str) -> Path:
    return Path(_text(name, raw))


PARSERS: dict[str, Callable[[str, str], Any]] = {
    "backend": _choice(BACKENDS),
    "model_name": _name,
    "model_base_path": _path,
    "model_config_file": _path,
    "rest_url": _url,
    "grpc_target": _target,
    "host": _text,
    "port": _int(1, 65535),
    "train_on_miss": _bool,
    "train_profile": _choice(PROFILES),
    "trainer_url": _url,
    "jobs_dir": _path,
    "admin_token": _text,
    "retry_after_s": _int(1, 3600),
    "upstream_timeout_s": _float(0.01, 600),
    "status_timeout_s": _float(0.01, 60),
    "poll_interval_s": _float(0.05, 3600),
    "max_batch_images": _int(1, 4096),
    "batch_window_ms": _float(0, 1000),
    "max_grid": _int(1, 64),
    "max_scale": _int(1, 32),
    "max_spacing": _int(0, 64),
    "max_body_bytes": _int(1024, 64 << 20),
    "canary_percent": _float(0, 100),
    "default_label": _name,
    "log_level": _choice(("critical", "error", "warning", "info", "debug")),
}
assert set(PARSERS) == {f.name for f in fields(Settings)} - {"canary_label", "stable_label"}


def from_env(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Build Settings from ``environ`` (unset or empty variables keep their defaults)."""
    values: dict[str, Any] = {}
    for var, field_name in ENV.items():
        raw = environ.get(var, "")
        if raw != "":
            values[field_name] = PARSERS[field_name](var, raw.strip())
    values.update(overrides)
    return Settings(**values)
