"""Designs on request (issue 19): the class-conditional model served beside the first through a
real gateway on a loopback port, the embedded backend on two smoke conditional versions (and
the first model's two smoke versions). Categories by index, English or Spanish name, case and
accents forgiven; ``all``; a category per posted latent; walks in one category and between two;
pins, labels and canary of the second model; status endpoints; GatewayClient; train-on-miss of
the second model."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image
from starlette.testclient import TestClient

from fashion_core.contract import CATEGORIES_EN, CATEGORIES_ES, COND_MODEL_NAME, MODEL_NAME
from fashion_core.latents import latents_for
from fashion_gan import GatewayClient, GatewayError
from gateway.app import create_app
from gateway.backends import Generated, ModelStatus, Pin, make_backend
from gateway.categories import parse
from gateway.settings import Settings
from tests.servers import serve

TILE = 28


def models_config(first: dict[str, int], cond: dict[str, int]) -> str:
    """A models.config naming both models, each with its labels."""

    def block(name: str, labels: dict[str, int]) -> str:
        lines = "".join(
            f"    version_labels {{ key: '{k}' value: {v} }}\n" for k, v in labels.items()
        )
        return (
            f"  config {{\n    name: '{name}'\n    base_path: '/models/{name}'\n"
            f"    model_platform: 'tensorflow'\n{lines}  }}\n"
        )

    return f"model_config_list {{\n{block(MODEL_NAME, first)}{block(COND_MODEL_NAME, cond)}}}\n"


class Recording:
    """The conditional model's real backend, noting what every call sent it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name = inner, inner.name
        self.calls: list[tuple[np.ndarray, np.ndarray | None]] = []

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def latent_dim(self, pin: Pin) -> int:
        return int(await self.inner.latent_dim(pin))

    async def status(self) -> ModelStatus:
        status: ModelStatus = await self.inner.status()
        return status

    async def generate(
        self, z: np.ndarray, pin: Pin, category: np.ndarray | None = None
    ) -> Generated:
        self.calls.append((z.copy(), None if category is None else category.copy()))
        out: Generated = await self.inner.generate(z, pin, category)
        return out


def settings_for(smoke_base: Path, cond_base: Path, tmp: Path, **extra: Any) -> Settings:
    config = tmp / "models.config"
    # the second model's labels differ from the first's: a pin reads its own model's block
    config.write_text(models_config({"stable": 1, "canary": 2}, {"stable": 2, "canary": 1}))
    return Settings(
        model_base_path=smoke_base,
        cond_model_base_path=cond_base,
        model_config_file=config,
        jobs_dir=tmp / "jobs",
        **{"train_on_miss": False, **extra},
    )


@pytest.fixture(scope="module")
def gw(
    smoke_base: Path, cond_base: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Recording]]:
    s = settings_for(smoke_base, cond_base, tmp_path_factory.mktemp("gw_cond"))
    recording = Recording(make_backend(s, conditional=True))
    with serve(create_app(s, cond_backend=recording)) as url:
        yield url, recording


def get(url: str, **params: Any) -> requests.Response:
    return requests.get(url + "/api/generar-diseno", params=params, timeout=60)


def decode(resp: requests.Response) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    img = Image.open(io.BytesIO(resp.content))
    assert img.format in ("PNG", "GIF")
    return np.asarray(img)


def tiles(img: np.ndarray) -> list[list[np.ndarray]]:
    """rows x cols tiles of an unscaled, unspaced sheet."""
    return [
        [img[r : r + TILE, c : c + TILE] for c in range(0, img.shape[1], TILE)]
        for r in range(0, img.shape[0], TILE)
    ]


# --- the parser ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "index"),
    [
        *[(name, k) for k, name in enumerate(CATEGORIES_EN)],
        *[(name, k) for k, name in enumerate(CATEGORIES_ES)],
        *[(str(k), k) for k in range(10)],
        *[(k, k) for k in range(10)],
        ("DRESS", 3), ("Vestido", 3), ("PANTALON", 1), ("pantalon", 1), ("PANTALÓN", 1),
        ("botin", 9), ("BOTÍN", 9), ("ankle-boot", 9), ("ankle_boot", 9), ("Ankle Boot", 9),
        ("t-shirt", 0), ("T-Shirt", 0), ("top", 0), ("tshirt", 0), ("  coat ", 4),
        ("all", "all"), ("ALL", "all"),
    ],
)  # fmt: skip
def test_every_name_index_and_spelling_is_one_category(raw: Any, index: Any) -> None:
    assert parse(raw) == index


