"""The OpenAPI schema of the gateway and a self-contained docs page rendered from it (no CDN
assets, so it works on offline machines too)."""

from __future__ import annotations

import html
from typing import Any

from fashion_core.contract import CATEGORIES_EN
from fashion_core.limits import Limit
from gateway.categories import allowed
from gateway.settings import Settings

ERROR = {"$ref": "#/components/schemas/Error"}
ONE: list[dict[str, Any]] = [{"type": "integer"}, {"type": "string"}]  # an index or a name


def _schema(limit: Limit) -> dict[str, Any]:
    """An integer's schema from the limits table (fashion_core/limits.py)."""
    schema: dict[str, Any] = {"type": "integer", "minimum": limit.lo, "maximum": limit.hi}
    if limit.default is not None:
        schema["default"] = limit.default
    return schema


def _int_param(limit: Limit, required: bool = False) -> dict[str, Any]:
    return {
        "name": limit.name,
        "in": "query",
        "required": required,
        "description": limit.help,
        "schema": _schema(limit),
    }


def _answers(ok: dict[str, Any]) -> dict[str, Any]:
    err = {"content": {"application/json": {"schema": ERROR}}}
    return {
        **ok,
        "400": {"description": "bad input: the sentence says what is allowed", **err},
        "404": {"description": "pinned version does not exist", **err},
        "502": {"description": "the model server gave a bad answer", **err},
        "503": {
            "description": "at capacity, no version yet (training started), or model server "
            "down (Retry-After says when to come back)",
            **err,
        },
        "504": {"description": "the model server missed its deadline", **err},
    }


def _category(name: str, what: str, with_all: bool = False) -> dict[str, Any]:
    """A category parameter: an index, an English or Spanish name (case and accents
    forgiven), or, for a sheet, ``all``."""
    names = ["all", *CATEGORIES_EN] if with_all else list(CATEGORIES_EN)
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"{what}: {allowed(with_all)}",
        "schema": {"type": "string", "example": names[0 if not with_all else 4]},
    }


def _json_body(s: Settings, required: list[str], fields: dict[str, Any]) -> dict[str, Any]:
    """A JSON request body: ``fields`` plus the layout and pin fields every body takes."""
    common = {
        **{name: _schema(s.limits[name]) for name in ("scale", "spacing", "version")},
        "label": {"type": "string"},
    }
    schema = {"type": "object", "required": required, "properties": {**fields, **common}}
    return {"content": {"application/json": {"schema": schema}}}


