"""The endpoints. Each parses its input (gateway/params.py), asks the Gateway, and answers;
errors go to gateway/misses.py, the one place that turns them into HTTP answers."""

from __future__ import annotations

import secrets

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from fashion_core.auth import AuthError, BodyError, check_bearer, profile_from_body
from gateway import params, routing, sheets
from gateway.backends.base import Generated, Pin
from gateway.disconnect import unless_gone
from gateway.errors import BadRequest, UpstreamError
from gateway.service import Gateway

MEDIA = {"png": "image/png", "gif": "image/gif"}


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes without reading it all into memory."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the body must be at most {limit} bytes.", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"the body must be at most {limit} bytes.", 413)
        chunks.append(chunk)
    return b"".join(chunks)


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
) -> Response:
    images = gw.submit(z, pin, route)  # type: ignore[arg-type]  # Overloaded: 503 at once

    async def draw() -> tuple[Generated, bytes]:
        out = await images
        if fmt == "gif":
            return out, await gw.renderer.gif(out, layout.scale)
        return out, await gw.renderer.png(out, layout)

    out, png = await unless_gone(request, draw())
    gw.metrics.sheets.labels(str(out.version), route).inc()
    gw.metrics.served_version.set(out.version)
    cache = sheets.cache_policy(deterministic, version_pinned=pin.version is not None)
    vary = route != "pinned" and routing.splits(gw.settings)
    return sheets.answer(
        request, png, out.version, route, seed=seed, cache=cache, vary=vary, media_type=MEDIA[fmt]
    )


async def design_get(gw: Gateway, request: Request) -> Response:
    """A PNG design sheet drawn from fresh noise, or from ``seed`` (reproducible)."""
    layout, seed, explicit = params.query(request.query_params, gw.settings)
    gw.batcher.admit(layout.count)  # refuse before any work (503 at once)
    pin, route = gw.route(request, explicit)
    dim = await gw.latent_dim(pin, route)
    seeded = seed is not None
    if seed is None:
        seed = secrets.randbits(63)
    z = params.latents_for(seed, layout.count, dim)
    return await _sheet(gw, request, z, layout, pin, route, seed, deterministic=seeded)


async def _posted(gw: Gateway, request: Request) -> tuple[bytes, Pin, str, int]:
    """A POST's body, pin (from the query; the body may name another), route and latent size."""
    raw = await read_body(request, gw.settings.max_body_bytes)
    explicit = params.pin(dict(request.query_params)) if request.query_params else None
    pin, route = gw.route(request, explicit)
    return raw, pin, route, await gw.latent_dim(pin, route)


def _repin(pin: Pin, route: str, body_pin: Pin | None) -> tuple[Pin, str]:
    return (body_pin, "pinned") if body_pin is not None and body_pin != pin else (pin, route)


async def design_post(gw: Gateway, request: Request) -> Response:
    """A PNG sheet from the caller's latent vectors."""
    raw, pin, route, dim = await _posted(gw, request)
    layout, z, body_pin = params.body(raw, gw.settings, dim)
    pin, route = _repin(pin, route, body_pin)
    return await _sheet(gw, request, z, layout, pin, route, None, deterministic=True)


async def interpolate_get(gw: Gateway, request: Request) -> Response:
    """A strip (or, with format=gif, an animation) of the walk between two seeds' designs."""
    walk, explicit = params.walk_query(request.query_params, gw.settings)
    gw.batcher.admit(walk.layout.count)
    pin, route = gw.route(request, explicit)
    z = walk.latents(await gw.latent_dim(pin, route))
    return await _sheet(gw, request, z, walk.layout, pin, route, None, True, walk.fmt)


async def interpolate_post(gw: Gateway, request: Request) -> Response:
    """A strip (or animation) of the walk between two latent vectors given as JSON."""
    raw, pin, route, dim = await _posted(gw, request)
    walk, body_pin = params.walk_body(raw, gw.settings, dim)
    pin, route = _repin(pin, route, body_pin)
    z = walk.latents(dim)
    return await _sheet(gw, request, z, walk.layout, pin, route, None, True, walk.fmt)


async def training_get(gw: Gateway, request: Request) -> Response:
    """The training job's state, profile, epoch, progress, start time, log lines, error."""
    return JSONResponse({"training": await gw.trainer.state()})


async def training_post(gw: Gateway, request: Request) -> Response:
    """Start a training job (Authorization: Bearer GATEWAY_ADMIN_TOKEN)."""
    try:
        check_bearer(
            request.headers.get("authorization"),
            gw.settings.admin_token,
            "POST /api/training",
            "GATEWAY_ADMIN_TOKEN",
        )
        profile = profile_from_body(await read_body(request, 4096), gw.settings.train_profile)
    except AuthError as exc:
        raise BadRequest(str(exc), exc.status) from None
    except BodyError as exc:
        raise BadRequest(str(exc)) from None
    job, started = await gw.trainer.start(profile, automatic=False)
    if started:
        gw.metrics.training_jobs.inc()
    return JSONResponse({"training": job, "started": started}, status_code=202)


async def versions(gw: Gateway, request: Request) -> Response:
    """The versions the model server reports, their labels and model-card quality figures."""
    try:
        status = await gw.backend.status()
    except UpstreamError as exc:  # a listing reports; it never starts training
        return JSONResponse({"error": str(exc), "versions": [], "labels": {}}, exc.status)
    return JSONResponse(await gw.catalog.listing(status))


async def healthz(gw: Gateway, request: Request) -> Response:
    """The process is up (answered on the event loop, which model work never blocks)."""
    return JSONResponse({"status": "ok"})


async def readyz(gw: Gateway, request: Request) -> Response:
    """200 only while the model server has a version AVAILABLE (read from its status body)."""
    try:
        status = await gw.backend.status()
    except UpstreamError as exc:  # a probe reports; it never starts training
        return JSONResponse({"ready": False, "backend": gw.backend.name, "error": str(exc)}, 503)
    body = {
        "ready": status.ready,
        "backend": gw.backend.name,
        "available": status.available,
        "versions": [{"version": v.version, "state": v.state} for v in status.versions],
    }
    return JSONResponse(body, status_code=200 if status.ready else 503)


async def metrics(gw: Gateway, request: Request) -> Response:
    return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)