# --- sheets ----------------------------------------------------------------------------------
def test_a_seed_is_the_same_idea_in_every_category(gw: tuple[str, Recording]) -> None:
    """Same seed, two categories: the same z goes to the model (the first model's sheet's z
    for that seed), with the category per row; the images differ."""
    url, recording = gw
    sent = {}
    answers = {}
    for name in ("dress", "coat"):
        recording.calls.clear()
        answers[name] = r = get(url, seed=7, rows=2, cols=3, category=name)
        assert r.status_code == 200 and r.headers["x-model-name"] == COND_MODEL_NAME
        assert r.headers["x-category"] == name and r.headers["x-seed"] == "7"
        assert r.headers["x-model-version"] == "2" and r.headers["cache-control"] == "no-cache"
        assert decode(r).shape == (2 * TILE, 3 * TILE)
        [(z, category)] = recording.calls
        assert category is not None and category.dtype == np.int64
        sent[name] = (z[:6], category[:6])  # calls are padded to 9 rows
    np.testing.assert_array_equal(sent["dress"][0], sent["coat"][0])
    np.testing.assert_array_equal(sent["dress"][0], latents_for(7, 6, 100))
    assert sent["dress"][1].tolist() == [3] * 6 and sent["coat"][1].tolist() == [4] * 6
    dress, coat = (tiles(decode(answers[n])) for n in ("dress", "coat"))
    assert all(not np.array_equal(dress[r][c], coat[r][c]) for r in range(2) for c in range(3))
    first = get(url, seed=7, rows=2, cols=3)  # no category: the first model, as ever
    assert first.headers["x-model-name"] == MODEL_NAME and "x-category" not in first.headers
    assert first.content != answers["dress"].content


@pytest.mark.parametrize(
    "spellings",
    [
        ("3", "dress", "DRESS", "Vestido"),
        ("1", "trouser", "pantalón", "PANTALON"),
        ("9", "ankle boot", "ankle-boot", "botin"),
        ("0", "t-shirt/top", "t-shirt", "camiseta"),
    ],
)
def test_spellings_of_a_category_draw_the_same_bytes(
    gw: tuple[str, Recording], spellings: tuple[str, ...]
) -> None:
    url, _ = gw
    bodies = {get(url, seed=11, category=s).content for s in spellings}
    assert len(bodies) == 1


def test_all_is_one_row_per_category_with_the_seed_s_latents_in_each(
    gw: tuple[str, Recording],
) -> None:
    url, recording = gw
    recording.calls.clear()
    r = get(url, seed=5, cols=4, category="all")
    assert r.headers["x-category"] == "all"
    sheet = decode(r)
    assert sheet.shape == (10 * TILE, 4 * TILE)  # 10 rows of tiles, the columns asked
    [(z, category)] = recording.calls
    assert category is not None and category.tolist() == np.repeat(np.arange(10), 4).tolist()
    np.testing.assert_array_equal(z.reshape(10, 4, 100), np.stack([latents_for(5, 4, 100)] * 10))
    rows = tiles(sheet)
    for k in (0, 3, 9):  # row k is the 1-row sheet of category k, tile for tile
        alone = tiles(decode(get(url, seed=5, rows=1, cols=4, category=k)))[0]
        assert all(np.array_equal(a, b) for a, b in zip(rows[k], alone, strict=True))
    assert not np.array_equal(rows[0][0], rows[1][0])
    default = decode(get(url, seed=5, category="all"))
    assert default.shape == (10 * TILE, 3 * TILE)  # cols' default, 3


