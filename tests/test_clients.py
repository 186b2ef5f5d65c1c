"""The clients against real servers: ``GatewayClient`` against the embedded, REST and gRPC
gateways, ``ServingClient`` against the model server itself (the stand-in, or a real TF Serving)
over REST and gRPC; and the README's Python examples, run as written."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from fashion_core.latents import latents_for
from fashion_core.render import sheet_png
from fashion_gan import GatewayClient, GatewayError, ServingClient, ServingError
from tests.conftest import REPO
from tests.servers import BACKENDS, ModelServer


@pytest.fixture(scope="module", params=("rest", "grpc"))
def serving(request: pytest.FixtureRequest, server: ModelServer) -> Iterator[ServingClient]:
    if request.param == "rest":
        client = ServingClient(rest_url=server.rest_url)
    else:
        client = ServingClient(grpc_target=server.grpc_target)
    with client:
        yield client


def _image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gateway_client_images(gateways: dict[str, str], backend: str) -> None:
    client = GatewayClient(gateways[backend])
    sheet = client.sheet(seed=42, version=1, rows=2, cols=4, scale=2)
    direct = requests.get(
        gateways[backend] + "/api/generar-diseno?seed=42&version=1&rows=2&cols=4&scale=2",
        timeout=30,
    )
    assert (sheet.data, sheet.version, sheet.seed) == (direct.content, 1, 42)
    assert sheet.content_type == "image/png" and _image(sheet.data).size == (224, 112)
    assert client.sheet(label="canary").version == 2

    z = latents_for(7, 2, 100)
    posted = client.sheet_from_latents(z, rows=1, cols=2, version=2)
    assert _image(posted.data).size == (56, 28) and posted.seed is None

    strip = client.interpolate(3, 4, steps=5, scale=2)
    width, height = _image(strip.data).size
    assert (width, height) == (5 * 56, 56) and width > height
    film = _image(client.interpolate(3, 4, steps=5, fmt="gif").data)
    assert film.format == "GIF" and film.n_frames == 5
    ends = client.interpolate_latents(z[0], z[1], steps=3, version=2)
    assert _image(ends.data).size == (84, 28)


def test_gateway_client_state_and_errors(gateways: dict[str, str]) -> None:
    client = GatewayClient(gateways["embedded"])
    listing = client.versions()
    assert [v["version"] for v in listing["versions"]] == [2, 1]
    assert listing["labels"] == {"canary": 2, "stable": 1}
    assert "fid" in listing["versions"][0]["quality"]
    assert client.training()["state"] == "idle"
    for call, status, words in (
        (lambda: client.sheet(rows=99), 400, "rows must be an integer from 1 to 16"),
        (lambda: client.sheet(version=9), 404, "version 9"),
        (lambda: client.interpolate(1, 2, steps=40), 400, "steps must be an integer from 2"),
        (lambda: client.start_training("no-token"), 403, "POST /api/training is disabled"),
        (lambda: GatewayClient("http://127.0.0.1:9").sheet(), 503, "unreachable"),
    ):
        with pytest.raises(GatewayError) as err:
            call()
        assert err.value.status == status, str(err.value)
        assert words.lower() in str(err.value).lower()


def test_serving_client_matches_the_gateway(
    serving: ServingClient, gateways: dict[str, str]
) -> None:
    z = latents_for(42, 9, serving.latent_dim(version=1))
    out = serving.predict(z, version=1)
    assert (
        out.version == 1 and out.images.shape == (9, 28, 28, 1) and out.images.dtype == np.float32
    )
    assert out.images.min() >= -1 and out.images.max() <= 1
    sheet = requests.get(gateways["embedded"] + "/api/generar-diseno?seed=42&version=1", timeout=30)
    assert sheet_png(out.images, 3, 3) == sheet.content  # the same pixels, the same PNG
    assert serving.predict(z, label="canary").version == 2
    assert serving.predict(z).version == 2  # the newest AVAILABLE version
    big = serving.images(latents_for(1, 100, 100), version=2)  # > max_batch_size: split
    assert big.shape == (100, 28, 28, 1)
    assert {(v.version, v.state) for v in serving.versions()} >= {
        (1, "AVAILABLE"),
        (2, "AVAILABLE"),
    }


def test_serving_client_errors(serving: ServingClient) -> None:
    z = latents_for(1, 2, 100)
    with pytest.raises(ServingError) as missing:
        serving.predict(z, version=9)
    assert missing.value.status == 404
    with pytest.raises(ServingError) as unknown:
        serving.predict(z, label="gold")
    assert unknown.value.status == 400 and "gold" in str(unknown.value)
    with pytest.raises(ValueError, match="starting with a letter or digit"):
        serving.predict(z, label="..")  # a path segment, not a label: never sent
    with pytest.raises(ValueError, match=r"shape \(n, 100\)"):
        serving.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        serving.predict(np.full((1, 100), np.nan))
    with pytest.raises(ServingError) as down, ServingClient(rest_url="http://127.0.0.1:9") as dead:
        dead.predict(z)
    assert down.value.status == 503


def readme_examples() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"<!-- example -->\n```python\n(.*?)```", text, flags=re.S)


# what each README example prints against the smoke versions (stable -> 1, newest 2)
README_OUTPUT = (
    r"2 42 \d+\n",
    r"2 \d+ \d+ idle\n400 Rows must be an integer from 1 to 16\.\n",
    r"1 \(5, 28, 28, 1\)\n",
)


def test_readme_examples_run(
    gateways: dict[str, str],
    server: ModelServer,
    smoke_base: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each example as written, in this process (TensorFlow and the versions are loaded
    already; a fresh process per example would cost seconds each)."""
    examples = readme_examples()
    assert len(examples) == len(README_OUTPUT)
    monkeypatch.setenv("FASHION_GAN_URL", gateways["embedded"])
    monkeypatch.setenv("TFSERVING_REST_URL", server.rest_url)
    monkeypatch.setenv("TFSERVING_GRPC_TARGET", server.grpc_target)
    monkeypatch.setenv("MODEL_BASE_PATH", str(smoke_base))
    monkeypatch.delenv("MODEL_CONFIG_FILE", raising=False)
    for code, expected in zip(examples, README_OUTPUT, strict=True):
        capsys.readouterr()
        exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})
        printed = capsys.readouterr().out
        assert re.fullmatch(expected, printed), (code, printed)
