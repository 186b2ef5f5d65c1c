"""End-to-end tests of the TensorFlow Serving stand-in, over loopback, as a subprocess.

Every assertion that goes through ``rest_url`` / ``grpc_target`` describes TF Serving behaviour
(as tensorflow/serving's sources have it; the stand-in's modules cite the files) and would hold
against the real server; the stand-in-only parts (``set_faults``, the in-process unit tests)
are marked. The SavedModels are built here with the signature the project exports:
``serving_default``, ``z`` float32 [-1, 100] -> ``images`` float32 [-1, 28, 28, 1].

All stand-in processes of the module start together in one fixture so their TensorFlow imports
overlap; run with ``.venv/bin/python -m pytest tests/test_standin.py``.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
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
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)

from tfserving_standin import batching, json_request, json_response, json_values
from tfserving_standin.errors import Code, ServingError
from tfserving_standin.harness import StandIn, publish_version, wait_for_version

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


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = tmp_path_factory.mktemp("saved")
    a = _save(_Generator(seed=1), root / "a")
    b = _save(_Generator(seed=2), root / "b")
    b_warm = root / "b_warm"
    shutil.copytree(b, b_warm)
    _write_warmup(b_warm, records=2)
    corrupt = root / "corrupt"
    corrupt.mkdir()
    (corrupt / "saved_model.pb").write_bytes(b"\x0bthis is not a SavedModel protobuf\xff\xff")
    return Models(a=a, b=b, b_warm=b_warm, corrupt=corrupt)


def _z(rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, LATENT)).astype(np.float32)


# --------------------------------------------------------------------------------- servers


@dataclass
class Fleet:
    """The module's stand-ins; each test fixture waits only for the one it uses."""

    single: StandIn
    multi: StandIn
    corrupt: StandIn
    empty: StandIn
    batched: StandIn  # --enable_batching, tight limits; model "gan2" from a polled config file
    split: StandIn  # --enable_batching with enable_large_batch_splitting
    empty_base: Path
    empty_config: Path
    poll_base: Path
    gan2_config: Path


MULTI_CONFIG = """
model_config_list {
  config {
    name: 'gan'  base_path: '%(gan)s'  model_platform: 'tensorflow'
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: 'stable' value: %(stable)d }
    version_labels { key: 'canary' value: %(canary)d }
  }
  config { name: 'poll'  base_path: '%(poll)s'  model_platform: 'tensorflow' }
}
"""

GAN2_CONFIG = """
model_config_list {
  config {
    name: 'gan2'  base_path: '%(base)s'  model_platform: 'tensorflow'
    model_version_policy { specific { %(versions)s } }
    version_labels { key: 'stable' value: %(stable)d }
  }
}
"""

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

EMPTY_CONFIG = """
model_config_list {
  config { name: 'empty'  base_path: '%(base)s'  model_platform: 'tensorflow'  %(labels)s }
}
"""


@pytest.fixture(scope="module")
def fleet(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("bases")
    publish_version(models.a, root / "single", 1)
    publish_version(models.a, root / "gan", 1)
    publish_version(models.b, root / "gan", 2)
    publish_version(models.a, root / "poll", 1)
    publish_version(models.a, root / "corrupt", 1)
    publish_version(models.corrupt, root / "corrupt", 2)
    (root / "empty").mkdir()
    empty_config = root / "empty.config"
    empty_config.write_text(EMPTY_CONFIG % {"base": root / "empty", "labels": ""})
    config = root / "models.config"
    config.write_text(
        MULTI_CONFIG % {"gan": root / "gan", "poll": root / "poll", "stable": 1, "canary": 2}
    )
    publish_version(models.a, root / "gan2", 1)
    publish_version(models.b, root / "gan2", 2)
    gan2_config = root / "gan2.config"
    gan2_config.write_text(
        GAN2_CONFIG % {"base": root / "gan2", "versions": "versions: 1", "stable": 1}
    )
    (root / "batched.config").write_text(BATCHED)
    (root / "split.config").write_text(SPLIT)
    fleet = Fleet(
        single=StandIn(
            model_name=MODEL,
            base_path=root / "single",
            extra_flags=[*COMMON_FLAGS, "--rest_api_timeout_in_ms=1000"],
        ),
        # Labels in a start-up config need this flag on the real server too: they are checked
        # before any version has loaded.
        multi=StandIn(
            config_file=config,
            extra_flags=[
                *COMMON_FLAGS,
                "--allow_version_labels_for_unavailable_models=true",
                "--enable_serialization_as_tensor_content=true",
            ],
        ),
        corrupt=StandIn(model_name="broken", base_path=root / "corrupt", extra_flags=COMMON_FLAGS),
        empty=StandIn(
            config_file=empty_config,
            extra_flags=[*COMMON_FLAGS, "--model_config_file_poll_wait_seconds=1"],
        ),
        # as compose runs TF Serving: batching, a polled config, labels allowed at start
        batched=StandIn(
            config_file=gan2_config,
            extra_flags=[
                *COMMON_FLAGS,
                "--model_config_file_poll_wait_seconds=1",
                "--allow_version_labels_for_unavailable_models=true",
                "--enable_batching=true",
                f"--batching_parameters_file={root / 'batched.config'}",
            ],
        ),
        split=StandIn(
            model_name=MODEL,
            base_path=root / "single",
            extra_flags=[
                *COMMON_FLAGS,
                "--enable_batching",
                f"--batching_parameters_file={root / 'split.config'}",
            ],
        ),
        empty_base=root / "empty",
        empty_config=empty_config,
        poll_base=root / "poll",
        gan2_config=gan2_config,
    )
    servers = [
        fleet.single,
        fleet.multi,
        fleet.corrupt,
        fleet.empty,
        fleet.batched,
        fleet.split,
    ]
    try:
        for server in servers:
            server.start(wait=False)
        yield fleet
    finally:
        for server in servers:
            server.close()


@pytest.fixture(scope="module")
def single(fleet: Fleet) -> StandIn:
    return fleet.single.wait_ready()


@pytest.fixture(scope="module")
def multi(fleet: Fleet) -> StandIn:
    return fleet.multi.wait_ready()


@pytest.fixture(scope="module")
def single_stubs(
    single: StandIn,
) -> Iterator[tuple[Any, Any]]:
    with grpc.insecure_channel(single.grpc_target) as channel:
        yield (
            prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel),
        )


