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

import uvicorn
from starlette.applications import Starlette

from tests.standin_harness import StandIn, free_ports


@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port; yields its base URL."""
    port = free_ports(1)[0]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def write_models_config(path: Path, base: Path, labels: dict[str, int]) -> Path:
    """A TF Serving models.config for fashion_gan keeping exactly the labelled versions."""
    label_lines = "".join(
        f"    version_labels {{ key: '{k}' value: {v} }}\n" for k, v in labels.items()
    )
    versions = " ".join(f"versions: {v}" for v in sorted(set(labels.values())))
    path.write_text(
        "model_config_list {\n  config {\n    name: 'fashion_gan'\n"
        f"    base_path: '{base.resolve()}'\n    model_platform: 'tensorflow'\n"
        f"    model_version_policy {{ specific {{ {versions} }} }}\n{label_lines}  }}\n}}\n"
    )
    return path


@dataclass
class ModelServer:
    rest_url: str
    grpc_target: str
    standin: StandIn | None  # None: a real TF Serving (fault injection is then skipped)


@contextmanager
def model_server(smoke_base: Path, workdir: Path) -> Iterator[ModelServer]:
    """TF Serving with versions 1 and 2 of the smoke model, labels stable -> 1, canary -> 2.

    With TFSERVING_REST_URL and TFSERVING_GRPC_TARGET set, the tests use that server instead:
    the versions are copied into TFSERVING_MODEL_BASE_PATH, and the server must run with
    ``--model_config_file=$TFSERVING_MODEL_BASE_PATH/../models.config`` (written here) and a
    config poll (``--model_config_file_poll_wait_seconds=1``).
    """
    rest, grpc_target = (
        os.environ.get("TFSERVING_REST_URL"),
        os.environ.get("TFSERVING_GRPC_TARGET"),
    )
    if rest and grpc_target:
        base = Path(os.environ["TFSERVING_MODEL_BASE_PATH"])
        for v in (1, 2):
            if not (base / str(v)).exists():
                shutil.copytree(smoke_base / str(v), base / str(v))
        write_models_config(base.parent / "models.config", base, {"stable": 1, "canary": 2})
        yield ModelServer(rest.rstrip("/"), grpc_target, None)
        return
    config = write_models_config(workdir / "models.config", smoke_base, {"stable": 1, "canary": 2})
    # labels in a start-up config name versions that are not loaded yet: the real server
    # refuses that without this flag (contract: config file)
    flags = [
        "--model_config_file_poll_wait_seconds=1",
        "--file_system_poll_wait_seconds=1",
        "--allow_version_labels_for_unavailable_models=true",
    ]
    with StandIn(config_file=config, extra_flags=flags) as standin:
        yield ModelServer(standin.rest_url, standin.grpc_target, standin)