BAD = [
    ("/api/generar-diseno", {"category": "hat"}, "category must be all, an index from 0 to 9"),
    ("/api/generar-diseno", {"category": "10"}, "category must be all, an index from 0 to 9"),
    ("/api/generar-diseno", {"category": "-1"}, "category must be all"),
    ("/api/generar-diseno", {"category": ""}, "category must be all"),
    ("/api/generar-diseno", {"category": "dress,coat"}, "category must be all"),
    ("/api/generar-diseno", {"category": "all", "rows": "3"}, "one row per category"),
    ("/api/interpolate", {"from": 1, "to": 2, "category": "all"}, "category must be an index"),
    ("/api/interpolate", {"from": 1, "to": 2, "to_category": "coat"}, "needs category too"),
    (
        "/api/interpolate",
        {"from": 1, "to": 2, "category": 3, "to_category": "hat"},
        "the walk's to_category must be an index",
    ),
    ("/api/versions", {"model": "nope"}, "model must be fashion_gan or fashion_gan_cond"),
    ("/api/training", {"model": "nope"}, "model must be fashion_gan or fashion_gan_cond"),
]


@pytest.mark.parametrize(("path", "params", "needle"), BAD)
def test_a_wrong_category_is_a_400_sentence_that_lists_the_names(
    gw: tuple[str, Recording], path: str, params: dict[str, Any], needle: str
) -> None:
    url, _ = gw
    r = requests.get(url + path, params=params, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert needle.lower() in error.lower() and error.endswith(".") and error.count(". ") == 0
    if "must be an index" in needle or "must be all" in needle:
        assert "dress (vestido)" in error and "ankle boot (botín)" in error


# --- posted latents ----------------------------------------------------------------------------
def test_posted_latents_take_a_category_per_row_or_one_for_all(gw: tuple[str, Recording]) -> None:
    url, _ = gw
    a, b = latents_for(9, 2, 100).tolist()
    post = url + "/api/generar-diseno"
    r = requests.post(post, json={"latents": [a, a, b], "categories": ["dress", "COAT", 3]})
    assert r.headers["x-model-name"] == COND_MODEL_NAME and "x-category" not in r.headers
    row = tiles(decode(r))[0]
    assert not np.array_equal(row[0], row[1])  # one latent, two categories
    one = requests.post(post, json={"latents": [a, b], "category": "vestido"}, timeout=30)
    assert one.headers["x-category"] == "dress"
    both = tiles(decode(one))[0]
    assert np.array_equal(both[0], row[0]) and np.array_equal(both[1], row[2])
    # the same as the seed's GET sheet of that category: its first latent is a
    alone = get(url, seed=9, rows=1, cols=1, category=3)
    assert np.array_equal(tiles(decode(alone))[0][0], row[0])
    listed = requests.post(post, json={"latents": [a, b], "category": [3, 3]}, timeout=30)
    assert listed.content == one.content
    first = requests.post(post, json={"latents": [a, b]}, timeout=30)
    assert first.headers["x-model-name"] == MODEL_NAME


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"categories": ["dress"]}, "categories must be one category, or a list of 2"),
        ({"category": "dress", "categories": [1, 2]}, "either category or categories"),
        ({"category": "all"}, "category must be an index from 0 to 9"),
        ({"categories": ["dress", "hat"]}, "each of categories must be an index from 0 to 9"),
        ({"categories": [True, 1]}, "each of categories must be"),
        ({"category": 12}, "category must be an index"),
    ],
)
def test_bad_posted_categories_are_400_sentences(
    gw: tuple[str, Recording], body: dict[str, Any], needle: str
) -> None:
    url, _ = gw
    latents = latents_for(1, 2, 100).tolist()
    r = requests.post(url + "/api/generar-diseno", json={"latents": latents, **body}, timeout=30)
    assert r.status_code == 400 and needle.lower() in r.json()["error"].lower(), r.text


