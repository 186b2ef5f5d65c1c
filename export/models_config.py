"""Read and atomically rewrite a TF Serving ``models.config`` (text ModelServerConfig): the
version policy and labels of one model. No TensorFlow import (protobuf only)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

HEADER = (
    "# TensorFlow Serving model config, written by `python -m export.rollout`.\n"
    "# Labels name AVAILABLE versions; the policy keeps every labelled version (and the previous\n"
    "# stable one, for rollback) loaded. Edit with the rollout command, not by hand.\n"
)


class ConfigFileError(Exception):
    """The config file is missing, does not parse, or has no entry for the model."""


@dataclass
class ModelEntry:
    name: str
    base_path: str
    versions: list[int] = field(default_factory=list)  # the specific policy
    labels: dict[str, int] = field(default_factory=dict)


def read(
    path: Path, model_name: str
) -> tuple[model_server_config_pb2.ModelServerConfig, ModelEntry]:
    try:
        config = text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())
    except OSError as exc:
        raise ConfigFileError(f"cannot read {path}: {exc.strerror}.") from None
    except text_format.ParseError as exc:
        raise ConfigFileError(f"{path} is not a valid models.config: {exc}.") from None
    for model in config.model_config_list.config:
        if model.name == model_name:
            policy = model.model_version_policy
            versions = list(policy.specific.versions) if policy.HasField("specific") else []
            return config, ModelEntry(
                model.name,
                model.base_path,
                sorted(int(v) for v in versions),
                {k: int(v) for k, v in model.version_labels.items()},
            )
    raise ConfigFileError(f"{path} has no model named {model_name!r}.")


def write(path: Path, config: model_server_config_pb2.ModelServerConfig, entry: ModelEntry) -> None:
    """Replace the model's policy and labels, then write the whole file atomically (write a
    temporary file in the same folder and rename it: TF Serving never reads half a file)."""
    for model in config.model_config_list.config:
        if model.name == entry.name:
            model.model_version_policy.Clear()
            model.model_version_policy.specific.versions.extend(sorted(set(entry.versions)))
            model.version_labels.clear()
            for label, version in sorted(entry.labels.items()):
                model.version_labels[label] = version
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(HEADER + text_format.MessageToString(config))
    os.replace(tmp, path)
