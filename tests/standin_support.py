"""What the TF Serving stand-in's tests share: the SavedModels they serve, built here with the
signature the project exports (``serving_default``, ``z`` float32 [-1, 100] -> ``images``
float32 [-1, 28, 28, 1]), and small REST / gRPC helpers. Not a test module.

Every assertion made through these helpers describes TF Serving behaviour and would hold against
the real server; the stand-in-only parts (``StandIn.set_faults``, in-process unit tests) are
marked where they are used.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import (
    model_management_pb2,
    predict_pb2,
    prediction_log_pb2,
)

from tfserving_standin.harness import StandIn

MODEL = "fashion_gan"
LATENT = 100
TIMEOUT = 10.0
# Quiet, deterministic subprocesses on a small shared machine.
COMMON_FLAGS = (
    "--tensorflow_intra_op_parallelism=1",
    "--tensorflow_inter_op_parallelism=1",
    "--file_system_poll_wait_seconds=1",
    "--max_num_load_retries=1",
    "--load_retry_interval_micros=100000",
)

# no splitting: at most 18 rows a request; merged batches padded to 9 or 18; 2 batches queued
BATCHED = """
max_batch_size { value: 18 }
allowed_batch_sizes: 9
allowed_batch_sizes: 18
batch_timeout_micros { value: 300000 }
max_enqueued_batches { value: 2 }
num_batch_threads { value: 1 }
"""

# splitting: requests up to 64 rows, executed in batches of at most 16
SPLIT = """
max_batch_size { value: 64 }
enable_large_batch_splitting { value: true }
max_execution_batch_size { value: 16 }
allowed_batch_sizes: 8
allowed_batch_sizes: 16
allowed_batch_sizes: 64
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 8 }
num_batch_threads { value: 1 }
"""


# --------------------------------------------------------------------------------- models


class _Generator(tf.Module):  # type: ignore[misc]
    """Same signature as the project's exported generator."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        weights = np.random.default_rng(seed).standard_normal((LATENT, 784)).astype(np.float32)
        self.w = tf.Variable(weights * 0.1)

    @tf.function(  # type: ignore[untyped-decorator]
        input_signature=[tf.TensorSpec([None, LATENT], tf.float32, name="z")]
    )
    def serve(self, z: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"images": tf.reshape(tf.tanh(z @ self.w), [-1, 28, 28, 1])}


@dataclass(frozen=True)
class Models:
    """SavedModel dirs (not version dirs) and a way to run them in-process."""

    a: Path
    b: Path
    b_warm: Path
    corrupt: Path

    def reference(self, which: Path, z: np.ndarray) -> np.ndarray:
        """The SavedModel called directly, for comparing served values."""
        loaded = tf.saved_model.load(str(which))
        out = loaded.signatures["serving_default"](z=tf.constant(z, tf.float32))
        return np.asarray(out["images"].numpy())


def _save(module: _Generator, path: Path) -> Path:
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def _write_warmup(model_dir: Path, records: int) -> None:
    extra = model_dir / "assets.extra"
    extra.mkdir()
    with tf.io.TFRecordWriter(str(extra / "tf_serving_warmup_requests")) as writer:
        for _ in range(records):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "poll"
            request.inputs["z"].CopyFrom(tf.make_tensor_proto(np.zeros((2, LATENT), np.float32)))
            log = prediction_log_pb2.PredictionLog()
            log.predict_log.request.CopyFrom(request)
            writer.write(log.SerializeToString())


def build_models(root: Path) -> Models:
    """Two generators (a, b), b with warmup records, and a corrupt SavedModel, under ``root``."""
    a = _save(_Generator(seed=1), root / "a")
    b = _save(_Generator(seed=2), root / "b")
    b_warm = root / "b_warm"
    shutil.copytree(b, b_warm)
    _write_warmup(b_warm, records=2)
    corrupt = root / "corrupt"
    corrupt.mkdir()
    (corrupt / "saved_model.pb").write_bytes(b"\x0bthis is not a SavedModel protobuf\xff\xff")
    return Models(a=a, b=b, b_warm=b_warm, corrupt=corrupt)


def latents(rows: int, seed: int = 0) -> np.ndarray:
    """``rows`` latent vectors, the same for the same seed."""
    return np.random.default_rng(seed).standard_normal((rows, LATENT)).astype(np.float32)


# --------------------------------------------------------------------------------- helpers


def rest_get(server: StandIn, path: str) -> requests.Response:
    """GET ``path`` on the server's REST port."""
    return requests.get(server.rest_url + path, timeout=TIMEOUT)


def rest_post(server: StandIn, path: str, body: Any, **kwargs: Any) -> requests.Response:
    """POST ``body`` (JSON-encoded unless bytes or text) to ``path``."""
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(server.rest_url + path, data=data, timeout=TIMEOUT, **kwargs)


def rest_error(response: requests.Response, status: int) -> str:
    """The ``{"error": ...}`` message of a JSON error answer with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    message = response.json()["error"]
    assert isinstance(message, str)
    return message


def predict_request(
    model: str, z: np.ndarray, *, content: bool, **spec: Any
) -> predict_pb2.PredictRequest:
    """A gRPC PredictRequest of ``z``, as tensor_content (``content``) or float_val."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    if content:
        request.inputs["z"].CopyFrom(tf.make_tensor_proto(z))
    else:
        proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
        for size in z.shape:
            proto.tensor_shape.dim.add(size=size)
        proto.float_val.extend(z.ravel().tolist())
        request.inputs["z"].CopyFrom(proto)
    return request


def rpc_code(call: Any, *args: Any, **kwargs: Any) -> tuple[grpc.StatusCode, str]:
    """The status code and details of an RPC that must fail."""
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=TIMEOUT, **kwargs)
    return info.value.code(), info.value.details()


def reload_request(config_text: str) -> model_management_pb2.ReloadConfigRequest:
    """A HandleReloadConfigRequest carrying the text-format ModelServerConfig."""
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(config_text, request.config)
    return request


def served_version(server: StandIn, path: str) -> int:
    """The version ``path`` (``/v1/models/m[/labels/L]``) resolves to, from its metadata."""
    response = rest_get(server, path + "/metadata")
    assert response.status_code == 200, response.text
    return int(response.json()["model_spec"]["version"])


def until(what: str, check: Callable[[], bool], within_s: float = 30.0) -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s:g} s: {what}"
        time.sleep(0.05)
