"""Request parameters: parse and check, or raise BadRequest with a sentence that says what is
allowed. Every range comes from the limits table (fashion_core/limits.py, with this gateway's
maxima: ``Settings.limits``). Nothing here touches the model."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fashion_core.contract import LABEL
from fashion_core.latents import latents_for, slerp
from fashion_core.limits import Limit
from fashion_gan.tfserving import Pin
from gateway.errors import BadRequest
from gateway.settings import Settings

__all__ = ["Layout", "Walk", "body", "latents_for", "pin", "query", "walk_body", "walk_query"]
MAX_LATENT = 1e6
QUERY_KEYS = {"seed", "rows", "cols", "scale", "spacing", "version", "label"}
BODY_KEYS = {"latents", "rows", "cols", "scale", "spacing", "version", "label"}
WALK_QUERY_KEYS = {"from", "to", "steps", "format", "scale", "spacing", "version", "label"}
WALK_BODY_KEYS = WALK_QUERY_KEYS
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


def body(raw: bytes, s: Settings, latent_dim: int) -> tuple[Layout, np.ndarray, Pin | None]:
    """POST /api/generar-diseno: JSON {"latents": [[latent_dim floats], ...], rows?, cols?, ...}."""
    doc = _json_object(raw, s, '{"latents": [[100 numbers], ...]}')
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
    """An interpolation request: the strip's layout (1 x steps), its format, its two ends."""

    layout: Layout
    fmt: str
    start: np.ndarray | int  # a seed (GET) or a latent vector (POST)
    end: np.ndarray | int

    def latents(self, latent_dim: int) -> np.ndarray:
        """(steps, latent_dim): a seed's end is the first latent of that seed's sheet."""
        a, b = (
            e if isinstance(e, np.ndarray) else latents_for(e, 1, latent_dim)[0]
            for e in (self.start, self.end)
        )
        return slerp(a, b, self.layout.cols)


def _walk_layout(src: Mapping[str, Any], s: Settings) -> tuple[Layout, str]:
    cols = _get(src, s, "steps")
    fmt = src.get("format") or "png"
    if fmt not in FORMATS:
        raise BadRequest("format must be png (a strip) or gif (an animation).")
    return _layout(src, s, rows=1, cols=cols), fmt  # rows/cols were refused as unknown keys


def walk_query(params: Mapping[str, str], s: Settings) -> tuple[Walk, Pin | None]:
    """GET /api/interpolate: from and to seeds, steps, format png|gif, scale, spacing."""
    _only(params, WALK_QUERY_KEYS, "parameter")
    ends = []
    for key in ("from", "to"):
        if params.get(key) is None:
            seeds = s.limits[key]
            raise BadRequest(f"from and to are both required: seeds from {seeds.lo} to {seeds.hi}.")
        ends.append(checked(s.limits[key], params[key]))
    layout, fmt = _walk_layout(params, s)
    return Walk(layout, fmt, ends[0], ends[1]), pin(params, s)


def walk_body(raw: bytes, s: Settings, latent_dim: int) -> tuple[Walk, Pin | None]:
    """POST /api/interpolate: JSON {"from": [latent_dim numbers], "to": [...], "steps"?, ...}."""
    doc = _json_object(raw, s, '{"from": [100 numbers], "to": [100 numbers], "steps": 8}')
    _only(doc, WALK_BODY_KEYS, "field")
    ends = [doc.get("from"), doc.get("to")]
    if not all(_is_latent(v, latent_dim) for v in ends):
        raise BadRequest(f"from and to must each be a list of {latent_dim} numbers.")
    _check_finite(ends)  # type: ignore[arg-type]  # checked lists of numbers just above
    layout, fmt = _walk_layout(doc, s)
    a, b = (np.asarray(v, dtype=np.float32) for v in ends)
    return Walk(layout, fmt, a, b), pin(doc, s)


def _grid(n: int) -> tuple[int, int]:
    """The most square rows x cols == n (rows <= cols): 9 -> 3x3, 6 -> 2x3, 7 -> 1x7."""
    rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
    return rows, n // rows
