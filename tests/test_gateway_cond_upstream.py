"""Designs on request through TF Serving: one model server (the stand-in) serving both models
from one models.config, with REST and gRPC gateways in front and an embedded one beside them.
Every backend draws the same bytes for the same seed and category (one row per category,
posted categories, walks between two categories), the second model's labels are the model
server's, and /readyz reports both models."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from fashion_core.contract import COND_MODEL_NAME, MODEL_NAME
from fashion_core.latents import latents_for
from gateway.app import create_app
from tests.servers import serve
from tests.test_gateway_cond import settings_for
from tfserving_standin.harness import StandIn

LABELS = {MODEL_NAME: {"stable": 1, "canary": 2}, COND_MODEL_NAME: {"stable": 2, "canary": 1}}


def two_models(bases: dict[str, Path]) -> str:
    """A models.config serving both models from their folders, each with its labels."""
    blocks = []
    for name, base in bases.items():
        labels = "".join(
            f"    version_labels {{ key: '{k}' value: {v} }}\n" for k, v in LABELS[name].items()
        )
        blocks.append(
            f"  config {{\n    name: '{name}'\n    base_path: '{base}'\n"
            "    model_platform: 'tensorflow'\n"
            f"    model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}\n{labels}  }}\n"
        )
    return "model_config_list {\n" + "".join(blocks) + "}\n"


@pytest.fixture(scope="module")
def gateways(
    smoke_base: Path, cond_base: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("cond_upstream")
    config = tmp / "serving.config"
    config.write_text(two_models({MODEL_NAME: smoke_base, COND_MODEL_NAME: cond_base}))
    embedded = settings_for(smoke_base, cond_base, tmp)  # the same labels, for the embedded one
    flags = ["--allow_version_labels_for_unavailable_models=true"]
    with ExitStack() as stack:
        server = stack.enter_context(StandIn(config_file=config, extra_flags=flags))
        server.wait_ready()
        urls = {"embedded": stack.enter_context(serve(create_app(embedded)))}
        for backend in ("rest", "grpc"):
            s = replace(
                embedded,
                backend=backend,  # type: ignore[arg-type]
                rest_url=server.rest_url,
                grpc_target=server.grpc_target,
            )
            urls[backend] = stack.enter_context(serve(create_app(s)))
        yield urls


def _all(urls: dict[str, str], method: str, path: str, **kw: Any) -> dict[str, requests.Response]:
    return {b: requests.request(method, u + path, timeout=60, **kw) for b, u in urls.items()}


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/generar-diseno", {"seed": 7, "rows": 2, "cols": 3, "category": "dress"}),
        ("/api/generar-diseno", {"seed": 7, "cols": 2, "category": "all"}),
        ("/api/generar-diseno", {"seed": 7, "category": "botin", "label": "canary"}),
        ("/api/interpolate", {"from": 3, "to": 4, "steps": 4, "category": 3, "to_category": 4}),
        ("/api/generar-diseno", {"seed": 7, "rows": 2, "cols": 3}),  # the first model
    ],
)
def test_every_backend_draws_the_same_bytes(
    gateways: dict[str, str], path: str, params: dict[str, Any]
) -> None:
    answers = _all(gateways, "GET", path, params=params)
    assert {r.status_code for r in answers.values()} == {200}, {
        b: r.text[:200] for b, r in answers.items()
    }
    assert len({r.content for r in answers.values()}) == 1
    assert len({r.headers["x-model-version"] for r in answers.values()}) == 1
    model = COND_MODEL_NAME if ("category" in params) else MODEL_NAME
    assert {r.headers["x-model-name"] for r in answers.values()} == {model}
    if params.get("category") == "all":
        img = Image.open(io.BytesIO(answers["rest"].content))
        assert img.size == (2 * 28, 10 * 28)


def test_the_second_model_s_pins_and_posts_through_tf_serving(gateways: dict[str, str]) -> None:
    for backend, url in gateways.items():
        get = url + "/api/generar-diseno"
        stable = requests.get(get, params={"seed": "1", "category": "4", "label": "stable"})
        canary = requests.get(get, params={"seed": "1", "category": "4", "label": "canary"})
        assert (stable.headers["x-model-version"], canary.headers["x-model-version"]) == (
            "2",
            "1",
        ), backend
        v1 = requests.get(get, params={"seed": 1, "category": 4, "version": 1})
        assert v1.content == canary.content, backend
        latents = latents_for(1, 2, 100).tolist()
        posted = requests.post(get, json={"latents": latents, "categories": ["coat", "bag"]})
        assert posted.status_code == 200 and posted.headers["x-model-name"] == COND_MODEL_NAME
        bad = requests.get(get, params={"seed": 1, "category": 12})
        assert bad.status_code == 400 and "ankle boot (botín)" in bad.json()["error"], backend
        ready = requests.get(url + "/readyz", timeout=30).json()
        assert ready["conditional"]["upstream"]["available"] == [1, 2], backend
        listing = requests.get(url + "/api/versions", params={"model": COND_MODEL_NAME}).json()
        assert listing["newest"] == 2 and listing["labels"] == LABELS[COND_MODEL_NAME]
