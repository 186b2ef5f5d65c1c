"""The endpoints. Each parses its input (gateway/params.py), asks the Gateway, and answers;
errors go to gateway/misses.py, the one place that turns them into HTTP answers."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fashion_core.auth import AuthError, BodyError, check_bearer, profile_from_body
from gateway import categories, params, routing, sheets
from gateway.backends.base import Generated, Pin
from gateway.disconnect import unless_gone
from gateway.errors import BadRequest, UpstreamError
from gateway.service import Gateway, Lane

MEDIA = {"png": "image/png", "gif": "image/gif"}


def _lane(gw: Gateway, request: Request, conditional: bool) -> Lane:
    """The model a request asks (404 when it is the class-conditional one and this gateway
    does not serve it), noted on the request: a miss trains that one (gateway/app.py)."""
    lane = gw.lane(conditional)
    request.state.lane = lane
    return lane


async def _sheet(
    gw: Gateway,
    request: Request,
    z: object,
    layout: params.Layout,
    pin: Pin,
    route: str,
    seed: int | None,
    deterministic: bool,
    fmt: str = "png",
    category: np.ndarray | None = None,
    shown: str | None = None,
) -> Response:
    """``category``: one per row of ``z`` for the class-conditional model (``shown``: what
    X-Category says), None for the first model."""
    started = time.monotonic()
    lane = gw.lane(category is not None)
    client = gw.client(request)
    images = gw.submit(z, pin, route, client, category)  # type: ignore[arg-type]  # 503 at once

    async def draw() -> tuple[Generated, bytes]:
        out = await images
        if fmt == "gif":
            return out, await gw.renderer.gif(out, layout.scale)
        return out, await gw.renderer.png(out, layout)

    out, png = await unless_gone(request, draw())
    gw.metrics.sheets.labels(str(out.version), route, lane.model).inc()
    gw.served(route, out.version, started, lane)
    cache = sheets.cache_policy(deterministic, version_pinned=pin.version is not None)
    vary = route != "pinned" and routing.splits(gw.settings)
    return sheets.answer(
        request,
        png,
        out.version,
        route,
        seed=seed,
        cache=cache,
        vary=vary,
        media_type=MEDIA[fmt],
        model=lane.model,
        category=shown,
    )


async def design_get(gw: Gateway, request: Request) -> Response:
    """A PNG design sheet drawn from fresh noise, or from ``seed`` (reproducible); with
    ``category``, from the class-conditional model (``all``: one row per category)."""
    query = request.query_params
    layout, seed, explicit = params.query(query, gw.settings)
    category = params.sheet_category(query)
    if category == categories.ALL:
        layout = params.all_layout(query, gw.settings, layout)
    lane = _lane(gw, request, category is not None)
    await gw.admit(gw.client(request), layout.count)  # refuse before any work (503 at once)
    pin, route = gw.route(request, explicit)
    dim = await gw.latent_dim(pin, route, lane)
    seeded = seed is not None
    if seed is None:
        seed = secrets.randbits(63)
    z, per_row = params.sheet_latents(seed, layout, dim, category)
    shown = None if category is None else str(category)
    if isinstance(category, int):
        shown = categories.label(category)
    return await _sheet(
        gw, request, z, layout, pin, route, seed, seeded, category=per_row, shown=shown
    )


@asynccontextmanager
async def _posted(
    gw: Gateway, request: Request, walk: bool = False
) -> AsyncIterator[tuple[dict[str, Any], Lane, Pin, str, int]]:
    """A POST's JSON body, the model it asks (a category: the class-conditional one), pin
    (from the query; the body may name another), route and latent size. Admission comes
    first: the body of a request the gateway would refuse is never read."""
    client = gw.client(request)
    await gw.admit(client, 1)
    explicit = params.pin(dict(request.query_params), gw.settings) if request.query_params else None
    async with gw.body(request, client) as raw:
        doc = params.json_body(raw, gw.settings, walk)
        lane = _lane(gw, request, params.asks_category(doc))
        pin, route = gw.route(request, explicit)
        yield doc, lane, pin, route, await gw.latent_dim(pin, route, lane)


def _repin(pin: Pin, route: str, body_pin: Pin | None) -> tuple[Pin, str]:
    return (body_pin, "pinned") if body_pin is not None and body_pin != pin else (pin, route)


async def design_post(gw: Gateway, request: Request) -> Response:
    """A PNG sheet from the caller's latent vectors (with ``category`` or ``categories``,
    from the class-conditional model: one category for all, or one per latent)."""
    async with _posted(gw, request) as (doc, _, pin, route, dim):
        layout, z, body_pin = params.body(doc, gw.settings, dim)
        per_row = params.body_categories(doc, len(z))
    pin, route = _repin(pin, route, body_pin)
    shown = None
    if per_row is not None and len(set(per_row.tolist())) == 1:
        shown = categories.label(int(per_row[0]))
    return await _sheet(
        gw, request, z, layout, pin, route, None, True, category=per_row, shown=shown
    )


async def interpolate_get(gw: Gateway, request: Request) -> Response:
    """A strip (or, with format=gif, an animation) of the walk between two seeds' designs;
    with ``category`` drawn as that category, with ``to_category`` also as a second one."""
    walk, explicit = params.walk_query(request.query_params, gw.settings)
    lane = _lane(gw, request, walk.category is not None)
    await gw.admit(gw.client(request), walk.layout.count)
    pin, route = gw.route(request, explicit)
    z = walk.latents(await gw.latent_dim(pin, route, lane))
    return await _walk(gw, request, walk, z, pin, route)


async def interpolate_post(gw: Gateway, request: Request) -> Response:
    """A strip (or animation) of the walk between two latent vectors given as JSON."""
    async with _posted(gw, request, walk=True) as (doc, _, pin, route, dim):
        walk, body_pin = params.walk_body(doc, gw.settings, dim)
    pin, route = _repin(pin, route, body_pin)
    return await _walk(gw, request, walk, walk.latents(dim), pin, route)


async def _walk(
    gw: Gateway, request: Request, walk: params.Walk, z: np.ndarray, pin: Pin, route: str
) -> Response:
    return await _sheet(
        gw,
        request,
        z,
        walk.layout,
        pin,
        route,
        None,
        True,
        walk.fmt,
        category=walk.categories(),
        shown=walk.category_label(),
    )


async def training_get(gw: Gateway, request: Request) -> Response:
    """The training job's state, profile, epoch, progress, start time, log lines, error
    (``?model=``: the class-conditional model's job)."""
    lane = _trained_lane(gw, request)
    assert lane.training is not None
    return JSONResponse({"training": await lane.training.get(), "model": lane.model})


def _trained_lane(gw: Gateway, request: Request) -> Lane:
    """The lane ``?model=`` names, when this gateway runs its training jobs."""
    lane = gw.lane_named(_model_param(request))
    if lane.trainer is None or lane.training is None:
        raise BadRequest(
            f"{lane.model} has no job of its own at this gateway: the trainer service "
            "(GATEWAY_TRAINER_URL) runs the first model's, whose quick profile publishes it too.",
            404,
        )
    return lane


def _model_param(request: Request) -> str | None:
    """``?model=`` of the status endpoints; anything else there is refused."""
    unknown = set(request.query_params) - {"model"}
    if unknown:
        raise BadRequest(f"unknown parameter {sorted(unknown)[0]!r}; allowed: model.")
    return request.query_params.get("model")


async def training_post(gw: Gateway, request: Request) -> Response:
    """Start a training job (Authorization: Bearer GATEWAY_ADMIN_TOKEN); ``?model=``: the
    class-conditional model's own job."""
    try:
        check_bearer(
            request.headers.get("authorization"),
            gw.settings.admin_token,
            "POST /api/training",
            "GATEWAY_ADMIN_TOKEN",
        )
    except AuthError as exc:
        raise BadRequest(str(exc), exc.status) from None
    lane = _trained_lane(gw, request)
    assert lane.trainer is not None and lane.training is not None
    try:
        async with gw.body(request, gw.client(request), limit=4096) as raw:
            profile = profile_from_body(raw, gw.settings.train_profile)
    except BodyError as exc:
        raise BadRequest(str(exc)) from None
    job, started = await lane.trainer.start(profile, automatic=False)
    lane.training.invalidate()
    if started:
        gw.metrics.training_jobs.inc()
    return JSONResponse({"training": job, "started": started, "model": lane.model}, 202)


async def limits(gw: Gateway, request: Request) -> Response:
    """The request limits of this gateway (fashion_core/limits.py with its maxima)."""
    return JSONResponse(
        {
            name: {"min": lim.lo, "max": lim.hi, "default": lim.default, "help": lim.help}
            for name, lim in gw.settings.limits.items()
        },
        headers={"Cache-Control": "max-age=60"},
    )


async def versions(gw: Gateway, request: Request) -> Response:
    """The versions the model server reports, their labels and model-card quality figures
    (one status call shared by every concurrent caller, on the status connections);
    ``?model=``: the class-conditional model's (its cards add per-category figures)."""
    lane = gw.lane_named(_model_param(request))
    models = [other.model for other in gw.lanes]
    try:
        status = await lane.status.get()
    except UpstreamError as exc:  # a listing reports; it never starts training
        failed = {"error": str(exc), "versions": [], "labels": {}, "model": lane.model}
        return JSONResponse({**failed, "models": models}, exc.status)
    return JSONResponse({**await lane.catalog.listing(status), "models": models})


async def healthz(gw: Gateway, request: Request) -> Response:
    """The process is up (answered on the event loop, which model work never blocks)."""
    return JSONResponse({"status": "ok"})


async def readyz(gw: Gateway, request: Request) -> Response:
    """The gateway answers requests (when the model server cannot, with 503 and Retry-After).
    What the model server last said is data in the body, read without asking it again."""
    upstream = gw.upstream_state()
    cond = gw.cond
    return JSONResponse(
        {
            "ready": True,
            "backend": gw.backend.name,
            "upstream": upstream,
            "model_folder_readable": gw.folder.readable,
            # the class-conditional model's, the same way (null: not served)
            "conditional": None
            if cond is None
            else {
                "model": cond.model,
                "upstream": gw.upstream_state(cond),
                "model_folder_readable": cond.folder.readable,
            },
        }
    )


async def metrics(gw: Gateway, request: Request) -> Response:
    return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)
