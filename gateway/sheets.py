"""A sheet as an HTTP answer: the PNG encoded off the event loop, and headers that let caches
keep exactly what will not change.

- ``Cache-Control: immutable`` (a year) only when the request named a version and the sheet is
  a function of its input (a seed or posted latents): that pair never draws anything else.
- A seeded sheet for "the newest version" or a label changes when a rollout does: ``no-cache``
  with an ETag, so caches revalidate (and get 304 while nothing changed).
- A sheet from fresh noise is never stored.
- When the canary split picks the version per client, ``Vary: X-Client-Id``.
"""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor

from starlette.requests import Request
from starlette.responses import Response

from fashion_core.render import frames_gif, sheet_png
from gateway.backends.base import Generated
from gateway.params import Layout

IMMUTABLE = "public, max-age=31536000, immutable"


class Renderer:
    """PNG encoding in a small thread pool: a 16x16 sheet at scale 8 takes ~100 ms, which on
    the event loop would hold up every other request, /healthz included."""

    def __init__(self, threads: int) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="render")

    async def png(self, out: Generated, layout: Layout) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.pool, sheet_png, out.images, layout.rows, layout.cols, layout.spacing, layout.scale
        )

    async def gif(self, out: Generated, scale: int) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, frames_gif, out.images, scale)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def cache_policy(deterministic: bool, version_pinned: bool) -> str:
    """ "immutable", "revalidate" or "no-store" (see above)."""
    if not deterministic:
        return "no-store"
    return "immutable" if version_pinned else "revalidate"


def answer(
    request: Request,
    png: bytes,
    version: int,
    route: str,
    *,
    seed: int | None,
    cache: str,
    vary: bool,
    media_type: str = "image/png",
    model: str | None = None,
    category: str | None = None,
) -> Response:
    """The PNG response with its version, seed, route and caching headers (see above), the
    model that drew it and, from the class-conditional model, its category (``X-Category``:
    the English name, ``all``, or the two of a walk between categories)."""
    headers = {"X-Model-Version": str(version), "X-Traffic-Route": route}
    if model is not None:
        headers["X-Model-Name"] = model
    if category is not None:
        headers["X-Category"] = category
    if seed is not None:
        headers["X-Seed"] = str(seed)
    if vary:
        headers["Vary"] = "X-Client-Id"
    if cache == "no-store":
        headers["Cache-Control"] = "no-store"
        return Response(png, media_type=media_type, headers=headers)
    etag = '"' + hashlib.sha256(png).hexdigest()[:32] + '"'
    headers["ETag"] = etag
    headers["Cache-Control"] = IMMUTABLE if cache == "immutable" else "no-cache"
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(png, media_type=media_type, headers=headers)
