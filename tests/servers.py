"""Real servers on loopback ports for tests: a gateway app under uvicorn in a thread, and the
TF Serving endpoint the backend tests talk to (the stand-in, or a real TF Serving when
TFSERVING_REST_URL / TFSERVING_GRPC_TARGET point at one)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

import serving_config
from fashion_core.contract import MODEL_NAME
from gateway.settings import Settings
from tests.tfserving_flags import Mounts, prepare_mounts, standin_flags
from tfserving_standin.harness import StandIn
from tfserving_standin.publishing import wait_for_version


@contextmanager
def serve(app: Starlette, **config: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a loopback port it binds itself (port 0, read back once it
    listens); yields its base URL. ``config``: more uvicorn.Config options. A gateway app runs
    exactly as ``python -m gateway`` runs it (gateway/server.py: its protocol and timeouts)."""
    options: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "log_level": "warning"}
    options |= {"lifespan": "on", **config}
    gateway = getattr(app.state, "gateway", None)
    if gateway is not None:
        from gateway.server import uvicorn_config

        server = uvicorn.Server(uvicorn_config(app, gateway.settings, **options))
    else:
        server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:  # set by uvicorn once the socket listens and lifespan ran
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def labels_config(labels: dict[str, int], versions: list[int] | None = None) -> str:
    """A models.config (container paths) for fashion_gan: the policy keeps ``versions`` (default:
    the labelled ones) and ``labels`` name versions."""
    label_lines = "".join(
        f"    version_labels {{ key: '{k}' value: {v} }}\n" for k, v in labels.items()
    )
    kept = sorted(set(versions if versions is not None else labels.values()))
    policy = " ".join(f"versions: {v}" for v in kept)
    return (
        "model_config_list {\n  config {\n    name: 'fashion_gan'\n"
        "    base_path: '/models/fashion_gan'\n    model_platform: 'tensorflow'\n"
        f"    model_version_policy {{ specific {{ {policy} }} }}\n{label_lines}  }}\n}}\n"
    )


def embedded_settings(smoke_base: Path, tmp: Path) -> Settings:
    """An embedded gateway on the smoke versions with labels stable -> 1 and canary -> 2 (in a
    models.config under ``tmp``), and no training on a miss."""
    config = tmp / "models.config"
    config.write_text(labels_config({"stable": 1, "canary": 2}))
    return Settings(
        model_base_path=smoke_base,
        model_config_file=config,
        jobs_dir=tmp / "jobs",
        train_on_miss=False,
    )


def compose_standin(mounts: Mounts, **timing: int) -> StandIn:
    """A stand-in started as docker-compose.yml starts TF Serving (tests/tfserving_flags.py),
    on ``mounts``; ``timing`` may shorten the poll intervals. Not started yet."""
    flags = standin_flags(mounts, **timing)
    config = [f for f in flags if f.startswith("--model_config_file=")]
    assert config == [f"--model_config_file={mounts.models_config}"], config
    return StandIn(
        config_file=mounts.models_config, extra_flags=[f for f in flags if f not in config]
    )


def copy_versions(source: Path, base: Path, versions: tuple[int, ...] = (1, 2)) -> None:
    for v in versions:
        if not (base / str(v)).exists():
            shutil.copytree(source / str(v), base / str(v))


BACKENDS = ("embedded", "rest", "grpc")


def settings_for(backend: str, server: ModelServer, base: Path, **extra: object) -> Settings:
    return Settings(
        backend=backend,  # type: ignore[arg-type]
        rest_url=server.rest_url,
        grpc_target=server.grpc_target,
        model_base_path=base,
        model_config_file=base.parent / "models.config",
        train_on_miss=False,
        jobs_dir=base.parent / "jobs",
        # these tests are not about admission control (test_admission, test_floods)
        max_queue_wait_s=30,
        queue_timeout_s=60,
        **extra,  # type: ignore[arg-type]
    )


@dataclass
class ModelServer:
    rest_url: str
    grpc_target: str
    standin: StandIn | None  # None: a real TF Serving (fault injection is then skipped)


@contextmanager
def model_server(smoke_base: Path, workdir: Path) -> Iterator[ModelServer]:
    """TF Serving started with compose's flags, serving versions 1 and 2 of the smoke model
    with the starting models.config (stable -> 1, canary -> 2).

    With TFSERVING_REST_URL, TFSERVING_GRPC_TARGET and REAL_TFSERVING_MODELS_DIR set, the tests use
    that server instead (see the README): the versions and models.config are written into
    REAL_TFSERVING_MODELS_DIR, the host folder the server sees as /models, and the tests wait until
    it has loaded them.
    """
    rest, grpc_target = (
        os.environ.get("TFSERVING_REST_URL"),
        os.environ.get("TFSERVING_GRPC_TARGET"),
    )
    if rest and grpc_target:
        models = Path(os.environ["REAL_TFSERVING_MODELS_DIR"])
        mounts = Mounts(models, workdir / "config")
        copy_versions(smoke_base, mounts.base_path)
        (models / "models.config").write_text(serving_config.MODELS_CONFIG.read_text())
        wait_for_version(rest.rstrip("/"), MODEL_NAME, 2, timeout_s=180)
        yield ModelServer(rest.rstrip("/"), grpc_target, None)
        return
    mounts = prepare_mounts(workdir)
    copy_versions(smoke_base, mounts.base_path)
    with compose_standin(mounts, model_config_file_poll_wait_seconds=1) as standin:
        yield ModelServer(standin.rest_url, standin.grpc_target, standin)