@pytest.fixture(scope="module")
def multi_stubs(multi: StandIn) -> Iterator[tuple[Any, Any]]:
    with grpc.insecure_channel(multi.grpc_target) as channel:
        yield (
            prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel),
        )


# --------------------------------------------------------------------------------- helpers


def _get(server: StandIn, path: str) -> requests.Response:
    return requests.get(server.rest_url + path, timeout=TIMEOUT)


def _post(server: StandIn, path: str, body: Any, **kwargs: Any) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(server.rest_url + path, data=data, timeout=TIMEOUT, **kwargs)


def _error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    message = response.json()["error"]
    assert isinstance(message, str)
    return message


def _predict_request(
    model: str, z: np.ndarray, *, content: bool, **spec: Any
) -> predict_pb2.PredictRequest:
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


def _rpc_code(call: Any, *args: Any, **kwargs: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=TIMEOUT, **kwargs)
    return info.value.code(), info.value.details()


# --------------------------------------------------------------------------------- REST


def test_status_body(single: StandIn) -> None:
    response = _get(single, f"/v1/models/{MODEL}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert _get(single, f"/v1/models/{MODEL}/versions/1").json() == response.json()


def test_metadata_body(single: StandIn) -> None:
    response = _get(single, f"/v1/models/{MODEL}/metadata")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    z = signature["inputs"]["z"]
    assert z["dtype"] == "DT_FLOAT"
    assert z["name"] == "serving_default_z:0"
    assert z["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}, {"size": "100", "name": ""}],
        "unknown_rank": False,
    }
    images = signature["outputs"]["images"]
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
    assert _get(single, f"/v1/models/{MODEL}/versions/1/metadata").json() == body


def test_predict_row_and_columnar(single: StandIn, models: Models) -> None:
    z = _z(3)
    expected = models.reference(models.a, z)
    row = _post(single, f"/v1/models/{MODEL}:predict", {"instances": z.tolist()})
    assert row.status_code == 200, row.text
    assert row.headers["Content-Type"] == "application/json"
    assert list(row.json()) == ["predictions"]
    np.testing.assert_array_equal(np.asarray(row.json()["predictions"], np.float32), expected)

    columnar = _post(single, f"/v1/models/{MODEL}/versions/1:predict", {"inputs": z.tolist()})
    assert columnar.status_code == 200, columnar.text
    assert list(columnar.json()) == ["outputs"]
    np.testing.assert_array_equal(np.asarray(columnar.json()["outputs"], np.float32), expected)

    named = _post(single, f"/v1/models/{MODEL}:predict", {"inputs": {"z": z.tolist()}})
    np.testing.assert_array_equal(np.asarray(named.json()["outputs"], np.float32), expected)
    objects = _post(
        single,
        f"/v1/models/{MODEL}:predict",
        {"signature_name": "serving_default", "instances": [{"z": r} for r in z.tolist()]},
    )
    np.testing.assert_array_equal(np.asarray(objects.json()["predictions"], np.float32), expected)


def test_predict_gzip_body_and_nan(single: StandIn, models: Models) -> None:
    z = _z(1)
    z[0, 0] = np.nan
    body = ('{"instances": ' + json.dumps(z.tolist()) + "}").encode()  # json writes bare NaN
    response = _post(
        single,
        f"/v1/models/{MODEL}:predict",
        gzip.compress(body),
        headers={"Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    # tanh(NaN . w) is NaN everywhere; TF Serving prints it as a bare NaN token.
    assert "NaN" in response.text
    values = np.asarray(response.json()["predictions"], np.float32)
    assert values.shape == (1, 28, 28, 1) and np.isnan(values).all()
    infinite = _post(
        single, f"/v1/models/{MODEL}:predict", '{"instances": [[Infinity' + ", 0" * 99 + "]]}"
    )
    assert infinite.status_code == 200, infinite.text


def test_predict_concurrent_requests(single: StandIn, models: Models) -> None:
    inputs = [_z(2, seed=s) for s in range(8)]
    results: dict[int, np.ndarray] = {}

    def call(index: int) -> None:
        answer = _post(single, f"/v1/models/{MODEL}:predict", {"instances": inputs[index].tolist()})
        results[index] = np.asarray(answer.json()["predictions"], np.float32)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, z in enumerate(inputs):
        np.testing.assert_array_equal(results[index], models.reference(models.a, z))


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/v1/models/nope:predict", {"instances": [[0.0]]}, 404,
         "Servable not found for request: Latest(nope)"),
        ("GET", "/v1/models/nope/metadata", None, 404,
         "Servable not found for request: Latest(nope)"),
        ("POST", f"/v1/models/{MODEL}/versions/99:predict", {"instances": [[0.0]]}, 404,
         f"Servable not found for request: Specific({MODEL}, 99)"),
        ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        ("GET", f"/v1/models/{MODEL}/versions/99", None, 404,
         f"Could not find version 99 of model {MODEL}"),
        ("POST", f"/v1/models/{MODEL}/labels/nope:predict", {"instances": [[0.0]]}, 400,
         "Unrecognized servable version label: nope"),
        ("GET", f"/v1/models/{MODEL}/labels/nope/metadata", None, 400,
         "Unrecognized servable version label: nope"),
        ("POST", f"/v1/models/{MODEL}:predict", {"signature_name": "nope", "instances": [[0.0]]},
         400, 'Serving signature name: "nope" not found in signature def'),
        ("POST", f"/v1/models/{MODEL}:predict", {"instances": [[0.0]], "inputs": [[0.0]]}, 400,
         "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"),
        ("POST", f"/v1/models/{MODEL}:predict", {"signature_name": "serving_default"}, 400,
         "Missing 'inputs' or 'instances' key"),
        ("POST", f"/v1/models/{MODEL}:predict", {"instances": []}, 400,
         "No values in 'instances' array"),
        ("POST", f"/v1/models/{MODEL}:predict", {"signature_name": 3}, 400,
         "'signature_name' key must be a string value."),
        ("POST", f"/v1/models/{MODEL}:predict", b"", 400,
         "JSON Parse error: The document is empty"),
        ("POST", f"/v1/models/{MODEL}:predict", b"[1, 2]", 400, "Is not object"),
        ("GET", "/v1/models", None, 400, "Missing model name in request."),
        ("GET", "/v1/foo", None, 400, "Malformed request: GET /v1/foo"),
        ("POST", f"/v1/models/{MODEL}", {}, 400, f"Malformed request: POST /v1/models/{MODEL}"),
        ("GET", f"/v1/models/{MODEL}:predict", None, 400,
         f"Malformed request: GET /v1/models/{MODEL}:predict"),
    ],
)  # fmt: skip
def test_rest_error_table(
    single: StandIn, method: str, path: str, body: Any, status: int, message: str
) -> None:
    response = _get(single, path) if method == "GET" else _post(single, path, body)
    assert message in _error(response, status)


