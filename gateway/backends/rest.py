"""TF Serving over REST (row-format predict), on one pooled ``httpx.AsyncClient``.

No TensorFlow here: this is the thin gateway (small memory, fast start). The REST predict answer
does not say which version served it, so the version is resolved first (from the metadata
endpoint, cached for GATEWAY_POLL_INTERVAL_S) and the predict goes to ``/versions/N``: the
X-Model-Version header is then exactly the version that drew the sheet. Answers are parsed off
the event loop (72 images are ~600 kB of JSON).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import numpy as np

from fashion_core.contract import IMAGE_SHAPE
from fashion_core.tfserving import TFServingBodyError, parse_metadata, parse_status, pinned_url
from gateway.backends.base import Generated, ModelStatus, Pin
from gateway.errors import NotPinnable, NoVersion, UpstreamError
from gateway.settings import Settings

STATUS_CONNECTIONS = 2


class RestBackend:
    name = "rest"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=settings.upstream_connections,
                max_keepalive_connections=settings.upstream_connections,
            ),
            headers={"content-type": "application/json"},
        )
        # status calls on connections of their own: a slow status endpoint must never hold
        # the connections the predictions need (their answers are shared: gateway/shared.py)
        self.status_client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=STATUS_CONNECTIONS),
            headers={"content-type": "application/json"},
        )
        self._cache: dict[Pin, tuple[float, int]] = {}  # pin -> (expires, version)
        self._latent: dict[int, int] = {}  # version -> latent size (from its metadata)

    def _url(self, pin: Pin) -> str:
        s = self.settings
        return pinned_url(s.rest_url, s.model_name, pin.version, pin.label)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.client.aclose()
        await self.status_client.aclose()

    # --- transport -------------------------------------------------------------------------
    async def _call(
        self,
        method: str,
        url: str,
        timeout: float,
        body: bytes = b"",
        client: httpx.AsyncClient | None = None,
    ) -> Any:
        """One call with a deadline: (status, parsed JSON or error text). Transport faults
        become UpstreamError."""
        where = self.settings.rest_url
        try:
            resp = await (client or self.client).request(
                method, url, content=body or None, timeout=timeout
            )
        except httpx.TimeoutException:
            raise UpstreamError(f"TF Serving did not answer within {timeout:g}s.", 504) from None
        except httpx.ConnectError:
            # nothing listens: TF Serving keeps its ports closed until it has loaded a version
            raise UpstreamError(
                f"TF Serving at {where} is unreachable.",
                503,
                retry_after=self.settings.retry_busy_s,
                unreachable=True,
            ) from None
        except httpx.TransportError as exc:  # reset, or the answer cut short mid-body
            raise UpstreamError(
                f"TF Serving at {where} broke off its answer ({type(exc).__name__}).",
                502,
                retry_after=self.settings.retry_busy_s,
            ) from None
        try:
            payload = await asyncio.to_thread(json.loads, resp.content)
        except (ValueError, RecursionError):
            if resp.status_code == 200:
                raise UpstreamError("TF Serving sent an answer that is not JSON.", 502) from None
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
            if pin.label is not None:
                return NotPinnable(
                    f"label {pin.label!r} names a version the model server has not loaded.", 404
                )
            return NoVersion(f"TF Serving has no AVAILABLE version: {message}")
        if code == 400 and "version label" in message:
            return NotPinnable(f"label {pin.label!r} is not defined on the model server.")
        if code in (503, 429):
            return UpstreamError(
                f"TF Serving is overloaded: {message}", 503, retry_after=self.settings.retry_busy_s
            )
        if code == 504:
            return UpstreamError(f"TF Serving timed out: {message}", 504)
        return UpstreamError(f"TF Serving answered {code}: {message}", 502)

    # --- interface -------------------------------------------------------------------------
    async def status(self) -> ModelStatus:
        code, body = await self._call(
            "GET", self._url(Pin()), self.settings.status_timeout_s, client=self.status_client
        )
        if code == 404:
            return ModelStatus([])
        if code != 200:
            raise UpstreamError(f"TF Serving status answered {code}: {body}", 502)
        try:
            return ModelStatus(parse_status(body))
        except TFServingBodyError as exc:
            raise UpstreamError(str(exc), 502) from None

    async def latent_dim(self, pin: Pin) -> int:
        version = await self._resolve(pin)
        if version not in self._latent:
            await self._metadata(Pin(version=version))
        return self._latent[version]

    async def _metadata(self, pin: Pin) -> int:
        """Ask the metadata endpoint which version ``pin`` names (its ``model_spec.version``;
        the status endpoint ignores labels) and note that version's latent size."""
        url = self._url(pin) + "/metadata"
        code, body = await self._call("GET", url, self.settings.status_timeout_s)
        if code != 200:
            raise self._fail(code, str(body), pin)
        try:
            version, latent = parse_metadata(body)
        except TFServingBodyError as exc:
            raise UpstreamError(str(exc), 502) from None
        self._latent[version] = latent
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
        """Resolve the version (metadata), then predict on /versions/N. Behind a Service the
        two calls may reach different TF Serving replicas, and one may not have loaded that
        version yet: a 404 after a successful resolution is tried once more (resolving again),
        then answered 503 with Retry-After. It never means "no version": nothing is trained."""
        body = json.dumps({"instances": z.tolist()}).encode()
        for attempt in range(2):
            version = await self._resolve(pin)
            url = self._url(Pin(version=version)) + ":predict"
            code, answer = await self._call("POST", url, self.settings.upstream_timeout_s, body)
            if code == 200:
                return Generated(await asyncio.to_thread(_images, answer, len(z)), version)
            if code != 404:
                raise self._fail(code, str(answer), pin)
            self._cache.pop(pin, None)  # unloaded, or not loaded on this replica yet
            if attempt == 0:
                continue
        raise UpstreamError(
            f"version {version} is not loaded on every TF Serving replica yet.",
            503,
            retry_after=self.settings.retry_after_s,
        )


def _images(body: Any, rows: int) -> np.ndarray:
    try:
        images = np.asarray(body["predictions"], dtype=np.float32)
    except (KeyError, TypeError, ValueError):
        raise UpstreamError(
            "TF Serving sent a predict body the gateway cannot read.", 502
        ) from None
    if images.shape != (rows, *IMAGE_SHAPE):
        raise UpstreamError(
            f"TF Serving returned images of shape {images.shape} for {rows} latents.", 502
        )
    return images
