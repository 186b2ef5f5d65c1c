"""Reading and validating ``ModelServerConfig`` the way ServerCore does.

Messages and codes follow tensorflow_serving/model_servers/server_core.cc so a test that asserts on
a rejected config sees the same thing from the stand-in and from the real server.
"""

from __future__ import annotations

import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from .errors import Code, ServingError

ModelServerConfig = model_server_config_pb2.ModelServerConfig
ModelConfig = model_server_config_pb2.ModelConfig

TENSORFLOW_PLATFORM = "tensorflow"
# ModelType.TENSORFLOW in the deprecated model_type enum.
_MODEL_TYPE_TENSORFLOW = 1


def read_config_file(path: str) -> model_server_config_pb2.ModelServerConfig:
    """Parse a text-format ModelServerConfig file (main.cc ParseProtoTextFile)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ServingError(Code.NOT_FOUND, f"{path}; {exc.strerror}") from exc
    config = ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise ServingError(Code.INVALID_ARGUMENT, f"Invalid protobuf file: '{path}'") from exc
    return config


def single_model_config(name: str, base_path: str) -> model_server_config_pb2.ModelServerConfig:
    """The config main.cc builds from --model_name / --model_base_path."""
    config = ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name = name
    model.base_path = base_path
    model.model_platform = TENSORFLOW_PLATFORM
    return config


def _is_relative(path: str) -> bool:
    # server_core.cc UriIsRelativePath: no scheme, no host, not absolute.
    return "://" not in path and not os.path.isabs(path)


def validate_model_config_list(config_list: model_server_config_pb2.ModelConfigList) -> None:
    """Unique names and absolute base paths (server_core.cc ValidateModelConfigList)."""
    names: set[str] = set()
    for model in config_list.config:
        if model.name in names:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"Illegal to list model {model.name} multiple times in config list",
            )
        names.add(model.name)
    for model in config_list.config:
        if _is_relative(model.base_path):
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"Expected model {model.name} to have an absolute path or URI; "
                f"got base_path()={model.base_path}",
            )


def get_platform(model: model_server_config_pb2.ModelConfig) -> str:
    """The model's platform name (server_core.cc GetPlatform)."""
    if model.model_type != 0:
        if model.model_platform:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                "ModelServerConfig::model_platform.",
            )
        if model.model_type != _MODEL_TYPE_TENSORFLOW:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"ModelServerConfig::model_type choice {model.model_type} not supported.",
            )
        return TENSORFLOW_PLATFORM
    if not model.model_platform:
        raise ServingError(
            Code.INVALID_ARGUMENT,
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            "ModelServerConfig::model_platform.",
        )
    return str(model.model_platform)


def validate_no_models_change_platforms(
    old: model_server_config_pb2.ModelConfigList, new: model_server_config_pb2.ModelConfigList
) -> None:
    """A model kept across a reload may not change platform."""
    old_platforms = {model.name: get_platform(model) for model in old.config}
    for model in new.config:
        if model.name not in old_platforms:
            continue
        new_platform = get_platform(model)
        if new_platform != old_platforms[model.name]:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"Illegal to change a model's platform. For model {model.name} platform was "
                f"{old_platforms[model.name]} and new platform requested is {new_platform}",
            )


def check_platforms_supported(config_list: model_server_config_pb2.ModelConfigList) -> None:
    """Only the tensorflow platform exists here (server_core.cc CreateStoragePathRoutes)."""
    for model in config_list.config:
        platform = get_platform(model)
        if platform != TENSORFLOW_PLATFORM:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f"Model {model.name} requests unsupported platform {platform}",
            )