def test_rest_input_errors(single: StandIn) -> None:
    path = f"/v1/models/{MODEL}:predict"
    # Bad JSON is reported before the (unknown) model is looked up.
    assert _error(_post(single, "/v1/models/nope:predict", b"{"), 400).startswith(
        "JSON Parse error:"
    )
    wrong_type = _error(_post(single, path, {"instances": [["a"] * 100]}), 400)
    assert 'JSON Value: "a" Type: String is not of expected type: float' in wrong_type
    ragged = _error(_post(single, path, {"instances": [[1.0] * 100, [1.0] * 99]}), 400)
    assert "Failed to process element: 1 of 'instances' list." in ragged
    assert "Expecting tensor size: 100 but got: 99" in ragged
    reshaped = _error(_post(single, path, {"instances": [[[1.0, 2.0]], [[1.0], [2.0]]]}), 400)
    assert "Expecting shape [1,2] but got: [2,1]" in reshaped
    nested = _error(_post(single, path, {"inputs": [[1.0] * 100, [1.0] * 99]}), 400)
    assert "Encountered list at unexpected size: 99 at level: 1 expected size: 100" in nested
    # A consistent but wrong width reaches the model, which rejects it (INVALID_ARGUMENT).
    _error(_post(single, path, {"instances": [[1.0] * 99]}), 400)


