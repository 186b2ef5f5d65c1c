"""The endpoints. Each parses its input (gateway/params.py), asks the Gateway, and answers;
errors go to gateway/misses.py, the one place that turns them into HTTP answers."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
    started = time.monotonic()
    images = gw.submit(z, pin, route, gw.client(request))  # type: ignore[arg-type]  # 503 at once

    async def draw() -> tuple[Generated, bytes]:
        out = await images
        if fmt == "gif":
            return out, await gw.renderer.gif(out, layout.scale)
        return out, await gw.renderer.png(out, layout)

    out, png = await unless_gone(request, draw())
    gw.metrics.sheets.labels(str(out.version), route).inc()
    gw.served(route, out.version, started)
    cache = sheets.cache_policy(deterministic, version_pinned=pin.version is not None)
    vary = route != "pinned" and routing.splits(gw.settings)
    return sheets.answer(
        request, png, out.version, route, seed=seed, cache=cache, vary=vary, media_type=MEDIA[fmt]
    )


async def design_get(gw: Gateway, request: Request) -> Response:
    """A PNG design sheet drawn from fresh noise, or from ``seed`` (reproducible)."""
    layout, seed, explicit = params.query(request.query_params, gw.settings)
    await gw.admit(gw.client(request), layout.count)  # refuse before any work (503 at once)
    pin, route = gw.route(request, explicit)
    dim = await gw.latent_dim(pin, route)
    seeded = seed is not None
    if seed is None:
        seed = secrets.randbits(63)
    z = params.latents_for(seed, layout.count, dim)
    return await _sheet(gw, request, z, layout, pin, route, seed, deterministic=seeded)


@asynccontextmanager
async def _posted(gw: Gateway, request: Request) -> AsyncIterator[tuple[bytes, Pin, str, int]]:
    """A POST's body, pin (from the query; the body may name another), route and latent size.
    Admission comes first: the body of a request the gateway would refuse is never read."""
    client = gw.client(request)
    await gw.admit(client, 1)
    explicit = params.pin(dict(request.query_params), gw.settings) if request.query_params else None
    async with gw.body(request, client) as raw:
        pin, route = gw.route(request, explicit)
        yield raw, pin, route, await gw.latent_dim(pin, route)


def _repin(pin: Pin, route: str, body_pin: Pin | None) -> tuple[Pin, str]:
    return (body_pin, "pinned") if body_pin is not None and body_pin != pin else (pin, route)


async def design_post(gw: Gateway, request: Request) -> Response:
    """A PNG sheet from the caller's latent vectors."""
    async with _posted(gw, request) as (raw, pin, route, dim):
        layout, z, body_pin = params.body(raw, gw.settings, dim)
    pin, route = _repin(pin, route, body_pin)
    return await _sheet(gw, request, z, layout, pin, route, None, deterministic=True)


async def interpolate_get(gw: Gateway, request: Request) -> Response:
    """A strip (or, with format=gif, an animation) of the walk between two seeds' designs."""
    walk, explicit = params.walk_query(request.query_params, gw.settings)
    await gw.admit(gw.client(request), walk.layout.count)
    pin, route = gw.route(request, explicit)
    z = walk.latents(await gw.latent_dim(pin, route))
    return await _sheet(gw, request, z, walk.layout, pin, route, None, True, walk.fmt)


async def interpolate_post(gw: Gateway, request: Request) -> Response:
    """A strip (or animation) of the walk between two latent vectors given as JSON."""
    async with _posted(gw, request) as (raw, pin, route, dim):
        walk, body_pin = params.walk_body(raw, gw.settings, dim)
    pin, route = _repin(pin, route, body_pin)
    z = walk.latents(dim)
    return await _sheet(gw, request, z, walk.layout, pin, route, None, True, walk.fmt)


async def training_get(gw: Gateway, request: Request) -> Response:
    """The training job's state, profile, epoch, progress, start time, log lines, error."""
    return JSONResponse({"training": await gw.training.get()})


async def training_post(gw: Gateway, request: Request) -> Response:
    """Start a training job (Authorization: Bearer GATEWAY_ADMIN_TOKEN)."""
    try:
        check_bearer(
            request.headers.get("authorization"),
            gw.settings.admin_token,
            "POST /api/training",
            "GATEWAY_ADMIN_TOKEN",
        )
        async with gw.body(request, gw.client(request), limit=4096) as raw:
            profile = profile_from_body(raw, gw.settings.train_profile)
    except AuthError as exc:
        raise BadRequest(str(exc), exc.status) from None
    except BodyError as exc:
        raise BadRequest(str(exc)) from None
    job, started = await gw.trainer.start(profile, automatic=False)
    gw.training.invalidate()
    if started:
        gw.metrics.training_jobs.inc()
    return JSONResponse({"training": job, "started": started}, status_code=202)


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
    (one status call shared by every concurrent caller, on the status connections)."""
    try:
        status = await gw.status.get()
    except UpstreamError as exc:  # a listing reports; it never starts training
        return JSONResponse({"error": str(exc), "versions": [], "labels": {}}, exc.status)
    return JSONResponse(await gw.catalog.listing(status))


async def healthz(gw: Gateway, request: Request) -> Response:
    """The process is up (answered on the event loop, which model work never blocks)."""
    return JSONResponse({"status": "ok"})


async def readyz(gw: Gateway, request: Request) -> Response:
    """The gateway answers requests (when the model server cannot, with 503 and Retry-After).
    What the model server last said is data in the body, read without asking it again."""
    upstream = gw.upstream_state()
    return JSONResponse(
        {
            "ready": True,
            "backend": gw.backend.name,
            "upstream": upstream,
            "model_folder_readable": gw.folder.readable,
        }
    )


async def metrics(gw: Gateway, request: Request) -> Response:
    return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)
