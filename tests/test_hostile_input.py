"""No input makes a 500: property-based tests (hypothesis) over query strings and JSON bodies of
the gateway and the trainer's job runner, with deep nesting, huge integers, wrong types,
NaN/Inf, unicode, and sizes at and past every limit. Every answer is 2xx/3xx, or a 4xx whose
body is one JSON sentence; and a 5xx that a bug could still cause is counted in the metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from fashion_core.jobs import TrainingJobs
from gateway.app import create_app
from gateway.backends.base import Generated, ModelStatus, Pin
from gateway.settings import Settings
from training.jobserver import create_app as create_jobserver

KEYS = ["seed", "rows", "cols", "scale", "spacing", "version", "label"]
EXAMPLES = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HUGE = st.integers(min_value=-(10**400), max_value=10**400)
NUMBERS = st.one_of(HUGE, st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 300))
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@pytest.fixture(scope="module")
def client(smoke_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    s = Settings(
        model_base_path=smoke_base,
        jobs_dir=tmp_path_factory.mktemp("jobs"),
        train_on_miss=False,
        admin_token="s3cret",
        max_queue_wait_s=30,
    )
    with TestClient(create_app(s), raise_server_exceptions=False) as c:
        yield c


def check(response: Any) -> None:
    """2xx/3xx, or a 4xx with one JSON sentence; never a 5xx or a traceback."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        text = response.json()["error"]
        assert isinstance(text, str) and text.endswith(".") and "\n" not in text, text
        assert "Traceback" not in response.text


@EXAMPLES
@given(st.dictionaries(st.sampled_from([*KEYS, "colour", "é", ""]), st.text(max_size=30)))
def test_any_query_is_answered(client: TestClient, query: dict[str, str]) -> None:
    check(client.get("/api/generar-diseno?" + urlencode(query)))


@EXAMPLES
@given(st.text(max_size=60))
def test_any_raw_query_string_is_answered(client: TestClient, raw: str) -> None:
    check(client.get("/api/generar-diseno?" + quote(raw, safe="=&%+")))


@EXAMPLES
@given(JSON)
def test_any_json_body_is_answered(client: TestClient, doc: Any) -> None:
    check(client.post("/api/generar-diseno", content=json.dumps(doc)))


@EXAMPLES
@given(
    st.lists(
        st.lists(NUMBERS | st.text(max_size=3) | st.none(), min_size=99, max_size=101), max_size=3
    ),
    st.dictionaries(st.sampled_from(KEYS[1:]), JSON, max_size=3),
)
def test_latents_of_every_shape_and_type_are_answered(
    client: TestClient, latents: list[list[Any]], extra: dict[str, Any]
) -> None:
    check(client.post("/api/generar-diseno", content=json.dumps({"latents": latents, **extra})))


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 5000,  # RecursionError in a naive parser
        b'{"latents": [[' + b"9" * 400 + b"] ]}",  # a 400-digit integer
        b'{"latents": [' + b", ".join([b"[" + b"1e999, " * 99 + b"0]"]) + b"]}",
        '{"latents": "\u2603"}'.encode(),
        b"\xff\xfe not utf-8",
        b"",
        b"null",
    ],
)
def test_known_attacks_are_4xx(client: TestClient, body: bytes) -> None:
    response = client.post("/api/generar-diseno", content=body)
    check(response)
    assert response.status_code == 400


def test_sizes_at_and_past_every_limit(client: TestClient) -> None:
    s = Settings()
    ok = client.get(f"/api/generar-diseno?seed=1&rows={s.max_grid}&cols={s.max_grid}")
    assert ok.status_code == 200
    for query in (
        f"rows={s.max_grid + 1}",
        f"scale={s.max_scale + 1}",
        f"spacing={s.max_spacing + 1}",
    ):
        r = client.get(f"/api/generar-diseno?seed=1&{query}")
        check(r)
        assert r.status_code == 400
    full = [[0.0] * 100] * (s.max_grid * s.max_grid)
    assert client.post("/api/generar-diseno", json={"latents": full}).status_code == 200
    too_many = client.post("/api/generar-diseno", json={"latents": [*full, [0.0] * 100]})
    check(too_many)
    assert too_many.status_code == 400
    big = b" " * (s.max_body_bytes + 1)
    r = client.post("/api/generar-diseno", content=big)
    check(r)
    assert r.status_code == 413


@EXAMPLES
@given(JSON | st.binary(max_size=50).map(lambda b: b.decode("latin-1")))
def test_any_training_request_body_is_answered(client: TestClient, doc: Any) -> None:
    body = doc if isinstance(doc, str) else json.dumps(doc)
    r = client.post("/api/training", content=body, headers={"Authorization": "Bearer nope"})
    check(r)
    assert r.status_code == 401  # the token is checked before the body is read


