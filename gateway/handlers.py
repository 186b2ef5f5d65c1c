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
) -> Response:
    images = gw.submit(z, pin, route)  # type: ignore[arg-type]  # Overloaded: 503 at once

    async def draw() -> tuple[Generated, bytes]:
        out = await images
        return out, await gw.renderer.png(out, layout)

    out, png = await unless_gone(request, draw())
    gw.metrics.sheets.labels(str(out.version), route).inc()
    gw.metrics.served_version.set(out.version)
    cache = sheets.cache_policy(deterministic, version_pinned=pin.version is not None)
    vary = route != "pinned" and routing.splits(gw.settings)
    return sheets.answer(request, png, out.version, route, seed=seed, cache=cache, vary=vary)


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


async def design_post(gw: Gateway, request: Request) -> Response:
    """A PNG sheet from the caller's latent vectors."""
    raw = await read_body(request, gw.settings.max_body_bytes)
    explicit = params.pin(dict(request.query_params)) if request.query_params else None
    pin, route = gw.route(request, explicit)
    dim = await gw.latent_dim(pin, route)
    layout, z, body_pin = params.body(raw, gw.settings, dim)
    if body_pin is not None and body_pin != pin:
        pin, route = body_pin, "pinned"
    return await _sheet(gw, request, z, layout, pin, route, None, deterministic=True)


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