def openapi(s: Settings) -> dict[str, Any]:
    png = {
        "200": {
            "description": "PNG design sheet",
            "content": {"image/png": {}},
            "headers": {
                "X-Model-Version": {"schema": {"type": "integer"}},
                "X-Seed": {"schema": {"type": "integer"}},
                "ETag": {"schema": {"type": "string"}},
                "X-Model-Name": {"schema": {"type": "string"}},
                "X-Category": {"schema": {"type": "string"}},
            },
        }
    }
    sheet_category = _category(
        "category",
        "draw from the class-conditional model (without it: the first model, as ever); all: "
        "ten rows, one per category in index order, each with the seed's first cols latents "
        "(a column is one idea as every category); a seed's latents never depend on the "
        "category",
        with_all=True,
    )
    walk_categories = [
        _category("category", "draw the walk as this category (the class-conditional model)"),
        _category(
            "to_category",
            "with category: the same walk again as this category, in a second row",
        ),
    ]
    per_row = {
        "description": "the class-conditional model: one category for every latent, or a "
        f"list of one per latent; each {allowed(False)}",
        "oneOf": [*ONE, {"type": "array", "items": {"oneOf": ONE}}],
    }
    model_param = {
        "name": "model",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": [s.model_name, s.cond_model_name]},
        "description": "which model's (default: the first; the class-conditional one serves "
        "category requests)",
    }
    limit = s.limits
    pins = [
        _int_param(limit["version"]),
        {
            "name": "label",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "pin a version label, e.g. stable or canary",
        },
    ]
    layout = [_int_param(limit[name]) for name in ("rows", "cols", "scale", "spacing")]
    walk = [
        _int_param(limit["steps"]),
        {
            "name": "format",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["png", "gif"]},
            "description": "png: one strip, 1 x steps (default); gif: an animation",
        },
        *layout[2:],  # scale and spacing, as for a sheet
    ]
    strip = {
        "200": {
            "description": "the walk as one PNG strip (wider than tall) or an animated GIF",
            "content": {"image/png": {}, "image/gif": {}},
            "headers": {"X-Model-Version": {"schema": {"type": "integer"}}},
        }
    }
    latent = {
        "type": "array",
        "items": {"type": "number"},
        "description": "one latent (the model card's latent_dim numbers)",
    }
    job = {
        "200": {
            "description": "training job state",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Fashion GAN gateway", "version": "1.0"},
        "paths": {
            "/api/generar-diseno": {
                "get": {
                    "summary": "A new PNG design sheet on every call; with seed, a fixed one.",
                    "parameters": [
                        _int_param(limit["seed"]),
                        *layout,
                        sheet_category,
                        *pins,
                    ],
                    "responses": _answers(png),
                },
                "post": {
                    "summary": "A PNG sheet from your own latent vectors.",
                    "parameters": pins,
                    "requestBody": _json_body(
                        s,
                        ["latents"],
                        {
                            "latents": {
                                "type": "array",
                                "minItems": limit["latents"].lo,
                                "maxItems": limit["latents"].hi,
                                "items": latent,
                            },
                            # default: the most square grid of the latents
                            "rows": {
                                k: v for k, v in _schema(limit["rows"]).items() if k != "default"
                            },
                            "cols": {
                                k: v for k, v in _schema(limit["cols"]).items() if k != "default"
                            },
                            "category": per_row,
                            "categories": per_row,
                        },
                    ),
                    "responses": _answers({**png, "413": {"description": "body too large"}}),
                },
            },
            "/api/interpolate": {
                "get": {
                    "summary": "The walk between the first designs of two seeds (spherical "
                    "interpolation of their latents).",
                    "parameters": [
                        _int_param(limit["from"], required=True),
                        _int_param(limit["to"], required=True),
                        *walk,
                        *walk_categories,
                        *pins,
                    ],
                    "responses": _answers(strip),
                },
                "post": {
                    "summary": "The walk between two latent vectors of your own.",
                    "parameters": pins,
                    "requestBody": _json_body(
                        s,
                        ["from", "to"],
                        {
                            "from": latent,
                            "to": latent,
                            "steps": _schema(limit["steps"]),
                            "format": {"type": "string", "enum": ["png", "gif"]},
                            "category": {"oneOf": ONE},
                            "to_category": {"oneOf": ONE},
                        },
                    ),
                    "responses": _answers({**strip, "413": {"description": "body too large"}}),
                },
            },
            "/api/limits": {
                "get": {
                    "summary": "The request limits of this gateway: for each integer "
                    "parameter its min, max, default and meaning (the gallery reads them).",
                    "responses": {
                        "200": {
                            "description": "name -> {min, max, default, help}",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/api/versions": {
                "get": {
                    "summary": "Versions the model server reports, their labels and quality "
                    "figures (from each version's model card; the class-conditional model's "
                    "add its categories and figures per category).",
                    "parameters": [model_param],
                    "responses": {
                        "200": {
                            "description": "versions, labels and the newest AVAILABLE version",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "503": {
                            "description": "the model server is unreachable",
                            "content": {"application/json": {"schema": ERROR}},
                        },
                    },
                }
            },
            "/api/training": {
                "get": {
                    "summary": "The training job: state, profile, epoch, progress, log lines.",
                    "parameters": [model_param],
                    "responses": job,
                },
                "post": {
                    "summary": "Start a training job (Authorization: Bearer <admin token>): the "
                    "first model's, whose quick profile publishes the class-conditional model "
                    "too, or with ?model= that model's own.",
                    "parameters": [model_param],
                    "responses": {"202": job["200"], "401": {"description": "no token"}},
                },
            },
            "/": {
                "get": {
                    "summary": "The design gallery (HTML): sheets, seeds, versions, training "
                    "progress and interpolation.",
                    "responses": {"200": {"description": "the page", "content": {"text/html": {}}}},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "The process is up.",
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "200 while the gateway answers (if only with 503 and "
                    "Retry-After); the body says what TF Serving last reported (upstream: "
                    "reachable, ready, versions) and whether the model folder can be read.",
                    "responses": {"200": {"description": "ready"}},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics.",
                    "responses": {"200": {"description": "text exposition"}},
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}},
                    "required": ["error"],
                }
            }
        },
    }


def docs_page(schema: dict[str, Any]) -> str:
    sections = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            params = "".join(
                f"<li><code>{html.escape(p['name'])}</code>: "
                f"{html.escape(p.get('description', ''))}"
                f" {html.escape(_range(p.get('schema', {})))}</li>"
                for p in op.get("parameters", [])
            )
            sections.append(
                f"<h3>{method.upper()} <code>{html.escape(path)}</code></h3>"
                f"<p>{html.escape(op['summary'])}</p>{f'<ul>{params}</ul>' if params else ''}"
            )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Fashion GAN gateway</title>'
        "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto}</style></head><body>"
        '<h1>Fashion GAN gateway</h1><p><img src="/api/generar-diseno?seed=1&amp;scale=4&amp;'
        'spacing=2" alt="a design sheet"></p>'
        + "".join(sections)
        + '<p>Errors are JSON <code>{"error": "one sentence"}</code>. '
        'Schema: <a href="/openapi.json">/openapi.json</a>.</p></body></html>'
    )


def _range(schema: dict[str, Any]) -> str:
    if "minimum" not in schema:
        return ""
    default = f", default {schema['default']}" if "default" in schema else ""
    return f"({schema['minimum']}..{schema['maximum']}{default})"
