"""Request parameters: parse and check, or raise BadRequest with a sentence that says what is
allowed. Every range comes from the limits table (fashion_core/limits.py, with this gateway's
maxima: ``Settings.limits``); a category is read by gateway/categories.py. Nothing here touches
the model.

Categories (the class-conditional model) and the noise: a seed's latents never depend on the
category. A sheet of one category has the latents of the first model's sheet of that seed, at
the same positions; ``category=all`` has one row per category (index order) and in each row
the seed's first ``cols`` latents, so a column is one idea drawn as each of the ten
categories. A walk with ``to_category`` is the same walk drawn twice, one row per category."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fashion_core import latents
from fashion_core.contract import LABEL
from fashion_core.latents import latents_for, slerp
from fashion_core.limits import Limit
from fashion_gan.tfserving import Pin
from gateway import categories
from gateway.errors import BadRequest
from gateway.settings import Settings

__all__ = [
    "Layout",
    "Walk",
    "all_layout",
    "asks_category",
    "body",
    "body_categories",
    "json_body",
    "latents_for",
    "pin",
    "query",
    "sheet_category",
    "sheet_latents",
    "walk_body",
    "walk_query",
]
MAX_LATENT = 1e6
QUERY_KEYS = {"seed", "rows", "cols", "scale", "spacing", "version", "label", "category"}
BODY_KEYS = {"latents", "rows", "cols", "scale", "spacing", "version", "label"}
BODY_KEYS |= {"category", "categories"}
WALK_QUERY_KEYS = {"from", "to", "steps", "format", "scale", "spacing", "version", "label"}
WALK_QUERY_KEYS |= {"category", "to_category"}
WALK_BODY_KEYS = WALK_QUERY_KEYS
SHEET_EXAMPLE = '{"latents": [[100 numbers], ...]}'
WALK_EXAMPLE = '{"from": [100 numbers], "to": [100 numbers], "steps": 8}'
FORMATS = ("png", "gif")


@dataclass(frozen=True)
class Layout:
    rows: int = 3
    cols: int = 3
    scale: int = 1
    spacing: int = 0

    @property
    def count(self) -> int:
        return self.rows * self.cols


def checked(limit: Limit, raw: Any) -> int:
    """``raw`` (an int, or a query string of digits) within ``limit``, else BadRequest."""
    if isinstance(raw, bool) or not (
        isinstance(raw, int) or (isinstance(raw, str) and re.fullmatch(r"\d{1,19}", raw.strip()))
    ):
        raise BadRequest(limit.sentence())
    value = int(raw)
    if not limit.allows(value):
        raise BadRequest(limit.sentence())
    return value


def _get(src: Mapping[str, Any], s: Settings, key: str, default: int | None = None) -> int:
    """The parameter ``key`` checked against its limit, or the default when it is absent."""
    limit = s.limits[key]
    if src.get(key) is None:
        value = limit.default if default is None else default
        assert value is not None, f"{key} has no default"
        return value
    return checked(limit, src[key])


def _layout(src: Mapping[str, Any], s: Settings, rows: int = 3, cols: int = 3) -> Layout:
    return Layout(
        rows=_get(src, s, "rows", rows),
        cols=_get(src, s, "cols", cols),
        scale=_get(src, s, "scale"),
        spacing=_get(src, s, "spacing"),
    )


def pin(src: Mapping[str, Any], s: Settings) -> Pin | None:
    """The request's explicit pin, or None when it names neither version nor label."""
    version, label = src.get("version"), src.get("label")
    if version is not None and label is not None:
        raise BadRequest("give either version or label, not both.")
    if version is not None:
        return Pin(version=checked(s.limits["version"], version))
    if label is not None:
        if not isinstance(label, str) or not LABEL.fullmatch(label):
            raise BadRequest(
                "label must be 1-64 letters, digits, '_', '-' or '.', starting with a letter "
                "or digit, e.g. stable."
            )
        return Pin(label=label)
    return None


def query(params: Mapping[str, str], s: Settings) -> tuple[Layout, int | None, Pin | None]:
    """GET /api/generar-diseno: (layout, seed or None, pin or None)."""
    _only(params, QUERY_KEYS, "parameter")
    seed = None if params.get("seed") is None else checked(s.limits["seed"], params["seed"])
    return _layout(params, s), seed, pin(params, s)


def sheet_category(params: Mapping[str, str]) -> int | str | None:
    """GET /api/generar-diseno's ``category``: an index, ALL, or None (the first model)."""
    raw = params.get("category")
    return None if raw is None else categories.parse(raw)


