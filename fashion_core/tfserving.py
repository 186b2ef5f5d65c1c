"""TF Serving's REST admin surface, read the same way by the gateway's REST backend (over an
async transport) and by the rollout tool (blocking): URLs, the status and metadata bodies
(contract: "Status body", "Metadata body"), and a small blocking client for ops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from fashion_core.contract import INPUT, SIGNATURE


class TFServingBodyError(ValueError):
    """TF Serving answered 200 with a body that does not have the contract's shape."""


@dataclass(frozen=True)
class VersionState:
    version: int
    state: str  # UNKNOWN, START, LOADING, AVAILABLE, UNLOADING, END
    error: str = ""


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
        raise TFServingBodyError(
            "TF Serving sent a status body that is not the contract's."
        ) from None


def parse_metadata(body: Any) -> tuple[int, int]:
    """(version served, latent size of input ``z``) from a metadata body (note the nested
    ``signature_def.signature_def`` and the string dim sizes)."""
    try:
        version = int(body["model_spec"]["version"])
        signature = body["metadata"]["signature_def"]["signature_def"][SIGNATURE]
        latent = int(signature["inputs"][INPUT]["tensor_shape"]["dim"][-1]["size"])
    except (KeyError, TypeError, ValueError, IndexError):
        raise TFServingBodyError(
            f"TF Serving sent metadata without input '{INPUT}' of {SIGNATURE}."
        ) from None
    return version, latent


class AdminClient:
    """Blocking status and label look-ups on one TF Serving replica (the rollout tool's view).
    Every method answers None when the replica cannot be asked (down, or not listening yet)."""

    def __init__(self, rest_url: str, model: str, timeout_s: float = 5.0) -> None:
        self.rest_url, self.model, self.timeout_s = rest_url.rstrip("/"), model, timeout_s
        self.session = requests.Session()

    def _get(self, url: str) -> tuple[int, Any] | None:
        try:
            resp = self.session.get(url, timeout=self.timeout_s)
            return resp.status_code, resp.json()
        except (requests.RequestException, ValueError):
            return None

    def states(self) -> dict[int, VersionState] | None:
        """Every version the replica has ever had for the model ({} for an unknown model)."""
        answer = self._get(model_url(self.rest_url, self.model))
        if answer is None:
            return None
        code, body = answer
        if code == 404:
            return {}
        try:
            return {v.version: v for v in parse_status(body)} if code == 200 else None
        except TFServingBodyError:
            return None

    def label_version(self, label: str) -> int | None:
        """The version the replica serves for ``label`` (None: unknown label, or unreachable)."""
        answer = self._get(pinned_url(self.rest_url, self.model, None, label) + "/metadata")
        if answer is None or answer[0] != 200:
            return None
        try:
            return parse_metadata(answer[1])[0]
        except TFServingBodyError:
            return None
