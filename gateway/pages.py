"""The gallery: one HTML page, its stylesheet and script (gateway/static/), served from memory.

No build step and nothing from a CDN; the Content-Security-Policy allows only this origin's
script and style, and images from this origin or the page's own blob: URLs (where the sheets
it fetched are shown)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

STATIC = Path(__file__).with_name("static")
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/gallery.js": ("gallery.js", "text/javascript; charset=utf-8"),
    "/static/gallery.css": ("gallery.css", "text/css; charset=utf-8"),
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob:; connect-src 'self' blob:; script-src 'self'; "
        "style-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",  # small files; a new release shows at once
}


class Pages:
    def __init__(self) -> None:
        self.files = {
            route: ((STATIC / name).read_bytes(), media) for route, (name, media) in FILES.items()
        }

    async def answer(self, request: Request) -> Response:
        body, media = self.files[request.url.path]
        return Response(body, media_type=media, headers=HEADERS)