def test_rest_outside_v1_is_plain_404(single: StandIn) -> None:
    response = _get(single, "/healthz")
    assert response.status_code == 404
    assert "json" not in response.headers.get("Content-Type", "")
    with pytest.raises(ValueError):
        response.json()


def test_rest_timeout_is_504(single: StandIn) -> None:
    # STAND-IN ONLY knob: a slow model; the server runs with --rest_api_timeout_in_ms=1000.
    single.set_faults(delay_ms=1500)
    try:
        response = _post(single, f"/v1/models/{MODEL}:predict", {"instances": _z(1).tolist()})
        assert response.status_code == 504, response.text
        assert response.headers["Content-Type"] == "application/json"
        assert "error" in response.json()
    finally:
        single.clear_faults()


def test_injected_errors_map_like_tf_codes(single: StandIn, single_stubs: tuple[Any, Any]) -> None:
    # STAND-IN ONLY knob: the next predicts fail with a chosen TF code.
    prediction, _ = single_stubs
    single.set_faults(error="UNAVAILABLE:busy", error_count=2)
    try:
        assert (
            _error(_post(single, f"/v1/models/{MODEL}:predict", {"instances": _z(1).tolist()}), 503)
            == "busy"
        )
        code, details = _rpc_code(prediction.Predict, _predict_request(MODEL, _z(1), content=True))
        assert (code, details) == (grpc.StatusCode.UNAVAILABLE, "busy")
        ok = _post(single, f"/v1/models/{MODEL}:predict", {"instances": _z(1).tolist()})
        assert ok.status_code == 200
        single.set_faults(error="RESOURCE_EXHAUSTED")
        _error(_post(single, f"/v1/models/{MODEL}:predict", {"instances": _z(1).tolist()}), 429)
    finally:
        single.clear_faults()


# --------------------------------------------------------------------------------- gRPC


@pytest.mark.parametrize("content", [False, True], ids=["float_val", "tensor_content"])
def test_grpc_predict(single_stubs: tuple[Any, Any], models: Models, content: bool) -> None:
    prediction, _ = single_stubs
    z = _z(2, seed=5)
    # One call without a client deadline (the server must not need one).
    timeout = TIMEOUT if content else None
    response = prediction.Predict(_predict_request(MODEL, z, content=content), timeout=timeout)
    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    images = response.outputs["images"]
    # Default serialisation: typed float_val fields, not tensor_content.
    assert images.tensor_content == b"" and len(images.float_val) == 2 * 784
    np.testing.assert_array_equal(tf.make_ndarray(images), models.reference(models.a, z))


def test_grpc_predict_output_filter_and_errors(single_stubs: tuple[Any, Any]) -> None:
    prediction, _ = single_stubs
    request = _predict_request(MODEL, _z(1), content=True)
    request.output_filter.append("images")
    assert list(prediction.Predict(request, timeout=TIMEOUT).outputs) == ["images"]
    request.output_filter[:] = ["nope"]
    assert _rpc_code(prediction.Predict, request)[0] == grpc.StatusCode.INVALID_ARGUMENT

    z = _z(1)
    codes = grpc.StatusCode
    cases = [
        (_predict_request("nope", z, content=True), codes.NOT_FOUND),
        (_predict_request(MODEL, z, content=True, version=99), codes.NOT_FOUND),
        (_predict_request(MODEL, z, content=True, version_label="x"), codes.INVALID_ARGUMENT),
        (_predict_request(MODEL, z, content=True, signature_name="x"), codes.FAILED_PRECONDITION),
        # The signature wants float32; float64 fails in the model call, as in a session run.
        (_predict_request(MODEL, z.astype(np.float64), content=True), codes.INVALID_ARGUMENT),
    ]
    for bad, expected in cases:
        assert _rpc_code(prediction.Predict, bad)[0] == expected, bad
    wrong_alias = _predict_request(MODEL, _z(1), content=True)
    wrong_alias.inputs["x"].CopyFrom(wrong_alias.inputs.pop("z"))
    code, details = _rpc_code(prediction.Predict, wrong_alias)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "input tensor alias not found in signature: x" in details


def test_grpc_deadline(single: StandIn, single_stubs: tuple[Any, Any]) -> None:
    prediction, _ = single_stubs
    single.set_faults(delay_ms=1500)  # STAND-IN ONLY: a slow model
    try:
        with pytest.raises(grpc.RpcError) as info:
            prediction.Predict(_predict_request(MODEL, _z(1), content=True), timeout=0.3)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        single.clear_faults()


