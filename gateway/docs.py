"""The OpenAPI schema of the gateway and a self-contained docs page rendered from it (no CDN
assets, so it works on offline machines too)."""

from __future__ import annotations

import html
from typing import Any

from gateway.settings import Settings

ERROR = {"$ref": "#/components/schemas/Error"}


def _int_param(name: str, lo: int, hi: int, text: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": text,
        "schema": {"type": "integer", "minimum": lo, "maximum": hi},
    }


def _answers(ok: dict[str, Any]) -> dict[str, Any]:
    err = {"content": {"application/json": {"schema": ERROR}}}
    return {
        **ok,
        "400": {"description": "bad input: the sentence says what is allowed", **err},
        "404": {"description": "pinned version does not exist", **err},
        "502": {"description": "the model server gave a bad answer", **err},
        "503": {"description": "no version yet (training started) or model server down", **err},
        "504": {"description": "the model server missed its deadline", **err},
    }


def openapi(s: Settings) -> dict[str, Any]:
    png = {
        "200": {
            "description": "PNG design sheet",
            "content": {"image/png": {}},
            "headers": {
                "X-Model-Version": {"schema": {"type": "integer"}},
                "X-Seed": {"schema": {"type": "integer"}},
                "ETag": {"schema": {"type": "string"}},
            },
        }
    }
    pins = [
        _int_param("version", 1, 2**63 - 1, "pin a published version"),
        {
            "name": "label",
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": "pin a version label, e.g. stable or canary",
        },
    ]
    layout = [
        _int_param("rows", 1, s.max_grid, "rows of the sheet (default 3)"),
        _int_param("cols", 1, s.max_grid, "columns of the sheet (default 3)"),
        _int_param("scale", 1, s.max_scale, "integer upscale (default 1)"),
        _int_param("spacing", 0, s.max_spacing, "pixels between tiles (default 0)"),
    ]
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
                        _int_param("seed", 0, 2**63 - 1, "same seed + same version = same PNG"),
                        *layout,
                        *pins,
                    ],
                    "responses": _answers(png),
                },
                "post": {
                    "summary": "A PNG sheet from your own latent vectors.",
                    "parameters": pins,
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["latents"],
                                    "properties": {
                                        "latents": {
                                            "type": "array",
                                            "maxItems": s.max_grid**2,
                                            "items": {
                                                "type": "array",
                                                "items": {"type": "number"},
                                                "description": "one latent (model card's size)",
                                            },
                                        },
                                        "rows": {"type": "integer"},
                                        "cols": {"type": "integer"},
                                        "scale": {"type": "integer"},
                                        "spacing": {"type": "integer"},
                                        "version": {"type": "integer"},
                                        "label": {"type": "string"},
                                    },
                                }
                            }
                        }
                    },
                    "responses": _answers({**png, "413": {"description": "body too large"}}),
                },
            },
            "/api/training": {
                "get": {
                    "summary": "The training job: state, profile, epoch, progress, log lines.",
                    "responses": job,
                },
                "post": {
                    "summary": "Start a training job (Authorization: Bearer <admin token>).",
                    "responses": {"202": job["200"], "401": {"description": "no token"}},
                },
            },
            "/healthz": {
                "get": {
                    "summary": "The process is up.",
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "200 while a model version is AVAILABLE, else 503.",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
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
    if "minimum" in schema:
        return f"({schema['minimum']}..{schema['maximum']})"
    return ""
