"""The HTTP API through Starlette's TestClient, with the embedded backend on the two real smoke
versions: PNG sheets, seeds, pins, labels, bad input, health, metrics and docs."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from starlette.testclient import TestClient

from fashion_core.render import sheet_size
from gateway.app import create_app
from gateway.settings import Settings
from tests.servers import embedded_settings, labels_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def client(smoke_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    s = embedded_settings(smoke_base, tmp_path_factory.mktemp("gw"))
    with TestClient(create_app(s), raise_server_exceptions=False) as c:
        yield c


def decode(resp: object) -> np.ndarray:
    body = resp.content  # type: ignore[attr-defined]
    assert body.startswith(PNG_MAGIC)
    img = Image.open(io.BytesIO(body))
    assert img.format == "PNG" and img.mode == "L"
    return np.asarray(img)


def test_default_sheet_is_a_new_3x3_png_every_call(client: TestClient) -> None:
    a, b = client.get("/api/generar-diseno"), client.get("/api/generar-diseno")
    for r in (a, b):
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.headers["x-model-version"] == "2" and r.headers["cache-control"] == "no-store"
        assert decode(r).shape == (84, 84)
    assert a.headers["x-seed"] != b.headers["x-seed"] and a.content != b.content


def test_seed_gives_byte_identical_png_with_etag(client: TestClient) -> None:
    a = client.get("/api/generar-diseno?seed=42")
    b = client.get("/api/generar-diseno?seed=42")
    c = client.get("/api/generar-diseno?seed=43")
    assert a.content == b.content != c.content
    assert a.headers["x-seed"] == "42" and a.headers["etag"] == b.headers["etag"]
    # "the newest version" changes with a rollout: caches must revalidate, never keep it
    assert a.headers["cache-control"] == "no-cache"
    again = client.get("/api/generar-diseno?seed=42", headers={"If-None-Match": a.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_only_an_explicit_version_is_immutable(client: TestClient) -> None:
    pinned = client.get("/api/generar-diseno?seed=42&version=2")
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    labelled = client.get("/api/generar-diseno?seed=42&label=canary")
    assert labelled.headers["cache-control"] == "no-cache"
    assert pinned.content == labelled.content  # canary is version 2
    assert "vary" not in pinned.headers  # no canary split in this app


def test_unseeded_sheet_is_reproducible_from_its_x_seed(client: TestClient) -> None:
    r = client.get("/api/generar-diseno")
    again = client.get(f"/api/generar-diseno?seed={r.headers['x-seed']}")
    assert again.content == r.content  # batched or not, the same bytes


@pytest.mark.parametrize(
    ("query", "rows", "cols", "spacing", "scale"),
    [
        ("rows=2&cols=5", 2, 5, 0, 1),
        ("rows=1&cols=1&scale=8", 1, 1, 0, 8),
        ("spacing=3&scale=2", 3, 3, 3, 2),
        ("rows=16&cols=16", 16, 16, 0, 1),
    ],
)
def test_layout(
    client: TestClient, query: str, rows: int, cols: int, spacing: int, scale: int
) -> None:
    r = client.get(f"/api/generar-diseno?seed=1&{query}")
    assert r.status_code == 200
    w, h = sheet_size(rows, cols, spacing, scale)
    assert decode(r).shape == (h, w)


def test_version_and_label_pins(client: TestClient) -> None:
    v1 = client.get("/api/generar-diseno?seed=5&version=1")
    v2 = client.get("/api/generar-diseno?seed=5&version=2")
    stable = client.get("/api/generar-diseno?seed=5&label=stable")
    canary = client.get("/api/generar-diseno?seed=5&label=canary")
    assert [r.headers["x-model-version"] for r in (v1, v2, stable, canary)] == ["1", "2", "1", "2"]
    assert v1.content == stable.content and v2.content == canary.content != v1.content


@pytest.mark.parametrize(
    ("query", "status", "needle"),
    [
        ("seed=-1", 400, "seed must be an integer from 0 to"),
        ("seed=abc", 400, "seed must be an integer"),
        ("seed=1.5", 400, "seed must be an integer"),
        ("seed=99999999999999999999", 400, "seed must be an integer"),
        ("rows=0", 400, "rows must be an integer from 1 to 16"),
        ("cols=17", 400, "cols must be an integer from 1 to 16"),
        ("scale=9", 400, "scale must be an integer from 1 to 8"),
        ("spacing=-2", 400, "spacing must be an integer from 0 to 8"),
        ("version=abc", 400, "version must be an integer"),
        ("version=0", 400, "version must be an integer"),
        ("version=1&label=stable", 400, "either version or label"),
        ("label=a/b", 400, "label must be 1-64 letters"),
        # dot segments: an HTTP client folds /labels/../metadata into the newest version's
        ("label=..", 400, "starting with a letter or digit"),
        ("label=.", 400, "starting with a letter or digit"),
        ("label=.stable", 400, "starting with a letter or digit"),
        ("label=nope", 400, "label 'nope' is not defined; defined labels: canary, stable"),
        ("version=99", 404, "version 99 does not exist; published versions: 1, 2"),
        ("colour=red", 400, "unknown parameter 'colour'"),
    ],
)
def test_bad_query_is_a_4xx_sentence(
    client: TestClient, query: str, status: int, needle: str
) -> None:
    r = client.get(f"/api/generar-diseno?{query}")
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert needle.lower() in error.lower() and error.endswith(".")
    assert "Traceback" not in r.text


def _latents(n: int, dim: int = 100) -> list[list[float]]:
    return np.random.default_rng(n).standard_normal((n, dim)).round(4).tolist()  # type: ignore[no-any-return]


def test_post_latents(client: TestClient) -> None:
    body = {"latents": _latents(9)}
    a = client.post("/api/generar-diseno", json=body)
    b = client.post("/api/generar-diseno", json=body)
    assert a.status_code == 200 and decode(a).shape == (84, 84) and a.content == b.content
    six = client.post("/api/generar-diseno", json={"latents": _latents(6), "scale": 2})
    assert decode(six).shape == (2 * 28 * 2, 3 * 28 * 2)
    pinned = client.post("/api/generar-diseno", json={"latents": _latents(1), "version": 1})
    assert pinned.headers["x-model-version"] == "1"


@pytest.mark.parametrize(
    ("raw", "status", "needle"),
    [
        (b"{not json", 400, "must be JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (json.dumps({"latents": [[0.0] * 99]}).encode(), 400, "list of 100 numbers"),
        (json.dumps({"latents": [[0.0] * 100, [1.0] * 101]}).encode(), 400, "100 numbers"),
        (b'{"latents": [[' + b"NaN," * 99 + b"0]]}", 400, "finite"),
        (b'{"latents": [[' + b"Infinity," * 99 + b"0]]}", 400, "finite"),
        (json.dumps({"latents": [["a"] * 100]}).encode(), 400, "100 numbers"),
        (json.dumps({"latents": []}).encode(), 400, "1 to 256 vectors"),
        (json.dumps({"latents": [[0.0] * 100] * 4, "rows": 3}).encode(), 400, "rows x cols"),
        (json.dumps({"latents": [[0.0] * 100], "extra": 1}).encode(), 400, "unknown field"),
        (b" " * (1 << 20) + b"{}", 413, "at most 1048576 bytes"),
    ],
)
def test_bad_post_is_a_4xx_sentence(
    client: TestClient, raw: bytes, status: int, needle: str
) -> None:
    r = client.post(
        "/api/generar-diseno", content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == status, r.text
    assert needle.lower() in r.json()["error"].lower()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.sampled_from(["seed", "rows", "cols", "scale", "spacing", "version", "label"]),
    value=st.text(max_size=30),
)
def test_no_query_value_makes_a_5xx(client: TestClient, key: str, value: str) -> None:
    r = client.get("/api/generar-diseno", params={key: value})
    assert r.status_code in (200, 400, 404), (key, value, r.text)
    if r.status_code != 200:
        assert r.json()["error"].endswith(".")


def test_health_ready_metrics_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["upstream"]["available"] == [1, 2]
    client.get("/api/generar-diseno")
    metrics = client.get("/metrics").text
    for name in (
        "gateway_requests_total",
        "gateway_request_seconds_bucket",
        "gateway_batch_images_bucket",
        'gateway_served_version{model="fashion_gan",route="latest"} 2.0',
        "gateway_upstream_ready 1.0",
        "gateway_base_path_readable 1.0",
        "gateway_sheets_total",
        "gateway_upstream_errors_total",
    ):
        assert name in metrics, name
    schema = client.get("/openapi.json").json()
    assert "/api/generar-diseno" in schema["paths"] and schema["openapi"].startswith("3.")
    assert "<h1>" in client.get("/docs").text
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json()["error"].endswith(".")
    assert client.delete("/api/generar-diseno").status_code == 405


def test_training_endpoints(client: TestClient) -> None:
    assert client.get("/api/training").json()["training"]["state"] == "idle"
    r = client.post("/api/training")
    assert r.status_code == 403 and "GATEWAY_ADMIN_TOKEN" in r.json()["error"]


def test_canary_split_is_the_share_of_clients_and_stable_per_client() -> None:
    from gateway.backends.base import Pin
    from gateway.routing import choose

    s = Settings(canary_percent=10)
    routes = [choose(None, f"client-{i}", s)[1] for i in range(10_000)]
    assert 0.09 <= routes.count("canary") / 10_000 <= 0.11
    assert all(choose(None, f"client-{i}", s)[1] == routes[i] for i in range(0, 10_000, 97))
    assert choose(Pin(version=3), "client-1", s) == (Pin(version=3), "pinned")
    assert choose(None, "x", Settings())[1] == "latest"
    assert choose(None, "x", Settings(default_label="stable")) == (Pin(label="stable"), "stable")


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    import ipaddress

    from gateway.routing import client_address

    ingress = (ipaddress.ip_network("10.0.0.0/8"),)
    chain = {"x-forwarded-for": "203.0.113.9, 10.1.2.3"}
    assert client_address("10.0.0.5", chain, ingress) == "203.0.113.9"  # via two proxies
    assert client_address("198.51.100.7", chain, ingress) == "198.51.100.7"  # not a proxy
    assert client_address("10.0.0.5", chain, ()) == "10.0.0.5"  # nobody trusted
    spoofed = {"x-forwarded-for": "1.1.1.1, 203.0.113.9"}  # the client wrote 1.1.1.1 itself
    assert client_address("10.0.0.5", spoofed, ingress) == "203.0.113.9"


def test_answers_vary_by_client_when_a_canary_splits_traffic(
    smoke_base: Path, tmp_path: Path
) -> None:
    config = tmp_path / "models.config"
    config.write_text(labels_config({"stable": 1, "canary": 2}))
    s = Settings(
        model_base_path=smoke_base,
        model_config_file=config,
        jobs_dir=tmp_path / "jobs",
        train_on_miss=False,
        canary_percent=50,
    )
    with TestClient(create_app(s)) as c:
        routed = c.get("/api/generar-diseno?seed=1", headers={"X-Client-Id": "a"})
        pinned = c.get("/api/generar-diseno?seed=1&version=1", headers={"X-Client-Id": "a"})
        # gateway_served_version is per route: both sides of the split at once, and a pinned
        # request (the client's choice) changes neither
        by_route = {}
        for i in range(40):
            r = c.get("/api/generar-diseno", headers={"X-Client-Id": f"client-{i}"})
            by_route[r.headers["x-traffic-route"]] = r.headers["x-model-version"]
        c.get("/api/generar-diseno?version=2", headers={"X-Client-Id": "a"})
        metrics = c.get("/metrics").text
    assert routed.headers["vary"] == "X-Client-Id"
    assert routed.headers["x-traffic-route"] in ("canary", "stable")
    assert routed.headers["cache-control"] == "no-cache"
    assert "vary" not in pinned.headers and "immutable" in pinned.headers["cache-control"]
    assert by_route == {"stable": "1", "canary": "2"}
    assert 'gateway_served_version{model="fashion_gan",route="stable"} 1.0' in metrics
    assert 'gateway_served_version{model="fashion_gan",route="canary"} 2.0' in metrics
    assert 'gateway_served_version{model="fashion_gan",route="pinned"}' not in metrics


def _tiles(img: np.ndarray) -> list[np.ndarray]:
    return [img[:, i : i + 28] for i in range(0, img.shape[1], 28)]


def test_interpolation_is_a_strip_from_one_seed_to_the_other(client: TestClient) -> None:
    r = client.get("/api/interpolate?from=3&to=4&steps=6")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    strip = decode(r)
    assert strip.shape == (28, 6 * 28)  # wider than tall: one row of steps designs
    # the walk starts and ends on the first design of each seed's sheet
    first = decode(client.get("/api/generar-diseno?seed=3&rows=1&cols=1"))
    last = decode(client.get("/api/generar-diseno?seed=4&rows=1&cols=1"))
    tiles = _tiles(strip)
    assert (tiles[0] == first).all() and (tiles[-1] == last).all()
    assert not (tiles[2] == first).all() and not (tiles[2] == last).all()
    # the same caching as a seeded sheet: revalidate unless a version is named
    assert r.headers["cache-control"] == "no-cache" and r.headers["x-model-version"] == "2"
    again = client.get(
        "/api/interpolate?from=3&to=4&steps=6", headers={"If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304
    pinned = client.get("/api/interpolate?from=3&to=4&steps=6&version=2")
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert pinned.content == r.content
    assert client.get("/api/interpolate?from=3&to=4&steps=6&label=stable").content != r.content


def test_interpolation_as_gif_and_from_posted_latents(client: TestClient) -> None:
    film = client.get("/api/interpolate?from=3&to=4&steps=5&format=gif&scale=2")
    assert film.status_code == 200 and film.headers["content-type"] == "image/gif"
    gif = Image.open(io.BytesIO(film.content))
    assert gif.n_frames == 5 and gif.size == (56, 56) and gif.info["loop"] == 0
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 100)).tolist()
    walk = client.post("/api/interpolate", json={"from": a, "to": b, "steps": 3, "version": 1})
    assert walk.status_code == 200 and walk.headers["x-model-version"] == "1"
    ends = client.post("/api/generar-diseno", json={"latents": [a, b], "version": 1})
    strip, pair = _tiles(decode(walk)), _tiles(decode(ends))
    assert (strip[0] == pair[0]).all() and (strip[-1] == pair[1]).all()
    bad = client.post("/api/interpolate", json={"from": a, "to": b[:50]})
    assert bad.status_code == 400 and "100 numbers" in bad.json()["error"]


def test_versions_gallery_and_schema(client: TestClient) -> None:
    listing = client.get("/api/versions").json()
    assert [(v["version"], v["state"], v["labels"]) for v in listing["versions"]] == [
        (2, "AVAILABLE", ["canary"]),
        (1, "AVAILABLE", ["stable"]),
    ]
    assert listing["newest"] == 2 and listing["versions"][0]["profile"] == "smoke"
    assert listing["versions"][0]["quality"]["fid"] > 0
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/gallery.js"' in page.text and 'alt="' in page.text
    assert client.get("/static/gallery.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/gallery.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/other.js").status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/interpolate"]) == {"get", "post"}
    assert "/api/versions" in paths and "/" in paths


def test_catalog_shows_a_damaged_card_as_no_figures(tmp_path: Path) -> None:
    import asyncio

    from gateway.backends.base import ModelStatus, VersionState
    from gateway.catalog import Catalog

    base = tmp_path / "fashion_gan"
    cards = {
        1: "[1, 2]",  # not an object
        2: '{"quality": [3], "training": "x"}',  # sections of the wrong type
        3: '{"quality": {"fid": "low", "samples": 500}}',  # a figure that is not a number
        4: "{not json",
    }
    for version, text in cards.items():
        (base / str(version) / "assets.extra").mkdir(parents=True)
        (base / str(version) / "assets.extra" / "model_card.json").write_text(text)
    status = ModelStatus([VersionState(v, "AVAILABLE") for v in (*cards, 5)])  # 5: not on disk
    listing = asyncio.run(Catalog(Settings(model_base_path=base)).listing(status))
    quality = {row["version"]: row["quality"] for row in listing["versions"]}
    assert quality == {1: {}, 2: {}, 3: {"samples": 500}, 4: {}, 5: {}}
    assert listing["newest"] == 5 and listing["labels"] == {}
