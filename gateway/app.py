"""The Starlette app: ``create_app(settings)`` wires the endpoints (gateway/handlers.py), the
error answers (gateway/misses.py), the metrics of every answer, and the lifespan.

GET  /api/generar-diseno   a new 3x3 PNG sheet on every call (?seed, rows, cols, scale,
                           spacing, version, label; category: the class-conditional model)
POST /api/generar-diseno   a sheet from the caller's own latent vectors (JSON; categories)
GET  /api/interpolate      a strip (or GIF) of the walk between two seeds' designs
                           (category, to_category)
POST /api/interpolate      the same between two latent vectors (JSON)
GET  /api/versions         versions, labels and their model cards' quality figures (?model)
GET  /api/training         the training job: state, profile, epoch, progress, log lines
                           (?model)
POST /api/training         start a job (admin token)
GET  /healthz /readyz /metrics /openapi.json /docs
GET  /                     the design gallery (gateway/static/)
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import handlers, misses
from gateway.backends import Backend, make_backend
from gateway.docs import docs_page, openapi
from gateway.errors import ClientGone
from gateway.metrics import Metrics
from gateway.pages import FILES, Pages
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.trainer import Trainer, cond_trainer, make_trainer

log = logging.getLogger("gateway")
Handler = Callable[[Gateway, Request], Awaitable[Response]]
CLIENT_CLOSED = 499  # nginx's code for "the client closed the request": counted, never sent

# (method, path) -> the route label of the metrics
ROUTES: dict[tuple[str, str], tuple[str, Handler]] = {
    ("GET", "/api/generar-diseno"): ("design", handlers.design_get),
    ("POST", "/api/generar-diseno"): ("design_post", handlers.design_post),
    ("GET", "/api/interpolate"): ("interpolate", handlers.interpolate_get),
    ("POST", "/api/interpolate"): ("interpolate_post", handlers.interpolate_post),
    ("GET", "/api/limits"): ("limits", handlers.limits),
    ("GET", "/api/versions"): ("versions", handlers.versions),
    ("GET", "/api/training"): ("training", handlers.training_get),
    ("POST", "/api/training"): ("training_post", handlers.training_post),
    ("GET", "/healthz"): ("healthz", handlers.healthz),
    ("GET", "/readyz"): ("readyz", handlers.readyz),
    ("GET", "/metrics"): ("metrics", handlers.metrics),
}


class CountEveryAnswer:
    """Counts every answer by route and status, 500s from unexpected errors included, and
    times it (pure ASGI: it sees the status the client gets)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        name = ROUTES.get((scope["method"], path), ("gallery" if path in FILES else "other",))[0]
        started, status = time.perf_counter(), CLIENT_CLOSED

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except Exception:
            status = 500
            raise
        finally:
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)
            self.metrics.requests.labels(name, str(status)).inc()


def create_app(
    settings: Settings,
    backend: Backend | None = None,
    trainer: Trainer | None = None,
    cond_backend: Backend | None = None,
    cond_trainer_: Trainer | None = None,
) -> Starlette:
    """The gateway app for ``settings`` (tests may hand in a backend or trainer, of the first
    model or of the class-conditional one)."""
    if settings.conditional:
        cond_backend = cond_backend or make_backend(settings, conditional=True)
        cond_trainer_ = cond_trainer_ or cond_trainer(settings)
    else:
        cond_backend = cond_trainer_ = None
    gw = Gateway(
        settings,
        backend or make_backend(settings),
        trainer or make_trainer(settings),
        cond_backend,
        cond_trainer_,
    )

    def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            try:
                response = await handler(gw, request)
            except ClientGone:
                return Response(status_code=CLIENT_CLOSED)  # nobody reads it; counted
            except Exception as exc:  # expected ones are answered in misses.answer
                # the handler notes which model the request asked: a miss trains that one
                response = await misses.answer(gw, exc, getattr(request.state, "lane", None))
            if request.method == "POST" and not getattr(request.state, "body_read", False):
                # refused before its body was read whole (gateway/bodies.py): close rather
                # than receive the rest of it only to throw it away
                response.headers["connection"] = "close"
            return response

        answer.__doc__ = handler.__doc__
        return answer

    routes = [
        Route(path, endpoint(handler), methods=[method])
        for (method, path), (_, handler) in ROUTES.items()
    ]
    schema = openapi(settings)

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(schema)

    async def docs(request: Request) -> Response:
        return HTMLResponse(docs_page(schema))

    routes += [Route("/openapi.json", openapi_json), Route("/docs", docs)]
    pages = Pages()
    routes += [Route(path, pages.answer) for path in FILES]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settle_heap()  # before the first model loads: models must stay collectable
        await gw.start()
        kick = asyncio.create_task(misses.bootstrap(gw))
        yield
        kick.cancel()
        await gw.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": _http_sentence(exc.status_code)}, exc.status_code)

    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return JSONResponse({"error": "The gateway failed; this is a bug."}, 500)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(CountEveryAnswer, metrics=gw.metrics)],
        exception_handlers={HTTPException: http_error, Exception: crash},
    )
    app.state.gateway = gw
    return app


def settle_heap() -> None:
    """Move everything allocated so far (TensorFlow and the rest of the imports: millions of
    objects) out of the garbage collector's sight. Otherwise every full collection walks all of
    it while the event loop waits: 100-250 ms pauses under load, measured, which /healthz and
    every answer in flight would feel. Called before any model is loaded: a frozen object is
    never collected, and a model that is replaced or evicted must be (gateway/backends/
    loader.py)."""
    gc.collect()
    gc.freeze()


def _http_sentence(code: int) -> str:
    texts: dict[int, Any] = {
        404: "No such page; see /docs for the endpoints.",
        405: "That method is not allowed here; see /docs for the endpoints.",
    }
    return str(texts.get(code, f"HTTP {code}."))
