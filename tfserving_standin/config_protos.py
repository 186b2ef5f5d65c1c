"""Message classes for the text protos that the tensorflow-serving-api wheel has no module for
(``--batching_parameters_file``, ``--monitoring_config_file``): compiled from the copies in
``serving_config/protos`` (same package, names, numbers and types as TF Serving's sources).

protoc runs in its own process: in-process it shares native protobuf state with TensorFlow,
and crashes beside it (seen: a segfault in CI).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

import serving_config

PROTO_ROOT = Path(serving_config.__file__).resolve().parent / "protos"
PROTO_FILES = (
    "tensorflow_serving/config/monitoring_config.proto",
    "tensorflow_serving/servables/tensorflow/batching_parameters.proto",
)
BATCHING_PARAMETERS = "tensorflow.serving.BatchingParameters"
MONITORING_CONFIG = "tensorflow.serving.MonitoringConfig"


@functools.cache
def _pool() -> descriptor_pool.DescriptorPool:
    well_known = resources.files("grpc_tools") / "_proto"  # google/protobuf/wrappers.proto
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "serving.pb"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"--proto_path={PROTO_ROOT}",
                f"--proto_path={well_known}",
                "--include_imports",
                f"--descriptor_set_out={out}",
                *PROTO_FILES,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"protoc could not compile {PROTO_ROOT}: {proc.stderr}")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()  # private pool: no clash with anything imported
    for file_proto in files.file:
        pool.Add(file_proto)
    return pool


def message_class(full_name: str) -> Any:
    """The message class of ``full_name``, e.g. ``tensorflow.serving.BatchingParameters``."""
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(full_name))
