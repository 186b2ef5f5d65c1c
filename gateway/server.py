"""How the gateway's HTTP server runs: uvicorn with the guarded protocol (gateway/connections.py)
and the settings' timeouts, the same for ``python -m gateway`` and the tests' servers."""

from __future__ import annotations

import logging
import resource
from typing import Any

import uvicorn

from gateway.connections import Limits, guarded_protocol
from gateway.settings import Settings

log = logging.getLogger("gateway")


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """``uvicorn.Config`` for ``app`` (a gateway app: its metrics count the connections closed);
    ``overrides`` (host, port, ...) win over the settings."""
    closed = app.state.gateway.metrics.connections_closed
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        # the connection limit, head deadline and size cap live in the protocol; uvicorn's own
        # limit_concurrency would refuse the health checks too once the limit is reached
        "http": guarded_protocol(Limits.of(settings), lambda why: closed.labels(why).inc()),
        "limit_concurrency": None,
        "timeout_keep_alive": settings.keep_alive_s,
        # SIGTERM: stop accepting, let requests in flight finish for up to this long
        "timeout_graceful_shutdown": round(settings.shutdown_grace_s),
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def raise_open_files_limit(settings: Settings) -> None:
    """Let the process hold every connection it may keep open, plus its own files: past the
    soft limit, accept() fails and nothing (not even a health check) gets in."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = settings.max_connections * 2 + 256  # sockets, and the model's and Python's files
    if soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        log.warning(
            "open files are limited to %d (hard limit); GATEWAY_MAX_CONNECTIONS=%d wants %d",
            target,
            settings.max_connections,
            wanted,
        )