def test_grpc_metadata_and_status(single_stubs: tuple[Any, Any]) -> None:
    prediction, model_service = single_stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL
    assert _rpc_code(prediction.GetModelMetadata, request)[0] == grpc.StatusCode.INVALID_ARGUMENT
    request.metadata_field.append("signature_def")
    response = prediction.GetModelMetadata(request, timeout=TIMEOUT)
    assert response.model_spec.name == MODEL and response.model_spec.version.value == 1
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    serving = signatures.signature_def["serving_default"]
    assert serving.inputs["z"].dtype == types_pb2.DT_FLOAT
    assert [d.size for d in serving.inputs["z"].tensor_shape.dim] == [-1, LATENT]
    assert [d.size for d in serving.outputs["images"].tensor_shape.dim] == [-1, 28, 28, 1]
    request.model_spec.name = "nope"
    assert _rpc_code(prediction.GetModelMetadata, request)[0] == grpc.StatusCode.NOT_FOUND

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = MODEL
    status = model_service.GetModelStatus(status_request, timeout=TIMEOUT)
    [entry] = status.model_version_status
    assert entry.version == 1
    assert entry.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert entry.status.error_code == 0
    status_request.model_spec.name = "nope"
    assert _rpc_code(model_service.GetModelStatus, status_request)[0] == grpc.StatusCode.NOT_FOUND


# --------------------------------------------------------------------------------- labels


def _reload_request(config_text: str) -> model_management_pb2.ReloadConfigRequest:
    request = model_management_pb2.ReloadConfigRequest()
    text_format.Parse(config_text, request.config)
    return request


def _label_config(fleet: Fleet, stable: int, canary: int) -> str:
    return MULTI_CONFIG % {
        "gan": fleet.poll_base.parent / "gan",
        "poll": fleet.poll_base,
        "stable": stable,
        "canary": canary,
    }


def _served_version(server: StandIn, path: str) -> int:
    response = _get(server, path + "/metadata")
    assert response.status_code == 200, response.text
    return int(response.json()["model_spec"]["version"])