def all_layout(params: Mapping[str, str], s: Settings, layout: Layout) -> Layout:
    """``category=all``: one row per category, the columns as asked (3 by default)."""
    n, rows = categories.COUNT, s.limits["rows"]
    if params.get("rows") is not None and layout.rows != n:
        raise BadRequest("with category=all the sheet has one row per category: leave rows out.")
    if not rows.allows(n):
        raise BadRequest(f"category=all needs {n} rows and this gateway allows at most {rows.hi}.")
    return replace(layout, rows=n)


def sheet_latents(
    seed: int, layout: Layout, latent_dim: int, category: int | str | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(z, category per row or None) of a seeded sheet (fashion_core/latents.py)."""
    return latents.sheet_latents(seed, layout.rows, layout.cols, latent_dim, category)


def json_body(raw: bytes, s: Settings, walk: bool = False) -> dict[str, Any]:
    """A POST body as a JSON object (413 past the limit, 400 if it is not one)."""
    return _json_object(raw, s, WALK_EXAMPLE if walk else SHEET_EXAMPLE)


def asks_category(doc: Mapping[str, Any]) -> bool:
    """Whether a POST body is for the class-conditional model."""
    return any(doc.get(key) is not None for key in ("category", "categories"))


def body_categories(doc: Mapping[str, Any], n: int) -> np.ndarray | None:
    """A POST body's category per latent: ``category`` or ``categories``, each one value for
    every latent or a list of one per latent; None when it names none."""
    given = [key for key in ("category", "categories") if doc.get(key) is not None]
    if not given:
        return None
    if len(given) == 2:
        raise BadRequest("give either category or categories, not both.")
    raw = doc[given[0]]
    if not isinstance(raw, list):
        return np.full(n, categories.index(raw, given[0]), dtype=np.int64)
    if len(raw) != n:
        raise BadRequest(f"{given[0]} must be one category, or a list of {n}: one per latent.")
    return np.asarray([categories.index(c, f"each of {given[0]}") for c in raw], dtype=np.int64)


def body(
    raw: bytes | dict[str, Any], s: Settings, latent_dim: int
) -> tuple[Layout, np.ndarray, Pin | None]:
    """POST /api/generar-diseno: JSON {"latents": [[latent_dim floats], ...], rows?, cols?, ...}
    (``raw``: the body, or the object ``json_body`` made of it)."""
    doc = raw if isinstance(raw, dict) else _json_object(raw, s, SHEET_EXAMPLE)
    if "latents" not in doc:
        raise BadRequest('the body must be a JSON object with a "latents" list.')
    _only(doc, BODY_KEYS, "field")
    latents = doc["latents"]
    count = s.limits["latents"]
    if not isinstance(latents, list) or not count.allows(len(latents)):
        raise BadRequest(f"latents must be a list of {count.lo} to {count.hi} vectors.")
    if not all(_is_latent(v, latent_dim) for v in latents):
        raise BadRequest(f"each latent must be a list of {latent_dim} numbers.")
    _check_finite(latents)
    z = np.asarray(latents, dtype=np.float64)
    n = len(latents)
    rows, cols = _grid(n)
    layout = _layout(doc, s, rows, cols)
    if layout.count != n:
        raise BadRequest(f"rows x cols must equal the number of latents ({n}).")
    return layout, z.astype(np.float32), pin(doc, s)


def _is_latent(v: Any, latent_dim: int) -> bool:
    return (
        isinstance(v, list)
        and len(v) == latent_dim
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
    )


def _check_finite(latents: list[list[float]]) -> None:
    # checked in Python first: a 400-digit integer does not fit a float (OverflowError), and
    # abs() of an int never converts; NaN fails every comparison, infinity the bound
    if not all(abs(x) <= MAX_LATENT for v in latents for x in v):
        raise BadRequest("latent values must be finite numbers (no NaN or infinity), |x| <= 1e6.")


def _json_object(raw: bytes, s: Settings, example: str) -> dict[str, Any]:
    if len(raw) > s.max_body_bytes:
        raise BadRequest(f"the body must be at most {s.max_body_bytes} bytes.", status=413)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: [[[[... nesting
        raise BadRequest(f"the body must be JSON like {example}.") from None
    if not isinstance(doc, dict):
        raise BadRequest(f"the body must be a JSON object like {example}.")
    return doc


def _only(src: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = set(src) - allowed
    if unknown:
        raise BadRequest(
            f"unknown {what} {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(allowed))}."
        )


@dataclass(frozen=True)
class Walk:
    """An interpolation request: the strip's layout (1 x steps; 2 x steps with a second
    category), its format, its two ends, and for the class-conditional model its category
    (and ``to_category``: the same walk drawn again, as that category, in a second row)."""

    layout: Layout
    fmt: str
    start: np.ndarray | int  # a seed (GET) or a latent vector (POST)
    end: np.ndarray | int
    category: int | None = None
    to_category: int | None = None

    def latents(self, latent_dim: int) -> np.ndarray:
        """(rows x steps, latent_dim): a seed's end is the first latent of that seed's sheet;
        every row is the same walk."""
        a, b = (
            e if isinstance(e, np.ndarray) else latents_for(e, 1, latent_dim)[0]
            for e in (self.start, self.end)
        )
        return np.tile(slerp(a, b, self.layout.cols), (self.layout.rows, 1))

    def categories(self) -> np.ndarray | None:
        """The category of every design (row-major), or None for the first model."""
        if self.category is None:
            return None
        ends = [self.category] if self.to_category is None else [self.category, self.to_category]
        return np.repeat(np.asarray(ends, dtype=np.int64), self.layout.cols)

    def category_label(self) -> str | None:
        """What X-Category says: the category, or both (``dress,coat``)."""
        chosen = [c for c in (self.category, self.to_category) if c is not None]
        return ",".join(categories.label(c) for c in chosen) or None


def _walk_layout(src: Mapping[str, Any], s: Settings) -> tuple[Layout, str]:
    cols = _get(src, s, "steps")
    fmt = src.get("format") or "png"
    if fmt not in FORMATS:
        raise BadRequest("format must be png (a strip) or gif (an animation).")
    return _layout(src, s, rows=1, cols=cols), fmt  # rows/cols were refused as unknown keys


def _walk_categories(src: Mapping[str, Any], s: Settings, walk: Walk) -> Walk:
    """``category`` and ``to_category`` of a walk (either a query or a JSON body)."""
    first, second = src.get("category"), src.get("to_category")
    if first is None:
        if second is not None:
            raise BadRequest(
                "a walk with to_category needs category too: the one it is drawn as first."
            )
        return walk
    chosen = categories.index(first, "category")
    if second is None:
        return replace(walk, category=chosen)
    if not s.limits["rows"].allows(2):
        raise BadRequest("to_category needs 2 rows and this gateway allows 1.")
    then = categories.index(second, "the walk's to_category")
    return replace(walk, layout=replace(walk.layout, rows=2), category=chosen, to_category=then)


def walk_query(params: Mapping[str, str], s: Settings) -> tuple[Walk, Pin | None]:
    """GET /api/interpolate: from and to seeds, steps, format png|gif, scale, spacing,
    category and to_category."""
    _only(params, WALK_QUERY_KEYS, "parameter")
    ends = []
    for key in ("from", "to"):
        if params.get(key) is None:
            seeds = s.limits[key]
            raise BadRequest(f"from and to are both required: seeds from {seeds.lo} to {seeds.hi}.")
        ends.append(checked(s.limits[key], params[key]))
    layout, fmt = _walk_layout(params, s)
    walk = _walk_categories(params, s, Walk(layout, fmt, ends[0], ends[1]))
    return walk, pin(params, s)


def walk_body(raw: bytes | dict[str, Any], s: Settings, latent_dim: int) -> tuple[Walk, Pin | None]:
    """POST /api/interpolate: JSON {"from": [latent_dim numbers], "to": [...], "steps"?,
    "category"?, "to_category"?, ...} (``raw``: the body, or the object ``json_body`` made)."""
    doc = raw if isinstance(raw, dict) else _json_object(raw, s, WALK_EXAMPLE)
    _only(doc, WALK_BODY_KEYS, "field")
    ends = [doc.get("from"), doc.get("to")]
    if not all(_is_latent(v, latent_dim) for v in ends):
        raise BadRequest(f"from and to must each be a list of {latent_dim} numbers.")
    _check_finite(ends)  # type: ignore[arg-type]  # checked lists of numbers just above
    layout, fmt = _walk_layout(doc, s)
    a, b = (np.asarray(v, dtype=np.float32) for v in ends)
    return _walk_categories(doc, s, Walk(layout, fmt, a, b)), pin(doc, s)


def _grid(n: int) -> tuple[int, int]:
    """The most square rows x cols == n (rows <= cols): 9 -> 3x3, 6 -> 2x3, 7 -> 1x7."""
    rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
    return rows, n // rows
