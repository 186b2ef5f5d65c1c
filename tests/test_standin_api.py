"""The TF Serving stand-in's REST and gRPC contract, end to end over loopback, against one
stand-in process (``single``). (Its JSON rules in-process: test_standin_json.)

Every assertion that goes through ``rest_url`` / ``grpc_target`` describes TF Serving behaviour
(tensorflow/serving's sources; the stand-in's modules cite the files) and would hold against the
real server; the stand-in-only knob (``set_faults``) is marked where it is used.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from tests.standin_support import (
    COMMON_FLAGS,
    LATENT,
    MODEL,
    TIMEOUT,
    Models,
    latents,
    predict_request,
    rest_error,
    rest_get,
    rest_post,
    rpc_code,
)
from tfserving_standin.harness import StandIn
from tfserving_standin.publishing import publish_version

PREDICT = f"/v1/models/{MODEL}:predict"


@pytest.fixture(scope="module")
def single(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    base = tmp_path_factory.mktemp("bases") / "single"
    publish_version(models.a, base, 1)
    flags = [*COMMON_FLAGS, "--rest_api_timeout_in_ms=1000"]
    with StandIn(model_name=MODEL, base_path=base, extra_flags=flags) as server:
        yield server


@pytest.fixture(scope="module")
def single_stubs(single: StandIn) -> Iterator[tuple[Any, Any]]:
    with grpc.insecure_channel(single.grpc_target) as channel:
        yield (
            prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel),
        )


# --------------------------------------------------------------------------------- REST


def test_status_body(single: StandIn) -> None:
    response = rest_get(single, f"/v1/models/{MODEL}")
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
    assert rest_get(single, f"/v1/models/{MODEL}/versions/1").json() == response.json()


def test_metadata_body(single: StandIn) -> None:
    response = rest_get(single, f"/v1/models/{MODEL}/metadata")
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
    assert rest_get(single, f"/v1/models/{MODEL}/versions/1/metadata").json() == body


def test_predict_row_and_columnar(single: StandIn, models: Models) -> None:
    z = latents(3)
    expected = models.reference(models.a, z)
    row = rest_post(single, f"/v1/models/{MODEL}:predict", {"instances": z.tolist()})
    assert row.status_code == 200, row.text
    assert row.headers["Content-Type"] == "application/json"
    assert list(row.json()) == ["predictions"]
    np.testing.assert_array_equal(np.asarray(row.json()["predictions"], np.float32), expected)

    columnar = rest_post(single, f"/v1/models/{MODEL}/versions/1:predict", {"inputs": z.tolist()})
    assert columnar.status_code == 200, columnar.text
    assert list(columnar.json()) == ["outputs"]
    np.testing.assert_array_equal(np.asarray(columnar.json()["outputs"], np.float32), expected)

    named = rest_post(single, f"/v1/models/{MODEL}:predict", {"inputs": {"z": z.tolist()}})
    np.testing.assert_array_equal(np.asarray(named.json()["outputs"], np.float32), expected)
    objects = rest_post(
        single,
        f"/v1/models/{MODEL}:predict",
        {"signature_name": "serving_default", "instances": [{"z": r} for r in z.tolist()]},
    )
    np.testing.assert_array_equal(np.asarray(objects.json()["predictions"], np.float32), expected)


def test_predict_gzip_body_and_nan(single: StandIn, models: Models) -> None:
    z = latents(1)
    z[0, 0] = np.nan
    body = ('{"instances": ' + json.dumps(z.tolist()) + "}").encode()  # json writes bare NaN
    response = rest_post(
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
    infinite = rest_post(
        single, f"/v1/models/{MODEL}:predict", '{"instances": [[Infinity' + ", 0" * 99 + "]]}"
    )
    assert infinite.status_code == 200, infinite.text


def test_predict_concurrent_requests(single: StandIn, models: Models) -> None:
    inputs = [latents(2, seed=s) for s in range(8)]
    results: dict[int, np.ndarray] = {}

    def call(index: int) -> None:
        answer = rest_post(
            single, f"/v1/models/{MODEL}:predict", {"instances": inputs[index].tolist()}
        )
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
    response = rest_get(single, path) if method == "GET" else rest_post(single, path, body)
    assert message in rest_error(response, status)


def test_rest_input_errors(single: StandIn) -> None:
    path = f"/v1/models/{MODEL}:predict"
    # Bad JSON is reported before the (unknown) model is looked up.
    assert rest_error(rest_post(single, "/v1/models/nope:predict", b"{"), 400).startswith(
        "JSON Parse error:"
    )
    wrong_type = rest_error(rest_post(single, path, {"instances": [["a"] * 100]}), 400)
    assert 'JSON Value: "a" Type: String is not of expected type: float' in wrong_type
    ragged = rest_error(rest_post(single, path, {"instances": [[1.0] * 100, [1.0] * 99]}), 400)
    assert "Failed to process element: 1 of 'instances' list." in ragged
    assert "Expecting tensor size: 100 but got: 99" in ragged
    reshaped = rest_error(
        rest_post(single, path, {"instances": [[[1.0, 2.0]], [[1.0], [2.0]]]}), 400
    )
    assert "Expecting shape [1,2] but got: [2,1]" in reshaped
    nested = rest_error(rest_post(single, path, {"inputs": [[1.0] * 100, [1.0] * 99]}), 400)
    assert "Encountered list at unexpected size: 99 at level: 1 expected size: 100" in nested
    # A consistent but wrong width reaches the model, which rejects it (INVALID_ARGUMENT).
    rest_error(rest_post(single, path, {"instances": [[1.0] * 99]}), 400)


def test_rest_outside_v1_is_plain_404(single: StandIn) -> None:
    response = rest_get(single, "/healthz")
    assert response.status_code == 404
    assert "json" not in response.headers.get("Content-Type", "")
    with pytest.raises(ValueError):
        response.json()


def test_rest_timeout_is_504(single: StandIn) -> None:
    # STAND-IN ONLY knob: a slow model; the server runs with --rest_api_timeout_in_ms=1000.
    single.set_faults(delay_ms=1500)
    try:
        response = rest_post(
            single, f"/v1/models/{MODEL}:predict", {"instances": latents(1).tolist()}
        )
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
            rest_error(
                rest_post(
                    single, f"/v1/models/{MODEL}:predict", {"instances": latents(1).tolist()}
                ),
                503,
            )
            == "busy"
        )
        code, details = rpc_code(
            prediction.Predict, predict_request(MODEL, latents(1), content=True)
        )
        assert (code, details) == (grpc.StatusCode.UNAVAILABLE, "busy")
        ok = rest_post(single, f"/v1/models/{MODEL}:predict", {"instances": latents(1).tolist()})
        assert ok.status_code == 200
        single.set_faults(error="RESOURCE_EXHAUSTED")
        rest_error(
            rest_post(single, f"/v1/models/{MODEL}:predict", {"instances": latents(1).tolist()}),
            429,
        )
    finally:
        single.clear_faults()


# --------------------------------------------------------------------------------- gRPC


@pytest.mark.parametrize("content", [False, True], ids=["float_val", "tensor_content"])
def test_grpc_predict(single_stubs: tuple[Any, Any], models: Models, content: bool) -> None:
    prediction, _ = single_stubs
    z = latents(2, seed=5)
    # One call without a client deadline (the server must not need one).
    timeout = TIMEOUT if content else None
    response = prediction.Predict(predict_request(MODEL, z, content=content), timeout=timeout)
    assert response.model_spec.name == MODEL
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    images = response.outputs["images"]
    # Default serialisation: typed float_val fields, not tensor_content.
    assert images.tensor_content == b"" and len(images.float_val) == 2 * 784
    np.testing.assert_array_equal(tf.make_ndarray(images), models.reference(models.a, z))


def test_grpc_predict_output_filter_and_errors(single_stubs: tuple[Any, Any]) -> None:
    prediction, _ = single_stubs
    request = predict_request(MODEL, latents(1), content=True)
    request.output_filter.append("images")
    assert list(prediction.Predict(request, timeout=TIMEOUT).outputs) == ["images"]
    request.output_filter[:] = ["nope"]
    assert rpc_code(prediction.Predict, request)[0] == grpc.StatusCode.INVALID_ARGUMENT

    z = latents(1)
    codes = grpc.StatusCode
    cases = [
        (predict_request("nope", z, content=True), codes.NOT_FOUND),
        (predict_request(MODEL, z, content=True, version=99), codes.NOT_FOUND),
        (predict_request(MODEL, z, content=True, version_label="x"), codes.INVALID_ARGUMENT),
        (predict_request(MODEL, z, content=True, signature_name="x"), codes.FAILED_PRECONDITION),
        # The signature wants float32; float64 fails in the model call, as in a session run.
        (predict_request(MODEL, z.astype(np.float64), content=True), codes.INVALID_ARGUMENT),
    ]
    for bad, expected in cases:
        assert rpc_code(prediction.Predict, bad)[0] == expected, bad
    wrong_alias = predict_request(MODEL, latents(1), content=True)
    wrong_alias.inputs["x"].CopyFrom(wrong_alias.inputs.pop("z"))
    code, details = rpc_code(prediction.Predict, wrong_alias)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "input tensor alias not found in signature: x" in details


def test_grpc_deadline(single: StandIn, single_stubs: tuple[Any, Any]) -> None:
    prediction, _ = single_stubs
    single.set_faults(delay_ms=1500)  # STAND-IN ONLY: a slow model
    try:
        with pytest.raises(grpc.RpcError) as info:
            prediction.Predict(predict_request(MODEL, latents(1), content=True), timeout=0.3)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        single.clear_faults()


def test_grpc_metadata_and_status(single_stubs: tuple[Any, Any]) -> None:
    prediction, model_service = single_stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL
    assert rpc_code(prediction.GetModelMetadata, request)[0] == grpc.StatusCode.INVALID_ARGUMENT
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
    assert rpc_code(prediction.GetModelMetadata, request)[0] == grpc.StatusCode.NOT_FOUND

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = MODEL
    status = model_service.GetModelStatus(status_request, timeout=TIMEOUT)
    [entry] = status.model_version_status
    assert entry.version == 1
    assert entry.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert entry.status.error_code == 0
    status_request.model_spec.name = "nope"
    assert rpc_code(model_service.GetModelStatus, status_request)[0] == grpc.StatusCode.NOT_FOUND