@pytest.fixture(scope="module")
def jobserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # a job that starts fails within a second (no data); starting is not what is tested here
    tmp = tmp_path_factory.mktemp("jobserver")
    jobs = TrainingJobs(tmp / "jobs", tmp / "models", extra_args=("--data-dir", str(tmp / "none")))
    with TestClient(create_jobserver(jobs, "smoke", token="t0k")) as c:
        yield c


@EXAMPLES
@given(JSON | st.text(max_size=40))
def test_any_job_server_body_is_answered(jobserver: TestClient, doc: Any) -> None:
    body = doc if isinstance(doc, str) else json.dumps(doc)
    r = jobserver.post("/api/training", content=body, headers={"Authorization": "Bearer t0k"})
    check(r)
    too_big = len(body.encode()) > 4096  # the job server's body limit
    assert r.status_code == 413 if too_big else r.status_code in (202, 400)


def test_job_server_refuses_big_bodies(jobserver: TestClient) -> None:
    headers = {"Authorization": "Bearer t0k"}
    declared = jobserver.post("/api/training", content=b"x" * 5000, headers=headers)
    assert declared.status_code == 413
    streamed = jobserver.post(
        "/api/training", content=iter([b"x" * 3000, b"y" * 3000]), headers=headers
    )
    assert streamed.status_code == 413
    check(jobserver.post("/api/training", json={"profile": []}, headers=headers))


class _Buggy:
    """A backend with a bug (an exception no code expects): the one way left to a 500."""

    name = "buggy"

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def latent_dim(self, pin: Pin) -> int:
        return 100

    async def status(self) -> ModelStatus:
        return ModelStatus([])

    async def generate(
        self, z: np.ndarray, pin: Pin, category: np.ndarray | None = None
    ) -> Generated:
        raise ZeroDivisionError("a bug")


def test_a_500_from_a_bug_is_one_sentence_and_counted(tmp_path: Path) -> None:
    s = Settings(model_base_path=tmp_path, jobs_dir=tmp_path / "jobs", train_on_miss=False)
    with TestClient(create_app(s, backend=_Buggy()), raise_server_exceptions=False) as c:
        r = c.get("/api/generar-diseno")
        assert r.status_code == 500 and r.json() == {"error": "The gateway failed; this is a bug."}
        metrics = c.get("/metrics").text
    assert 'gateway_requests_total{route="design",status="500"} 1.0' in metrics


WALK_KEYS = ["from", "to", "steps", "format", "scale", "spacing", "version", "label"]
WALK_EXAMPLES = settings(EXAMPLES, max_examples=60)


@WALK_EXAMPLES
@given(
    st.dictionaries(
        st.sampled_from([*WALK_KEYS, "rows", "é"]),
        st.text(max_size=12) | st.integers(-3, 40).map(str),
    )
)
def test_any_interpolation_query_is_answered(client: TestClient, query: dict[str, str]) -> None:
    check(client.get("/api/interpolate?" + urlencode(query)))


@WALK_EXAMPLES
@given(
    st.lists(NUMBERS | st.none(), min_size=99, max_size=101) | JSON,
    st.lists(NUMBERS, min_size=100, max_size=100) | JSON,
    st.dictionaries(st.sampled_from(WALK_KEYS[2:]), JSON, max_size=3),
)
def test_any_interpolation_body_is_answered(
    client: TestClient, start: Any, end: Any, extra: dict[str, Any]
) -> None:
    check(client.post("/api/interpolate", content=json.dumps({"from": start, "to": end, **extra})))


@pytest.mark.parametrize("body", [b"[" * 5000, b"", b"null", b"\xff\xfe", b'{"from": 1e999}'])
def test_known_attacks_on_interpolation_are_4xx(client: TestClient, body: bytes) -> None:
    response = client.post("/api/interpolate", content=body)
    check(response)
    assert response.status_code == 400


def test_interpolation_limits(client: TestClient) -> None:
    s = Settings()
    longest = client.get(f"/api/interpolate?from=1&to=2&steps=32&scale={s.max_scale}&format=gif")
    assert longest.status_code == 200 and longest.headers["content-type"] == "image/gif"
    for query in ("steps=1", "steps=33", f"scale={s.max_scale + 1}", "format=webp", "to=-1"):
        r = client.get(f"/api/interpolate?from=1&to=2&{query}")
        check(r)
        assert r.status_code == 400, query
