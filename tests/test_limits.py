"""One table of request limits (fashion_core/limits.py), read by everything that states one: the
validator, the OpenAPI schema and docs page, ``GET /api/limits`` (the gallery's source), the
Python API and the README. The walk: each limit's minimum and maximum are accepted, one past
either is refused with the limit's own sentence; on a gateway with smaller maxima too."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from fashion_core.limits import Limit, markdown_table, table
from gateway import params
from gateway.app import create_app
from gateway.docs import openapi
from gateway.errors import BadRequest
from gateway.settings import Settings
from tests.conftest import REPO

SMALL = Settings(max_grid=5, max_scale=3, max_spacing=2)  # not the defaults: read, not copied
DIM = 4  # latent size for the POST bodies (the validator is told it)


def _vector(x: float = 0.0) -> list[float]:
    return [x] * DIM


def _call(name: str, s: Settings) -> Callable[[int], Any]:
    """Feed one value of ``name`` to the validator of a request that takes it."""
    if name in ("rows", "cols", "scale", "spacing", "seed", "version"):
        return lambda v: params.query({name: str(v)}, s)
    if name in ("steps", "from", "to"):
        ends = {"from": "1", "to": "2"}
        return lambda v: params.walk_query({**ends, name: str(v)}, s)
    if name == "latents":
        return lambda n: params.body(
            json.dumps({"latents": [_vector()] * n, "rows": 1, "cols": n}).encode(), s, DIM
        )
    raise AssertionError(f"no request takes {name}: add one to this walk")


@pytest.mark.parametrize("s", [Settings(), SMALL], ids=["defaults", "small"])
@pytest.mark.parametrize("name", list(table()))
def test_walk_the_table(name: str, s: Settings) -> None:
    limit = s.limits[name]
    call = _call(name, s)
    if name == "latents":  # a 1 x n sheet: n within rows x cols needs cols <= max_grid
        ok = [limit.lo, s.max_grid]
        for bad in (limit.lo - 1, limit.hi + 1):
            with pytest.raises(BadRequest, match="latents must be a list of 1 to"):
                call(bad)
    else:
        ok = [limit.lo, limit.hi]
        for bad in (limit.lo - 1, limit.hi + 1):
            with pytest.raises(BadRequest) as err:
                call(bad)
            assert str(err.value) == limit.sentence()
    for value in ok:
        call(value)  # accepted


def test_latents_at_the_largest_sheet_are_accepted() -> None:
    s = SMALL
    n = s.limits["latents"].hi  # 25: a 5 x 5 sheet
    layout, z, _ = params.body(json.dumps({"latents": [_vector()] * n}).encode(), s, DIM)
    assert (layout.rows, layout.cols, z.shape) == (5, 5, (25, DIM))


def test_the_maxima_follow_the_settings() -> None:
    assert {n: lim.hi for n, lim in SMALL.limits.items() if lim.setting} == {
        "rows": 5,
        "cols": 5,
        "scale": 3,
        "spacing": 2,
        "steps": 25,
        "latents": 25,
    }
    assert Settings().limits == table()


def _schemas(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, integer schema) of every query parameter and JSON body field of the schema."""
    out = []
    for ops in doc["paths"].values():
        for op in ops.values():
            out += [(p["name"], p["schema"]) for p in op.get("parameters", [])]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            out += list(body.get("schema", {}).get("properties", {}).items())
    return [(n, sch) for n, sch in out if sch.get("type") == "integer"]


def test_openapi_states_the_table() -> None:
    doc = openapi(SMALL)
    seen = set()
    for name, schema in _schemas(doc):
        limit: Limit = SMALL.limits[name]
        assert (schema["minimum"], schema["maximum"]) == (limit.lo, limit.hi), name
        seen.add(name)
    assert seen == set(SMALL.limits) - {"latents"}
    latents = doc["paths"]["/api/generar-diseno"]["post"]["requestBody"]["content"]
    items = latents["application/json"]["schema"]["properties"]["latents"]
    assert (items["minItems"], items["maxItems"]) == (1, 25)


def test_api_limits_and_docs_page_state_the_table(tmp_path: Path) -> None:
    # no version and no training: the app's start must not train in the default folders
    s = replace(SMALL, model_base_path=tmp_path / "models", jobs_dir=tmp_path / "jobs")
    with TestClient(create_app(replace(s, train_on_miss=False))) as client:
        served = client.get("/api/limits").json()
        page = client.get("/docs").text
    assert served == {
        n: {"min": lim.lo, "max": lim.hi, "default": lim.default, "help": lim.help}
        for n, lim in SMALL.limits.items()
    }
    assert "(1..5, default 3)" in page and "(2..25, default 8)" in page


def test_python_api_refuses_one_past_each_default_limit() -> None:
    from fashion_gan import generar_muestra_ropa

    for name in ("rows", "cols", "scale", "spacing", "seed", "version"):
        limit = table()[name]
        for bad in (limit.lo - 1, limit.hi + 1):
            with pytest.raises(ValueError) as err:
                generar_muestra_ropa(**{name: bad})  # type: ignore[arg-type]
            assert str(err.value) == limit.sentence()
    with pytest.raises(ValueError, match="rows must be an integer"):
        generar_muestra_ropa(rows=np.float32(2))  # type: ignore[arg-type]


def test_readme_limits_table_is_the_table() -> None:
    assert markdown_table() in (REPO / "README.md").read_text()
