"""TF Serving's REST bodies and URLs (contract: "REST", "Status body", "Metadata body")."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import numpy as np

from fashion_core.contract import CATEGORY, IMAGE_SHAPE, INPUT, SIGNATURE
from fashion_gan.tfserving.values import VersionState


class BodyError(ValueError):
    """TF Serving answered 200 with a body that does not have the contract's shape."""


def model_url(rest_url: str, model: str) -> str:
    return f"{rest_url.rstrip('/')}/v1/models/{quote(model, safe='')}"


def pinned_url(rest_url: str, model: str, version: int | None, label: str | None) -> str:
    """The model URL narrowed to a version or a label (neither: the newest version)."""
    url = model_url(rest_url, model)
    if version is not None:
        return f"{url}/versions/{version}"
    if label is not None:
        return f"{url}/labels/{quote(label, safe='')}"
    return url


def predict_body(z: np.ndarray, category: np.ndarray | None = None) -> bytes:
    """A row-format predict body: ``{"instances": [[z...], ...]}`` for the unconditional model;
    with categories each row is an object keyed by both inputs, ``{"z": [...], "category": 3}``
    (JSON integers: TF Serving refuses ``3.0`` for an int64 input)."""
    if category is None:
        return json.dumps({"instances": z.tolist()}).encode()
    rows = [
        {INPUT: row, CATEGORY: int(c)} for row, c in zip(z.tolist(), category.tolist(), strict=True)
    ]
    return json.dumps({"instances": rows}).encode()


def parse_status(body: Any) -> list[VersionState]:
    """``{"model_version_status": [{"version": "3", "state": "AVAILABLE", "status": {...}}]}``."""
    try:
        return [
            VersionState(
                int(v["version"]),
                str(v["state"]),
                str((v.get("status") or {}).get("error_message", "")),
            )
            for v in body["model_version_status"]
        ]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise BodyError("TF Serving sent a status body that is not the contract's.") from None


def parse_metadata(body: Any) -> tuple[int, int]:
    """(version served, latent size of input ``z``) from a metadata body (note the nested
    ``signature_def.signature_def`` and the string dim sizes)."""
    try:
        version = int(body["model_spec"]["version"])
        signature = body["metadata"]["signature_def"]["signature_def"][SIGNATURE]
        latent = int(signature["inputs"][INPUT]["tensor_shape"]["dim"][-1]["size"])
    except (KeyError, TypeError, ValueError, IndexError):
        raise BodyError(
            f"TF Serving sent metadata without input '{INPUT}' of {SIGNATURE}."
        ) from None
    return version, latent


def parse_predictions(body: Any, rows: int) -> np.ndarray:
    """The images of a row-format predict answer, (rows, 28, 28, 1) float32."""
    try:
        images = np.asarray(body["predictions"], dtype=np.float32)
    except (KeyError, TypeError, ValueError):
        raise BodyError("TF Serving sent a predict body that cannot be read.") from None
    if images.shape != (rows, *IMAGE_SHAPE):
        raise BodyError(f"TF Serving returned images of shape {images.shape} for {rows} latents.")
    return images
