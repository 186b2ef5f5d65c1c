"""Both models of one TF Serving (the stand-in started with docker-compose.yml's flags, one
per module): the REST and gRPC transports draw from ``fashion_gan`` with z alone, exactly as
before, and from ``fashion_gan_cond`` with one category per row; a category the model does not
have comes back as the caller's fault (BadInput, 400), never as the server's (5xx).

    .venv/bin/pytest tests/test_cond_transports.py -q
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf

from fashion_core.contract import CATEGORY, COND_MODEL_NAME, MODEL_NAME
from fashion_gan.serving import ServingClient
from fashion_gan.tfserving import (
    BadInput,
    Chunked,
    Pin,
    ServingConfig,
    ServingError,
    connect,
    transport,
)
from fashion_gan.tfserving.bodies import predict_body
from tests.cond_support import build_cond_model, reference
from tests.servers import compose_standin
from tests.standin_support import Models, latents, rest_error, rest_post, rpc_code
from tests.tfserving_flags import prepare_mounts
from tfserving_standin.harness import StandIn
from tfserving_standin.publishing import publish_version

# both models, as serving_config/models.config names them (container paths)
TWO_MODELS = """model_config_list {
  config {
    name: "fashion_gan"
    base_path: "/models/fashion_gan"
    model_platform: "tensorflow"
  }
  config {
    name: "fashion_gan_cond"
    base_path: "/models/fashion_gan_cond"
    model_platform: "tensorflow"
  }
}
"""


@dataclass(frozen=True)
class Served:
    server: StandIn
    plain: Path  # fashion_gan's version 1
    cond: Path  # fashion_gan_cond's version 1


@pytest.fixture(scope="module")
def served(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("two_models")
    cond = build_cond_model(tmp / "cond_model")
    mounts = prepare_mounts(tmp, models_config=TWO_MODELS)
    publish_version(models.a, mounts.base_path, 1)
    publish_version(cond, mounts.models / COND_MODEL_NAME, 1)
    server = compose_standin(mounts).start()
    try:
        yield Served(server, models.a, cond)
    finally:
        server.close()


def _config(served: Served, kind: str, model: str) -> ServingConfig:
    if kind == "rest":
        return ServingConfig(rest_url=served.server.rest_url, model_name=model)
    return ServingConfig(grpc_target=served.server.grpc_target, model_name=model)


def _categories(rows: int) -> np.ndarray:
    return np.arange(rows, dtype=np.int64) % 10


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_one_server_two_models(kind: str, served: Served, models: Models) -> None:
    async def run() -> None:
        plain = transport(_config(served, kind, MODEL_NAME))
        cond = transport(_config(served, kind, COND_MODEL_NAME))
        await plain.start()
        await cond.start()
        try:
            z = latents(9, seed=1)
            out = await plain.generate(z, Pin())
            assert out.version == 1
            np.testing.assert_allclose(out.images, models.reference(served.plain, z), atol=1e-5)

            category = _categories(9)
            drawn = await cond.generate(z, Pin(version=1), category)
            assert drawn.version == 1 and drawn.images.shape == (9, 28, 28, 1)
            want = reference(served.cond, z, category)
            np.testing.assert_allclose(drawn.images, want, atol=1e-5)
            # the category steers the image: the same z as two categories, two designs
            assert (
                np.abs(drawn.images[0] - reference(served.cond, z[:1], np.array([3]))[0]).max()
                > 1e-4
            )

            with pytest.raises(BadInput) as refused:
                await cond.generate(z, Pin(), np.full(9, 12, np.int64))
            assert refused.value.status == 400 and "0 to 9" in str(refused.value)
            # the first model is as it was: asked with a category it has no input for, the
            # server refuses (a 4xx of TF Serving) and nothing was served by mistake
            with pytest.raises(ServingError):
                await plain.generate(z, Pin(), category)
        finally:
            await plain.close()
            await cond.close()

    asyncio.run(run())


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_chunked_cuts_and_pads_categories_with_their_rows(kind: str, served: Served) -> None:
    """80 rows in calls of at most 72 (and at least 9): each row keeps its own category."""

    async def run() -> None:
        chunked = connect(_config(served, kind, COND_MODEL_NAME))
        assert isinstance(chunked, Chunked)
        await chunked.start()
        try:
            z, category = latents(80, seed=2), _categories(80)[::-1].copy()
            out = await chunked.generate(z, Pin(), category)
            assert out.images.shape == (80, 28, 28, 1)
            np.testing.assert_allclose(out.images, reference(served.cond, z, category), atol=1e-5)
            with pytest.raises(ValueError, match="one per latent"):
                await chunked.generate(z, Pin(), category[:5])
        finally:
            await chunked.close()

    asyncio.run(run())


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_serving_client_takes_a_category(kind: str, served: Served) -> None:
    z = latents(3, seed=3)
    with ServingClient(config=_config(served, kind, COND_MODEL_NAME)) as client:
        one = client.images(z, category=7)  # one category for every row
        np.testing.assert_allclose(one, reference(served.cond, z, np.full(3, 7)), atol=1e-5)
        each = client.predict(z, category=[0, 5, 9])
        assert each.version == 1
        np.testing.assert_allclose(
            each.images, reference(served.cond, z, np.array([0, 5, 9])), atol=1e-5
        )
        with pytest.raises(BadInput) as refused:
            client.predict(z, category=12)
        assert refused.value.status == 400
        for wrong in (1.5, "3", [1, 2], True):
            with pytest.raises(ValueError, match="category must be"):
                client.predict(z, category=wrong)  # type: ignore[arg-type]
    with ServingClient(config=_config(served, kind, MODEL_NAME)) as plain:  # z alone
        assert plain.images(z).shape == (3, 28, 28, 1)


def test_the_unconditional_body_is_as_before() -> None:
    z = latents(2)
    assert predict_body(z) == json.dumps({"instances": z.tolist()}).encode()
    both = json.loads(predict_body(z, np.array([4, 0], np.int64)))
    assert [row[CATEGORY] for row in both["instances"]] == [4, 0]  # JSON integers


# --- the stand-in is as strict as TF Serving about an int64 input (util/json_tensor.cc:
# `case DT_INT64: if (!val.IsInt64()) return TypeError(val, dtype)`) ---------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [(3.0, "3.0 Type: Number"), (3.5, "3.5 Type: Number"), ("3", '"3" Type: String')],
)
def test_rest_refuses_a_category_that_is_not_a_json_integer(
    served: Served, value: object, shown: str
) -> None:
    z = latents(1).tolist()[0]
    path = f"/v1/models/{COND_MODEL_NAME}:predict"
    rows = rest_post(served.server, path, {"instances": [{"z": z, CATEGORY: value}]})
    assert rest_error(rows, 400) == (  # json_tensor.cc wraps a row's error in its place
        f"Failed to process element: 0 key: {CATEGORY} of 'instances' list. Error: "
        f"INVALID_ARGUMENT: JSON Value: {shown} is not of expected type: int64"
    )
    columns = rest_post(served.server, path, {"inputs": {"z": [z], CATEGORY: [value]}})
    assert "is not of expected type: int64" in rest_error(columns, 400)
    ok = rest_post(served.server, path, {"inputs": {"z": [z], CATEGORY: [3]}})
    assert ok.status_code == 200 and np.asarray(ok.json()["outputs"]).shape == (1, 28, 28, 1)


def test_grpc_refuses_a_float_category(served: Served) -> None:
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = COND_MODEL_NAME
    request.inputs["z"].CopyFrom(tf.make_tensor_proto(latents(1)))
    request.inputs[CATEGORY].CopyFrom(tf.make_tensor_proto(np.array([3.0], np.float32)))
    with grpc.insecure_channel(served.server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        code, details = rpc_code(stub.Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "int64" in details
