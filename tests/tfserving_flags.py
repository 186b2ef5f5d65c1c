"""The TF Serving command line of docker-compose.yml's ``tfserving`` service: the one source of
the server's flags for compose, Kubernetes (tests/test_deploy_files.py checks that the
manifest's args equal it), the README's real-server recipe (checked there too) and every test
that starts a TF Serving stand-in.

In a container the server sees the models volume at ``/models`` and the config folder at
``/config``; here those paths are remapped to folders of the test. Ports are the harness's
(``--port`` / ``--rest_api_port`` are dropped), and tests may shorten the poll intervals
(``TIMING_FLAGS``); no other flag can be changed, so a limit that compose sets is a limit the
tests meet.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

import serving_config
from fashion_core.contract import MODEL_NAME
from fashion_core.models_config import seed_text
from fashion_core.versions import list_versions

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
PORT_FLAGS = ("--port", "--rest_api_port")
TIMING_FLAGS = ("--model_config_file_poll_wait_seconds", "--file_system_poll_wait_seconds")
CONTAINER_MODELS, CONTAINER_CONFIG = "/models", "/config"


def compose_command() -> list[str]:
    """The flags of the tfserving service, as compose passes them to the server."""
    command: list[str] = yaml.safe_load(COMPOSE.read_text())["services"]["tfserving"]["command"]
    return command


@dataclass(frozen=True)
class Mounts:
    """Host folders standing in for the container's /models and /config."""

    models: Path
    config: Path

    @property
    def base_path(self) -> Path:
        return self.models / "fashion_gan"

    @property
    def models_config(self) -> Path:
        return self.models / "models.config"

    def host_path(self, container_path: str) -> str:
        for prefix, host in ((CONTAINER_MODELS, self.models), (CONTAINER_CONFIG, self.config)):
            if container_path == prefix or container_path.startswith(prefix + "/"):
                return str(host) + container_path[len(prefix) :]
        return container_path


def prepare_mounts(root: Path, models_config: str | None = None) -> Mounts:
    """Folders as a fresh deployment has them: /config holds serving_config's batching and
    monitoring files, /models an empty base path and the starting models.config as the
    trainer seeds it on a fresh volume (training/jobserver.py: the model it trains on a miss,
    fashion_gan, and none without a version), with its base_path remapped to the host folder.
    ``models_config`` replaces that starting text (container paths, remapped too)."""
    mounts = Mounts(root / "models", root / "config")
    mounts.base_path.mkdir(parents=True, exist_ok=True)
    mounts.config.mkdir(parents=True, exist_ok=True)
    for name in ("batching.config", "monitoring.config"):
        shutil.copy(serving_config.config_path(name), mounts.config / name)
    if models_config is None:
        models_config = seed_text(
            serving_config.MODELS_CONFIG.read_text(),
            lambda base: bool(list_versions(Path(mounts.host_path(base)))),
            always=(MODEL_NAME,),
        )
    write_models_config(mounts, models_config)
    return mounts


def write_models_config(mounts: Mounts, text: str) -> Path:
    """Write a models.config given with container paths, as the stand-in sees it."""
    remapped = text.replace(f'"{CONTAINER_MODELS}/', f'"{mounts.models}/').replace(
        f"'{CONTAINER_MODELS}/", f"'{mounts.models}/"
    )
    tmp = mounts.models_config.with_name(".models.config.tmp")
    tmp.write_text(remapped)
    tmp.replace(mounts.models_config)  # the server never reads half a file
    return mounts.models_config


def standin_flags(mounts: Mounts, **timing: int) -> list[str]:
    """compose's flags with container paths mapped to ``mounts``; ``timing`` may set the
    poll intervals (``model_config_file_poll_wait_seconds=1``) and nothing else."""
    overrides = {f"--{k}": str(v) for k, v in timing.items()}
    unknown = set(overrides) - set(TIMING_FLAGS)
    if unknown:
        raise ValueError(f"only {', '.join(TIMING_FLAGS)} may differ from compose: {unknown}")
    flags = []
    for flag in compose_command():
        name, _, value = flag.partition("=")
        if name in PORT_FLAGS or name in overrides:
            continue
        flags.append(f"{name}={mounts.host_path(value)}" if value else name)
    return flags + [f"{k}={v}" for k, v in overrides.items()]
