"""TF Serving over REST (row-format predict), with a pooled ``requests`` session.

No TensorFlow here: this is the thin gateway (small memory, fast start). The REST predict answer
does not say which version served it, so the version is resolved first (from the metadata
endpoint, cached for GATEWAY_POLL_INTERVAL_S) and the predict goes to ``/versions/N``: the
X-Model-Version header is then exactly the version that drew the sheet.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import requests
from requests.adapters import HTTPAdapter

from fashion_core.contract import IMAGE_SHAPE, INPUT, SIGNATURE
from gateway.backends.base import Generated, ModelStatus, Pin, VersionState
from gateway.errors import NotPinnable, NoVersion, UpstreamError
from gateway.settings import Settings

POOL = 64


class RestBackend:
    name = "rest"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model_url = f"{settings.rest_url}/v1/models/{settings.model_name}"
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._cache: dict[Pin, tuple[float, int]] = {}  # pin -> (expires, version)
        self._latent: dict[int, int] = {}  # version -> latent size (from its metadata)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.session.close()

    # --- transport -------------------------------------------------------------------------
    def _request(self, method: str, url: str, timeout: float, body: Any = None) -> Any:
        """One call with a deadline; transport faults become UpstreamError, HTTP errors are
        returned as (status, message) for the caller to interpret."""
        try:
            resp = self.session.request(method, url, json=body, timeout=timeout)
        except requests.Timeout:
            raise UpstreamError(f"TF Serving did not answer within {timeout:g}s.", 504) from None
        except requests.ConnectionError:
            raise UpstreamError(
                f"TF Serving at {self.settings.rest_url} is unreachable.", 503, retry_after=5
            ) from None
        try:
            payload = resp.json()
        except ValueError:
            payload = {"error": resp.text[:200]}
        if resp.status_code != 200:
            message = payload.get("error", "") if isinstance(payload, dict) else str(payload)
            return resp.status_code, str(message)
        return 200, payload

    def _fail(self, code: int, message: str, pin: Pin) -> Exception:
        """Translate a TF Serving error answer (contract: Errors table)."""
        if code == 404:
            if pin.version is not None:
                return NotPinnable(f"version {pin.version} is not loaded by the model server.", 404)
            return NoVersion(f"TF Serving has no AVAILABLE version: {message}")
        if code == 400 and "version label" in message:
            return NotPinnable(f"label {pin.label!r} is not defined on the model server.")
        if code in (503, 429):
            return UpstreamError(f"TF Serving is overloaded: {message}", 503, retry_after=1)
        if code == 504:
            return UpstreamError(f"TF Serving timed out: {message}", 504)
        return UpstreamError(f"TF Serving answered {code}: {message}", 502)

    # --- interface -------------------------------------------------------------------------
    async def status(self) -> ModelStatus:
        code, body = await asyncio.to_thread(
            self._request, "GET", self.model_url, self.settings.status_timeout_s
        )
        if code == 404:
            return ModelStatus([])
        if code != 200:
            raise UpstreamError(f"TF Serving status answered {code}: {body}", 502)
        return _parse_status(body)

    async def latent_dim(self, pin: Pin) -> int:
        version = await self._resolve(pin)
        if version not in self._latent:
            await self._metadata(Pin(version=version))
        return self._latent[version]

    async def _metadata(self, pin: Pin) -> int:
        """Ask the metadata endpoint which version ``pin`` names (its ``model_spec.version``;
        the status endpoint ignores labels) and note that version's latent size."""
        path = self.model_url
        if pin.version is not None:
            path += f"/versions/{pin.version}"
        elif pin.label is not None:
            path += f"/labels/{pin.label}"
        code, body = await asyncio.to_thread(
            self._request, "GET", f"{path}/metadata", self.settings.status_timeout_s
        )
        if code != 200:
            raise self._fail(code, str(body), pin)
        try:
            version = int(body["model_spec"]["version"])
            sig = body["metadata"]["signature_def"]["signature_def"][SIGNATURE]
            self._latent[version] = int(sig["inputs"][INPUT]["tensor_shape"]["dim"][-1]["size"])
        except (KeyError, TypeError, ValueError, IndexError):
            raise UpstreamError("TF Serving sent metadata without input 'z'.", 502) from None
        return version

    async def _resolve(self, pin: Pin) -> int:
        if pin.version is not None:
            return pin.version
        cached = self._cache.get(pin)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        version = await self._metadata(pin)
        self._cache[pin] = (time.monotonic() + self.settings.poll_interval_s, version)
        return version

    async def generate(self, z: np.ndarray, pin: Pin) -> Generated:
        for attempt in range(2):
            version = await self._resolve(pin)
            code, body = await asyncio.to_thread(
                self._request,
                "POST",
                f"{self.model_url}/versions/{version}:predict",
                self.settings.upstream_timeout_s,
                {"instances": z.tolist()},
            )
            if code == 200:
                return Generated(_images(body), version)
            if code == 404 and pin.version is None and attempt == 0:
                self._cache.pop(pin, None)  # the version was just unloaded: resolve again
                continue
            raise self._fail(code, str(body), pin)
        raise AssertionError("unreachable")


def _parse_status(body: Any) -> ModelStatus:
    try:
        return ModelStatus(
            [
                VersionState(
                    int(v["version"]),
                    str(v["state"]),
                    str(v.get("status", {}).get("error_message", "")),
                )
                for v in body["model_version_status"]
            ]
        )
    except (KeyError, TypeError, ValueError):
        raise UpstreamError("TF Serving sent a status body the gateway cannot read.", 502) from None


def _images(body: Any) -> np.ndarray:
    try:
        images = np.asarray(body["predictions"], dtype=np.float32)
    except (KeyError, TypeError, ValueError):
        raise UpstreamError(
            "TF Serving sent a predict body the gateway cannot read.", 502
        ) from None
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise UpstreamError(f"TF Serving returned images of shape {images.shape}.", 502)
    return images