def test_labels_and_reload(
    multi: StandIn, fleet: Fleet, models: Models, multi_stubs: tuple[Any, Any]
) -> None:
    prediction, model_service = multi_stubs
    z = _z(1, seed=9)
    stable = _post(multi, "/v1/models/gan/labels/stable:predict", {"instances": z.tolist()})
    np.testing.assert_array_equal(
        np.asarray(stable.json()["predictions"], np.float32), models.reference(models.a, z)
    )
    canary = _post(multi, "/v1/models/gan/labels/canary:predict", {"inputs": z.tolist()})
    np.testing.assert_array_equal(
        np.asarray(canary.json()["outputs"], np.float32), models.reference(models.b, z)
    )
    assert _served_version(multi, "/v1/models/gan/labels/stable") == 1
    # GetModelStatusImpl ignores labels: a label path lists every version (real server code).
    by_label = _get(multi, "/v1/models/gan/labels/stable").json()["model_version_status"]
    assert [entry["version"] for entry in by_label] == ["2", "1"]

    response = model_service.HandleReloadConfigRequest(
        _reload_request(_label_config(fleet, stable=2, canary=1)), timeout=30
    )
    assert response.status.error_code == 0
    assert _served_version(multi, "/v1/models/gan/labels/stable") == 2
    assert _served_version(multi, "/v1/models/gan/labels/canary") == 1
    label_request = _predict_request("gan", z, content=True, version_label="stable")
    answer = prediction.Predict(label_request, timeout=TIMEOUT)
    assert answer.model_spec.version.value == 2
    # --enable_serialization_as_tensor_content is on for this server.
    assert answer.outputs["images"].tensor_content != b""
    np.testing.assert_array_equal(
        tf.make_ndarray(answer.outputs["images"]), models.reference(models.b, z)
    )

    # Moving an existing label to a version that is not AVAILABLE is refused, even with
    # --allow_version_labels_for_unavailable_models (it only covers new labels).
    code, details = _rpc_code(
        model_service.HandleReloadConfigRequest,
        _reload_request(_label_config(fleet, stable=7, canary=1)),
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "Request to assign label to version 7 of model gan" in details
    assert _served_version(multi, "/v1/models/gan/labels/stable") == 2

    bad = model_management_pb2.ReloadConfigRequest()
    assert _rpc_code(model_service.HandleReloadConfigRequest, bad)[0] == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


# --------------------------------------------------------------------------------- versions


def _poll_latest(server: StandIn, z: np.ndarray) -> tuple[int, np.ndarray]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        answer = stub.Predict(_predict_request("poll", z, content=True), timeout=TIMEOUT)
    return answer.model_spec.version.value, tf.make_ndarray(answer.outputs["images"])


def test_version_lifecycle(multi: StandIn, fleet: Fleet, models: Models) -> None:
    z = _z(1, seed=3)
    base = fleet.poll_base
    assert _poll_latest(multi, z)[0] == 1

    # A new version dir is picked up on the next poll; latest/1 then unloads version 1.
    publish_version(models.b, base, 2)
    wait_for_version(multi.rest_url, "poll", 2, timeout_s=15)
    unloaded = wait_for_version(multi.rest_url, "poll", 1, state="END", timeout_s=15)
    assert unloaded["status"] == {"error_code": "OK", "error_message": ""}
    version, images = _poll_latest(multi, z)
    assert version == 2
    np.testing.assert_array_equal(images, models.reference(models.b, z))

    # A corrupt version ends in END with an error; version 2 keeps serving.
    publish_version(models.corrupt, base, 3)
    failed = wait_for_version(multi.rest_url, "poll", 3, state="END", timeout_s=15)
    assert failed["status"]["error_code"] != "OK"
    assert failed["status"]["error_message"]
    assert _poll_latest(multi, z)[0] == 2
    states = {
        e["version"]: e["state"]
        for e in _get(multi, "/v1/models/poll").json()["model_version_status"]
    }
    assert states == {"3": "END", "2": "AVAILABLE", "1": "END"}

    # Warmup records are replayed at load time.
    publish_version(models.b_warm, base, 4)
    wait_for_version(multi.rest_url, "poll", 4, timeout_s=15)
    wait_for_version(multi.rest_url, "poll", 2, state="END", timeout_s=15)
    assert _poll_latest(multi, z)[0] == 4
    assert "Number of warmup records read: 2." in multi.stderr_text()


# --------------------------------------------------------------------------------- start-up


def test_corrupt_latest_version_at_startup_exits_255(fleet: Fleet) -> None:
    server = fleet.corrupt
    assert server.wait_exit(timeout_s=120) == 255
    stdout = server.stdout_text()  # main.cc prints the failure on stdout
    assert "Failed to start server. Error:" in stdout
    assert "did not become available" in stdout
    assert "STANDIN READY" not in stdout


def test_empty_base_path_waits_then_config_file_is_polled(fleet: Fleet, models: Models) -> None:
    server = fleet.empty
    # Still waiting for a version: alive, ports closed (server_core.cc: the ports open only once
    # every model's latest version is AVAILABLE or END).
    assert not server.ready
    assert server.process is not None and server.process.poll() is None
    for port in (server.rest_port, server.grpc_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    waiting_log = "No versions of servable empty found under base path " + str(fleet.empty_base)
    for _ in range(300):
        if waiting_log in server.stderr_text():
            break
        time.sleep(0.1)
    assert waiting_log in server.stderr_text()
    publish_version(models.a, fleet.empty_base, 7)
    server.wait_ready(timeout_s=60)
    assert wait_for_version(server.rest_url, "empty", 7, timeout_s=5)["state"] == "AVAILABLE"

    # --model_config_file_poll_wait_seconds=1: an edited config file is applied on the next read.
    assert _get(server, "/v1/models/empty/labels/live/metadata").status_code == 400
    labels = "version_labels { key: 'live' value: 7 }"
    fleet.empty_config.write_text(EMPTY_CONFIG % {"base": fleet.empty_base, "labels": labels})
    for _ in range(100):
        if _get(server, "/v1/models/empty/labels/live/metadata").status_code == 200:
            break
        time.sleep(0.1)
    assert _served_version(server, "/v1/models/empty/labels/live") == 7


# --------------------------------------------------------------------------------- batching
# --enable_batching with --batching_parameters_file, as compose runs TF Serving. Each test names
# the TF Serving (or TensorFlow) source whose behaviour it pins down.


@pytest.fixture(scope="module")
def batched(fleet: Fleet) -> StandIn:
    return fleet.batched.wait_ready()


@pytest.fixture(scope="module")
def split(fleet: Fleet) -> StandIn:
    return fleet.split.wait_ready()


def _batch_sizes(log: str) -> list[tuple[int, int]]:
    """(rows, padded rows) of every batch the stand-in ran, from its log."""
    found = re.findall(r"ran a batch of (\d+) rows \(padded to (\d+)\)", log)
    return [(int(a), int(b)) for a, b in found]


def test_batching_refuses_more_rows_than_max_batch_size(batched: StandIn, split: StandIn) -> None:
    """tensorflow/core/kernels/batching_util/shared_batch_scheduler.h,
    Queue::ValidateBatchTaskQueueCapacity: a task with more rows than max_batch_size is
    INVALID_ARGUMENT (REST 400), with or without enable_large_batch_splitting."""
    for server, model, limit in ((batched, "gan2", 18), (split, MODEL, 64)):
        ok = _post(server, f"/v1/models/{model}:predict", {"instances": _z(limit).tolist()})
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == limit
        body = {"instances": _z(limit + 1).tolist()}
        message = f"Task size {limit + 1} is larger than maximum input batch size {limit}"
        assert _error(_post(server, f"/v1/models/{model}:predict", body), 400) == message
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = _predict_request(model, _z(limit + 1), content=True)
            assert _rpc_code(stub.Predict, request) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_batching_merges_concurrent_requests_and_pads_to_an_allowed_size(
    batched: StandIn, models: Models
) -> None:
    """tensorflow_serving/batching/batching_session.cc, BatchingSession::ProcessBatch: the
    tasks of a batch are concatenated, padded up to the lowest allowed batch size with copies
    of the last task's first row, run once, and split back per task."""
    zs = [_z(5, seed=21), _z(5, seed=22)]
    before = len(batched.stderr_text())
    barrier = threading.Barrier(2)
    answers: dict[int, requests.Response] = {}

    def call(i: int) -> None:
        barrier.wait()
        answers[i] = _post(batched, "/v1/models/gan2:predict", {"instances": zs[i].tolist()})

    threads = [threading.Thread(target=call, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i, z in enumerate(zs):
        got = np.asarray(answers[i].json()["predictions"], np.float32)
        np.testing.assert_allclose(got, models.reference(models.a, z), atol=1e-6)
    # both arrived within batch_timeout_micros (300 ms): one run of 10 rows, padded to 18
    assert (10, 18) in _batch_sizes(batched.stderr_text()[before:])


def test_batching_splits_large_requests_into_execution_batches(
    split: StandIn, models: Models
) -> None:
    """shared_batch_scheduler.h with enable_large_batch_splitting (read by
    servables/tensorflow/bundle_factory_util.h GetQueueOptions): a task up to max_batch_size
    is cut into pieces of at most max_execution_batch_size, run, and put back together."""
    z = _z(40, seed=5)
    before = len(split.stderr_text())
    answer = _post(split, f"/v1/models/{MODEL}:predict", {"instances": z.tolist()})
    got = np.asarray(answer.json()["predictions"], np.float32)
    np.testing.assert_allclose(got, models.reference(models.a, z), atol=1e-6)
    assert _batch_sizes(split.stderr_text()[before:]) == [(16, 16), (16, 16), (8, 8)]


def test_a_reload_that_adds_a_version_and_moves_a_label_is_refused_whole(
    batched: StandIn, fleet: Fleet
) -> None:
    """model_servers/server_core.cc ServerCore::ReloadConfig: the label map is updated before
    new versions are added, and --allow_version_labels_for_unavailable_models exempts only new
    labels (UpdateModelVersionLabelMap), so one config that adds version 2 to the policy and
    moves "stable" onto it is refused whole; main.cc's config poll reads the same file again
    and is refused again. Two reloads (the policy, then the label) go through."""
    base = fleet.gan2_config.parent / "gan2"

    def write(versions: str, stable: int) -> None:
        text = GAN2_CONFIG % {"base": base, "versions": versions, "stable": stable}
        tmp = fleet.gan2_config.with_name(".gan2.config.tmp")
        tmp.write_text(text)
        tmp.replace(fleet.gan2_config)

    def stable_and_v2() -> tuple[int, int]:
        v2 = _get(batched, "/v1/models/gan2/versions/2").status_code
        return _served_version(batched, "/v1/models/gan2/labels/stable"), v2

    refusal = "Request to assign label to version 2 of model gan2"
    assert stable_and_v2() == (1, 404)
    write("versions: 1 versions: 2", stable=2)
    for _ in range(100):  # refused at least twice: at one poll, and again at the next
        if batched.stderr_text().count(refusal) >= 2:
            break
        time.sleep(0.1)
    assert batched.stderr_text().count(refusal) >= 2
    assert stable_and_v2() == (1, 404)  # neither the label nor the policy changed

    write("versions: 1 versions: 2", stable=1)
    wait_for_version(batched.rest_url, "gan2", 2, timeout_s=30)
    write("versions: 1 versions: 2", stable=2)
    for _ in range(100):
        if stable_and_v2() == (2, 200):
            break
        time.sleep(0.1)
    assert stable_and_v2() == (2, 200)


def test_batching_queue_full_is_unavailable_at_once() -> None:
    """shared_batch_scheduler.h: without splitting, a task that does not fit the open batch
    when max_enqueued_batches batches are already waiting is UNAVAILABLE (REST 503), at once:
    the model server puts no BatchSchedulerRetrier in front. With splitting, a task bigger
    than the room left is UNAVAILABLE too. (In-process: the scheduler with a model that runs
    only when the test lets it.)"""
    release, running = threading.Event(), threading.Event()

    class Held:
        def call_unbatched(
            self, signature: str, inputs: dict[str, np.ndarray], timeout_s: float | None
        ) -> Any:
            running.set()
            release.wait(30)
            return {"images": inputs["z"] * 2}

    scheduler = batching.SharedBatchScheduler(
        batching.BatchingOptions(
            max_batch_size=18,
            allowed_batch_sizes=(9, 18),
            max_enqueued_batches=2,
            num_batch_threads=1,
        )
    )
    servable, results = Held(), {}

    def run(name: str, rows: int) -> None:
        results[name] = scheduler.run(servable, "serving_default", {"z": _z(rows)})

    first = threading.Thread(target=run, args=("first", 10))
    first.start()
    assert running.wait(10)  # the only batch thread is busy with the first request
    waiting = [threading.Thread(target=run, args=(n, 10)) for n in ("second", "third")]
    for t in waiting:
        t.start()
        time.sleep(0.2)  # queued: second opens a batch, third does not fit and opens another
    with pytest.raises(ServingError) as full:
        run("fourth", 10)
    assert full.value.code == Code.UNAVAILABLE
    assert full.value.message == (
        "The batch scheduling queue to which this task was submitted is full; currently 2 "
        "batches enqueued and max_enqueued_batches is 2"
    )
    release.set()
    for t in [first, *waiting]:
        t.join(10)
    np.testing.assert_array_equal(results["second"]["images"], _z(10) * 2)

    splitting = batching.SharedBatchScheduler(
        batching.BatchingOptions(
            max_batch_size=64,
            enable_large_batch_splitting=True,
            max_execution_batch_size=16,
            max_enqueued_batches=2,
        )
    )
    with pytest.raises(ServingError) as no_room:
        splitting.run(servable, "serving_default", {"z": _z(40)})
    assert no_room.value.code == Code.UNAVAILABLE
    assert "task size is 40 but scheduling capacity is only 32" in no_room.value.message


def test_batching_parameters_file_is_read_and_checked(tmp_path: Path) -> None:
    """servables/tensorflow/bundle_factory_util.cc WrapSessionForBatching: the last allowed
    batch size must equal max_batch_size, else every version fails to load; GetQueueOptions:
    max_execution_batch_size defaults to max_batch_size (fields 8 and 9 of the proto)."""
    path = tmp_path / "batching.config"
    path.write_text(SPLIT)
    options = batching.read_options(str(path))
    assert (options.max_batch_size, options.execution_limit) == (64, 16)
    assert options.allowed_batch_sizes == (8, 16, 64) and options.enable_large_batch_splitting
    options.check()
    path.write_text(
        "max_batch_size { value: 72 }\nallowed_batch_sizes: 9\nallowed_batch_sizes: 36\n"
    )
    with pytest.raises(ServingError) as bad:
        batching.read_options(str(path)).check()
    assert bad.value.code == Code.INVALID_ARGUMENT
    assert bad.value.message == (
        "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 36; "
        "expected 72"
    )
    assert [batching.round_to_allowed(n, (9, 18, 36, 72)) for n in (1, 9, 10, 37)] == [9, 9, 18, 72]


# --------------------------------------------------------------------------------- JSON rules
# In-process unit tests of the stand-in's json_request / json_response modules (no server): dtype
# rules that the project's float-only signature cannot reach over HTTP, and WriteDecimal's floats.


@pytest.mark.parametrize(
    ("value", "single", "text"),
    [(3.0, True, "3.0"), (9e6, True, "9e+06"), (3e-5, True, "3e-05"), (0.5, False, "0.5"),
     (math.nan, True, "NaN"), (-math.inf, False, "-Infinity"),
     (float(np.float32(0.1)), True, "0.1"), (float(np.float32(1 / 3)), True, "0.333333343")],
)  # fmt: skip
def test_float_printing(value: float, single: bool, text: str) -> None:
    assert json_values.format_float(value, single=single) == text


def test_json_dtype_rules() -> None:
    ints = {"x": types_pb2.DT_INT32}
    with pytest.raises(ServingError) as info:
        json_request.tensors_from_request({"instances": [1.0]}, "", ints)
    assert info.value.code == Code.INVALID_ARGUMENT
    assert "is not of expected type: int32" in info.value.message
    tensors, fmt = json_request.tensors_from_request({"instances": [1, 2]}, "", ints)
    assert fmt is json_values.RequestFormat.ROW and tensors["x"].tolist() == [1, 2]
    strings = {"s": types_pb2.DT_STRING}
    decoded, _ = json_request.tensors_from_request({"inputs": [{"b64": "aGk="}, "yo"]}, "", strings)
    assert decoded["s"].tolist() == [b"hi", b"yo"]
    with pytest.raises(ServingError):
        json_request.tensors_from_request(
            {"inputs": [{"b64": "aGk="}]}, "", {"f": types_pb2.DT_FLOAT}
        )
    with pytest.raises(ServingError) as lossy:
        json_request.tensors_from_request({"inputs": [2**24 + 1]}, "", {"f": types_pb2.DT_FLOAT})
    assert "without loss of precision" in lossy.value.message
    two: dict[str, np.ndarray] = {
        "a": np.zeros((2, 1), np.float32),
        "b": np.array([1, 2], np.int64),
    }
    assert json.loads(json_response.response_json(two, json_values.RequestFormat.ROW)) == {
        "predictions": [{"a": [0.0], "b": 1}, {"a": [0.0], "b": 2}]
    }
    assert json.loads(json_response.response_json(two, json_values.RequestFormat.COLUMNAR)) == {
        "outputs": {"a": [[0.0], [0.0]], "b": [1, 2]}
    }
