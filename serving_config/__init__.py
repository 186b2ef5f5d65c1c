"""TensorFlow Serving configuration for the ``fashion_gan`` and ``fashion_gan_cond`` models (text
protos).

The files here are what the server reads; compose mounts this folder at ``/config`` and
Kubernetes ships the same text in a ConfigMap (``deploy/k8s/serving-config.yaml``)::

    tensorflow_model_server --model_config_file=/config/models.config \\
        --enable_batching=true --batching_parameters_file=/config/batching.config \\
        --monitoring_config_file=/config/monitoring.config ...

``models.config`` is the starting file: for each model versions 1 and 2 kept, stable -> 1 and
canary -> 2. The trainer seeds a fresh volume with the models that can start (see
training/jobserver.py); the rollout tooling rewrites it atomically and TF Serving re-reads it.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
MODELS_CONFIG = CONFIG_DIR / "models.config"
BATCHING_CONFIG = CONFIG_DIR / "batching.config"
MONITORING_CONFIG = CONFIG_DIR / "monitoring.config"
CONFIG_FILES = (MODELS_CONFIG, BATCHING_CONFIG, MONITORING_CONFIG)

# Where the containers see this folder (compose bind mount, Kubernetes ConfigMap volume).
CONTAINER_CONFIG_DIR = "/config"


def config_path(name: str) -> Path:
    """Path of one config file by name, e.g. ``config_path("models.config")``."""
    for path in CONFIG_FILES:
        if path.name == name:
            return path
    known = ", ".join(p.name for p in CONFIG_FILES)
    raise FileNotFoundError(f"no serving config named {name!r}; known: {known}")