# --- walks -------------------------------------------------------------------------------------
def test_walks_in_one_category_and_between_two(gw: tuple[str, Recording]) -> None:
    url, _ = gw
    walk = url + "/api/interpolate"
    ends: dict[str, Any] = {"from": 3, "to": 4, "steps": 5}
    dress = requests.get(walk, params={**ends, "category": "dress"}, timeout=30)
    assert dress.headers["x-category"] == "dress" and dress.headers["cache-control"] == "no-cache"
    strip = tiles(decode(dress))
    assert len(strip) == 1 and len(strip[0]) == 5
    start = tiles(decode(get(url, seed=3, rows=1, cols=1, category="dress")))[0][0]
    end = tiles(decode(get(url, seed=4, rows=1, cols=1, category="dress")))[0][0]
    assert np.array_equal(strip[0][0], start) and np.array_equal(strip[0][-1], end)
    coat = tiles(decode(requests.get(walk, params={**ends, "category": 4}, timeout=30)))
    between = requests.get(walk, params={**ends, "category": 3, "to_category": "abrigo"})
    assert between.headers["x-category"] == "dress,coat"
    two = tiles(decode(between))
    assert len(two) == 2  # the same walk as a dress, then as a coat
    assert all(np.array_equal(x, y) for x, y in zip(two[0], strip[0], strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(two[1], coat[0], strict=True))
    film = requests.get(walk, params={**ends, "category": 3, "to_category": 4, "format": "gif"})
    assert Image.open(io.BytesIO(film.content)).n_frames == 10  # as a dress, then as a coat
    a, b = latents_for(3, 1, 100)[0].tolist(), latents_for(4, 1, 100)[0].tolist()
    posted = requests.post(walk, json={"from": a, "to": b, "steps": 5, "category": "dress"})
    assert posted.content == dress.content


# --- pins, labels, caching, canary -------------------------------------------------------------
def test_versions_and_labels_of_the_second_model(gw: tuple[str, Recording]) -> None:
    url, _ = gw
    v1, v2 = (get(url, seed=5, category="bag", version=v) for v in (1, 2))
    assert [r.headers["x-model-version"] for r in (v1, v2)] == ["1", "2"]
    assert v1.content != v2.content
    assert v1.headers["cache-control"] == "public, max-age=31536000, immutable"
    # the second model's own labels (stable -> 2, canary -> 1; the first model's are 1 and 2)
    stable, canary = (get(url, seed=5, category="bag", label=n) for n in ("stable", "canary"))
    assert (stable.headers["x-model-version"], canary.headers["x-model-version"]) == ("2", "1")
    assert stable.content == v2.content and canary.content == v1.content
    assert get(url, seed=5, label="stable").headers["x-model-version"] == "1"  # the first's
    again = get(url, seed=5, category="bag")
    assert again.headers["etag"] == stable.headers["etag"]
    cached = requests.get(
        url + "/api/generar-diseno",
        params={"seed": "5", "category": "bag"},
        headers={"If-None-Match": again.headers["etag"]},
        timeout=30,
    )
    assert cached.status_code == 304
    missing = get(url, seed=5, category="bag", version=3)
    assert missing.status_code == 404 and "published versions: 1, 2" in missing.json()["error"]
    unknown = get(url, seed=5, category="bag", label="beta")
    assert unknown.status_code in (400, 404) and "defined labels: canary, stable" in unknown.text


def test_the_canary_split_sends_a_client_to_the_same_side_of_both_models(
    smoke_base: Path, cond_base: Path, tmp_path: Path
) -> None:
    s = settings_for(smoke_base, cond_base, tmp_path, canary_percent=50)
    sides: dict[str, set[tuple[str, str]]] = {"canary": set(), "stable": set()}
    with TestClient(create_app(s)) as c:
        for i in range(24):
            who = {"X-Client-Id": f"client-{i}"}
            first = c.get("/api/generar-diseno?seed=1", headers=who)
            cond = c.get("/api/generar-diseno?seed=1&category=dress", headers=who)
            route = first.headers["x-traffic-route"]
            assert cond.headers["x-traffic-route"] == route and cond.headers["vary"]
            sides[route].add((first.headers["x-model-version"], cond.headers["x-model-version"]))
        metrics = c.get("/metrics").text
    # labels per model: canary is 2 of the first and 1 of the second, stable the other way
    assert sides == {"canary": {("2", "1")}, "stable": {("1", "2")}}
    assert f'gateway_served_version{{model="{COND_MODEL_NAME}",route="canary"}} 1.0' in metrics


# --- status ------------------------------------------------------------------------------------
def test_status_endpoints_know_the_second_model(gw: tuple[str, Recording]) -> None:
    url, _ = gw
    get(url, seed=1, category="sneaker")
    listing = requests.get(url + "/api/versions", params={"model": COND_MODEL_NAME}).json()
    assert listing["model"] == COND_MODEL_NAME and listing["models"] == [
        MODEL_NAME,
        COND_MODEL_NAME,
    ]
    assert [(v["version"], v["labels"]) for v in listing["versions"]] == [
        (2, ["stable"]),
        (1, ["canary"]),
    ]
    row = listing["versions"][0]
    assert row["conditional"] is True and [c["es"] for c in row["categories"]] == list(
        CATEGORIES_ES
    )
    for key in ("fid_per_class", "agreement_per_class", "classifier_accuracy_per_class"):
        assert len(row["per_class"][key]) == 10, key
    assert 0 <= row["quality"]["agreement"] <= 1
    first = requests.get(url + "/api/versions", timeout=30).json()
    assert first["model"] == MODEL_NAME and "per_class" not in first["versions"][0]
    ready = requests.get(url + "/readyz", timeout=30).json()
    assert ready["upstream"]["available"] == [1, 2]  # the first model, as before
    assert ready["conditional"]["model"] == COND_MODEL_NAME
    assert ready["conditional"]["upstream"]["available"] == [1, 2]
    assert ready["conditional"]["model_folder_readable"] is True
    job = requests.get(url + "/api/training", params={"model": COND_MODEL_NAME}).json()
    assert job["model"] == COND_MODEL_NAME and job["training"]["state"] == "idle"
    metrics = requests.get(url + "/metrics", timeout=30).text
    for line in (
        f'gateway_model_available_versions{{model="{COND_MODEL_NAME}"}} 2.0',
        f'gateway_model_up{{model="{MODEL_NAME}"}} 1.0',
        f'gateway_served_version{{model="{COND_MODEL_NAME}",route="latest"}} 2.0',
    ):
        assert line in metrics, line
    assert 'gateway_sheets_total{model="fashion_gan_cond",route="latest",version="2"}' in metrics
    schema = requests.get(url + "/openapi.json", timeout=30).json()
    names = [p["name"] for p in schema["paths"]["/api/generar-diseno"]["get"]["parameters"]]
    assert "category" in names
    walk = [p["name"] for p in schema["paths"]["/api/interpolate"]["get"]["parameters"]]
    assert {"category", "to_category"} <= set(walk)
    assert "to_category" in requests.get(url + "/docs", timeout=30).text


def test_without_the_second_model_a_category_is_a_404(smoke_base: Path, tmp_path: Path) -> None:
    s = settings_for(smoke_base, tmp_path / "none", tmp_path, conditional=False)
    with TestClient(create_app(s)) as c:
        r = c.get("/api/generar-diseno?category=dress")
        assert r.status_code == 404 and "leave category out" in r.json()["error"]
        assert c.get("/api/generar-diseno?seed=1").status_code == 200
        assert c.get("/api/versions").json()["models"] == [MODEL_NAME]
        assert c.get("/readyz").json()["conditional"] is None


# --- admission is one for both models ----------------------------------------------------------
def test_admission_and_fairness_count_both_models_together() -> None:
    """One batcher: a client's queued images of either model are its images; each model's
    calls go to its own backend with its categories."""
    from gateway.batching import Batcher
    from gateway.errors import Overloaded

    calls: list[tuple[str, int, list[int] | None]] = []

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        async def generate(
            self, z: np.ndarray, pin: Pin, category: np.ndarray | None = None
        ) -> Generated:
            calls.append((self.name, len(z), None if category is None else category.tolist()))
            return Generated(np.zeros((len(z), 28, 28, 1), np.float32), 1)

    async def scenario() -> None:
        batcher = Batcher(Fake("first"), 288, max_queue_images=20)  # type: ignore[arg-type]
        batcher.add_model("cond", Fake("cond"))  # type: ignore[arg-type]
        z = np.zeros((9, 100), np.float32)
        one = batcher.submit(z, Pin(), "a")
        two = batcher.submit(z, Pin(), "a", model="cond", category=np.full(9, 3, np.int64))
        # a's images of both models are a's: all 18 go before 20 of b's, round-robin
        assert batcher.waiting == 18 and batcher.ahead("b", 20) == 18
        with pytest.raises(Overloaded):
            batcher.submit(z, Pin(), "b", model="cond", category=np.zeros(9, np.int64))
        await asyncio.gather(one, two)
        await batcher.close()

    asyncio.run(scenario())
    assert sorted(calls, key=str) == [("cond", 9, [3] * 9), ("first", 9, None)]


# --- the Python client -------------------------------------------------------------------------
def test_gateway_client_takes_a_category(gw: tuple[str, Recording]) -> None:
    url, _ = gw
    client = GatewayClient(url)
    sheet = client.sheet(seed=7, rows=2, cols=3, category="vestido")
    assert (sheet.model, sheet.category, sheet.seed) == (COND_MODEL_NAME, "dress", 7)
    assert sheet.data == get(url, seed=7, rows=2, cols=3, category="dress").content
    every = client.sheet(seed=7, cols=2, category="all")
    assert Image.open(io.BytesIO(every.data)).size == (2 * TILE, 10 * TILE)
    plain = client.sheet(seed=7, rows=2, cols=3)  # None: the first model, as before
    assert plain.model == MODEL_NAME and plain.category is None and plain.data != sheet.data
    posted = client.sheet_from_latents(latents_for(9, 2, 100), category=["dress", 4])
    assert posted.model == COND_MODEL_NAME
    walk = client.interpolate(3, 4, steps=5, category="dress", to_category="coat", version=2)
    assert walk.category == "dress,coat"
    assert Image.open(io.BytesIO(walk.data)).size == (5 * TILE, 2 * TILE)
    assert client.versions(model=COND_MODEL_NAME)["newest"] == 2
    assert client.training(model=COND_MODEL_NAME)["state"] == "idle"
    with pytest.raises(GatewayError) as err:
        client.sheet(category="hat")
    assert err.value.status == 400 and "ankle boot (botín)" in str(err.value)


# --- train on miss -----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_category_with_no_version_trains_the_second_model(
    smoke_base: Path,
    data_dir: Path,
    classifier_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first model has versions; the second none. Start-up trains nothing; the first
    request with a category starts a conditional smoke job of its own (503, Retry-After, its
    progress at /api/training?model=...), the first model keeps serving, and once the job has
    published version 1 the category is served."""
    monkeypatch.setenv("FASHION_MNIST_DIR", str(data_dir))
    monkeypatch.setenv("FASHION_GAN_CLASSIFIER", str(classifier_path))
    cond = tmp_path / "models" / COND_MODEL_NAME
    cond.parent.mkdir()
    s = settings_for(
        smoke_base,
        cond,
        tmp_path,
        train_on_miss=True,
        train_profile="smoke",
        retry_after_s=4,
        poll_interval_s=0.5,
    )
    status = f"/api/training?model={COND_MODEL_NAME}"
    with serve(create_app(s)) as url:
        time.sleep(1.0)  # bootstrap's look: it must start nothing for the second model
        assert requests.get(url + status, timeout=30).json()["training"]["state"] == "idle"
        r = get(url, seed=3, category="dress")
        assert r.status_code == 503 and r.headers["retry-after"] == "4"
        body = r.json()
        assert body["status_url"] == status and body["model"] == COND_MODEL_NAME
        assert body["training"]["state"] == "running" and body["training"]["profile"] == "smoke"
        assert "class-conditional" in body["error"]
        assert get(url, seed=3).status_code == 200  # the first model serves meanwhile
        assert requests.get(url + "/api/training", timeout=30).json()["training"]["state"] == "idle"
        job = json.loads((tmp_path / "jobs" / COND_MODEL_NAME / "job.json").read_text())
        assert job["state"] == "running"
        deadline = time.monotonic() + 300
        while (r := get(url, seed=3, category="dress")).status_code != 200:
            assert r.status_code == 503, r.text
            assert time.monotonic() < deadline, requests.get(url + status, timeout=30).text
            time.sleep(1)
        assert r.headers["x-model-version"] == "1" and r.headers["x-category"] == "dress"
    card = json.loads((cond / "1" / "assets.extra" / "model_card.json").read_text())
    assert card["conditional"] is True
    log = (tmp_path / "jobs" / COND_MODEL_NAME / "train.log").read_text()
    assert "Publicada la versión 1" in log


def test_a_category_miss_waits_for_the_first_model_s_job_that_publishes_it_too(
    smoke_base: Path, tmp_path: Path
) -> None:
    """The first model's quick job publishes the class-conditional model too: while it runs, a
    category with no version waits for it (503, its status) and starts no job of its own. The
    job is the runner's files as a live one leaves them: job.json, the trainer's progress
    (written as training/progressive.py writes it) and the running lock held."""
    from fashion_core import jobs, locks
    from fashion_core.progress import ProgressFile

    cond = tmp_path / "models" / COND_MODEL_NAME
    cond.mkdir(parents=True)
    first_jobs = tmp_path / "jobs"
    first_jobs.mkdir()
    (first_jobs / jobs.JOB_FILE).write_text(
        json.dumps({"state": "running", "profile": "quick", "started": time.time()})
    )
    progress = ProgressFile(first_jobs / jobs.PROGRESS_FILE)
    progress.update(force=True, phase="training", clock_s=40.0, budget_s=3600.0, improving=True)
    progress.update(force=True, companion={"model": COND_MODEL_NAME, "published": []})
    held = locks.try_acquire(first_jobs / jobs.RUNNING_LOCK)
    assert held is not None
    s = settings_for(
        smoke_base, cond, tmp_path, train_on_miss=True, train_profile="quick", admin_token="t0k"
    )
    try:
        with serve(create_app(s)) as url:
            r = get(url, seed=3, category="dress")
            assert r.status_code == 503 and "Retry-After" in r.headers
            body = r.json()
            assert "training job publishes it too" in body["error"], body
            assert body["status_url"] == "/api/training" and body["model"] == COND_MODEL_NAME
            assert body["training"]["companion"]["model"] == COND_MODEL_NAME
            assert get(url, seed=3).status_code == 200  # the first model serves meanwhile
            state = requests.get(url + f"/api/training?model={COND_MODEL_NAME}", timeout=30)
            assert state.json()["training"]["state"] == "idle"  # no job of its own
            assert not (first_jobs / COND_MODEL_NAME / jobs.JOB_FILE).exists()
            # an operator may still start it: POST /api/training?model= (then stopped here)
            started = requests.post(
                url + "/api/training",
                params={"model": COND_MODEL_NAME},
                json={"profile": "smoke"},
                headers={"Authorization": "Bearer t0k"},
                timeout=30,
            )
            assert started.status_code == 202, started.text
            answer = started.json()
            assert answer["started"] and answer["model"] == COND_MODEL_NAME
            assert answer["training"]["profile"] == "smoke"
            os.killpg(answer["training"]["pid"], signal.SIGKILL)
    finally:
        os.close(held)


# --- the Python API ---------------------------------------------------------------------------
def test_python_api_draws_a_category_as_the_gateway_does(
    gw: tuple[str, Recording],
    smoke_base: Path,
    cond_base: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``generar_muestra_ropa(categoria=...)``: the gateway's bytes for the same seed and
    category (names in either language, ``all``), the second model's own labels, and the
    parser's sentence for a name that is none."""
    from fashion_gan import generar_muestra_ropa

    url, _ = gw
    config = tmp_path / "models.config"
    config.write_text(models_config({"stable": 1}, {"stable": 2, "canary": 1}))
    monkeypatch.setenv("MODEL_BASE_PATH", str(smoke_base))
    monkeypatch.setenv("COND_MODEL_BASE_PATH", str(cond_base))
    monkeypatch.setenv("MODEL_CONFIG_FILE", str(config))
    sheet = generar_muestra_ropa(seed=11, categoria="Vestido")
    assert sheet.version == 2  # the second model's newest
    assert sheet.getvalue() == get(url, seed=11, category="dress", version=2).content
    every = generar_muestra_ropa(seed=5, cols=2, categoria="all")
    assert every.getvalue() == get(url, seed=5, cols=2, category="all", version=2).content
    assert Image.open(every).size == (2 * TILE, 10 * TILE)
    pinned = generar_muestra_ropa(seed=11, categoria=3, label="canary")
    assert pinned.version == 1 and pinned.getvalue() != sheet.getvalue()
    assert generar_muestra_ropa(seed=11).version == 2  # no category: the first model, as ever
    with pytest.raises(ValueError, match=r"categoria must be all, an index from 0 to 9 .*botín"):
        generar_muestra_ropa(seed=11, categoria="zapato")
