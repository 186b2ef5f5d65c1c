"""TF Serving over REST (row-format predict), on one pooled ``httpx.AsyncClient``.

No TensorFlow here. The REST predict answer does not say which version served it, so the
version is resolved first (from the metadata endpoint, kept for ``resolve_ttl_s``) and the
predict goes to ``/versions/N``: the answer's version is then exactly the one that drew the
images. Answers are parsed off the event loop (72 images are ~600 kB of JSON).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import numpy as np

from fashion_gan.tfserving.bodies import (
    BodyError,
    parse_metadata,
    parse_predictions,
    parse_status,
    pinned_url,
    predict_body,
)
from fashion_gan.tfserving.config import ServingConfig
from fashion_gan.tfserving.errors import (
    CATEGORY_CHECK,
    Fault,
    ServingError,
    UpstreamError,
    translate,
)
from fashion_gan.tfserving.values import Generated, ModelStatus, Pin

STATUS_CONNECTIONS = 2


def _fault(code: int, message: str) -> Fault:
    """An HTTP error answer of TF Serving -> the Fault it means (contract: Errors table)."""
    if code == 404:
        return Fault.NOT_FOUND
    if code == 400 and "version label" in message:
        return Fault.UNKNOWN_LABEL
    if code == 400 and CATEGORY_CHECK in message:
        return Fault.BAD_CATEGORY
    if code in (503, 429):  # 429: RESOURCE_EXHAUSTED, e.g. a batching queue timed out
        return Fault.BUSY
    if code == 504:
        return Fault.DEADLINE
    return Fault.OTHER


class RestTransport:
    name = "rest"

    def __init__(self, config: ServingConfig) -> None:
        if config.rest_url is None:
            raise ValueError("RestTransport needs a ServingConfig with rest_url.")
        self.config, self.rest_url = config, config.rest_url
        self.client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=config.pool_size, max_keepalive_connections=config.pool_size
            ),
            headers={"content-type": "application/json"},
        )
        # status calls on connections of their own: a slow status endpoint must never hold
        # the connections the predictions need
        self.status_client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=STATUS_CONNECTIONS),
            headers={"content-type": "application/json"},
        )
        self._cache: dict[Pin, tuple[float, int]] = {}  # pin -> (expires, version)
        self._latent: dict[int, int] = {}  # version -> latent size (from its metadata)

    def _url(self, pin: Pin) -> str:
        return pinned_url(self.rest_url, self.config.model_name, pin.version, pin.label)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.client.aclose()
        await self.status_client.aclose()

    async def _call(
        self,
        method: str,
        url: str,
        timeout: float,
        pin: Pin,
        body: bytes = b"",
        client: httpx.AsyncClient | None = None,
    ) -> Any:
        """One call with a deadline -> the parsed JSON of a 200; anything else raises."""
        try:
            resp = await (client or self.client).request(
                method, url, content=body or None, timeout=timeout
            )
        except httpx.TimeoutException:
            raise translate(Fault.DEADLINE, f"{timeout:g}s", pin, self.config) from None
        except httpx.ConnectError:
            # nothing listens: TF Serving keeps its ports closed until it has loaded a version
            raise translate(Fault.UNREACHABLE, "", pin, self.config) from None
        except httpx.TransportError as exc:  # reset, or the answer cut short mid-body
            raise translate(Fault.BROKEN, type(exc).__name__, pin, self.config) from None
        try:
            payload = await asyncio.to_thread(json.loads, resp.content)
        except (ValueError, RecursionError):
            if resp.status_code == 200:
                raise UpstreamError("TF Serving sent an answer that is not JSON.", 502) from None
            payload = {"error": resp.text[:200]}
        if resp.status_code != 200:
            text = str(payload.get("error", "") if isinstance(payload, dict) else payload)
            fault = _fault(resp.status_code, text)
            detail = f"{resp.status_code}: {text}" if fault is Fault.OTHER else text
            raise translate(fault, detail, pin, self.config)
        return payload

    async def status(self) -> ModelStatus:
        try:
            body = await self._call(
                "GET",
                self._url(Pin()),
                self.config.status_timeout_s,
                Pin(),
                b"",
                self.status_client,
            )
        except ServingError as exc:
            if exc.status == 404 and not isinstance(exc, UpstreamError):
                return ModelStatus([])  # the server does not know the model (yet)
            raise
        try:
            return ModelStatus(parse_status(body))
        except BodyError as exc:
            raise UpstreamError(str(exc), 502) from None

    async def latent_dim(self, pin: Pin) -> int:
        version = await self.resolve(pin)
        if version not in self._latent:
            await self._metadata(Pin(version=version))
        return self._latent[version]

    async def _metadata(self, pin: Pin) -> int:
        """Ask the metadata endpoint which version ``pin`` names (its ``model_spec.version``;
        the status endpoint ignores labels) and note that version's latent size."""
        body = await self._call(
            "GET", self._url(pin) + "/metadata", self.config.status_timeout_s, pin
        )
        try:
            version, latent = parse_metadata(body)
        except BodyError as exc:
            raise UpstreamError(str(exc), 502) from None
        self._latent[version] = latent
        return version

    async def resolve(self, pin: Pin) -> int:
        """The version ``pin`` names on the server now (kept for ``resolve_ttl_s``)."""
        if pin.version is not None:
            return pin.version
        cached = self._cache.get(pin)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        version = await self._metadata(pin)
        self._cache[pin] = (time.monotonic() + self.config.resolve_ttl_s, version)
        return version

    async def generate(
        self, z: np.ndarray, pin: Pin, category: np.ndarray | None = None
    ) -> Generated:
        """Resolve the version (metadata), then predict on /versions/N. Behind a Service the
        two calls may reach different TF Serving replicas, and one may not have loaded that
        version yet: a 404 after a successful resolution is tried once more (resolving again),
        then answered 503 with Retry-After. It never means "no version"."""
        body = predict_body(z, category)
        for _ in range(2):
            version = await self.resolve(pin)
            url = self._url(Pin(version=version)) + ":predict"
            try:
                answer = await self._call("POST", url, self.config.timeout_s, pin, body)
            except ServingError as exc:
                if exc.status != 404 or isinstance(exc, UpstreamError):
                    raise
                self._cache.pop(pin, None)  # unloaded, or not loaded on this replica yet
                continue
            try:
                images = await asyncio.to_thread(parse_predictions, answer, len(z))
            except BodyError as exc:
                raise UpstreamError(str(exc), 502) from None
            return Generated(images, version)
        raise UpstreamError(
            f"version {version} is not loaded on every TF Serving replica yet.",
            503,
            retry_after=self.config.retry_loading_s,
        )
