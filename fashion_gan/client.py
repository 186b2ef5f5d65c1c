"""``GatewayClient``: the gateway's HTTP API from Python (requests; no TensorFlow).

Every failure is one ``GatewayError`` carrying the HTTP status and the gateway's one-sentence
explanation. A 503 with Retry-After (the gateway is full, a version is being trained or loaded)
is tried again after the time the gateway asks for, while the client's retry budget lasts.

``category`` (an index 0-9 or a name such as ``"dress"`` or ``"vestido"``; ``"all"`` for a sheet
of one row per category) asks the class-conditional model; None, the default, asks the first
model exactly as before.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

__all__ = ["GatewayClient", "GatewayError", "Sheet"]


class GatewayError(Exception):
    """The gateway refused or failed (``status``: its HTTP status; 503 also when unreachable)."""

    def __init__(self, message: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


@dataclass(frozen=True)
class Sheet:
    """An image answer: PNG (or GIF) bytes and the version (and seed) that drew it."""

    data: bytes
    content_type: str
    version: int
    seed: int | None = None
    model: str | None = None  # the model that drew it (X-Model-Name)
    category: str | None = None  # the class-conditional model's category (X-Category)


def _retry_after(resp: requests.Response) -> float | None:
    raw = resp.headers.get("retry-after", "")
    return float(raw) if raw.isdigit() else None


class GatewayClient:
    """``GatewayClient("http://127.0.0.1:8000").sheet(seed=42).data`` -> PNG bytes.

    ``retries``: how many times a 503 with Retry-After is tried again; ``max_wait_s``: the most
    the client sleeps in all for one call (a Retry-After beyond it is not waited for). Each
    retry waits the Retry-After plus a random part of ``jitter_s``: clients refused in the same
    instant then do not all come back in the same instant (and never earlier than asked, when
    the gateway would hold them anyway). ``sleep``: how to wait (tests record the waits)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        timeout_s: float = 30.0,
        retries: int = 3,
        max_wait_s: float = 60.0,
        client_id: str | None = None,
        session: requests.Session | None = None,
        jitter_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s, self.retries, self.max_wait_s = timeout_s, retries, max_wait_s
        self.jitter_s, self._sleep, self._rng = jitter_s, sleep, random.Random()
        self.session = session or requests.Session()
        if client_id:  # keeps this client on one side of a canary split
            self.session.headers["X-Client-Id"] = client_id

    # --- images ----------------------------------------------------------------------------
    def sheet(
        self,
        seed: int | None = None,
        rows: int = 3,
        cols: int = 3,
        scale: int = 1,
        spacing: int = 0,
        version: int | None = None,
        label: str | None = None,
        category: int | str | None = None,
    ) -> Sheet:
        """A rows x cols PNG sheet from ``seed`` (fresh noise without one); with ``category``
        from the class-conditional model (``"all"``: ten rows, one per category, of ``cols``
        designs; ``rows`` is then left to the gateway)."""
        params: dict[str, Any] = {"seed": seed, "rows": rows, "cols": cols, "scale": scale}
        params |= {"spacing": spacing, "category": category}
        if category == "all":
            params["rows"] = None
        return self._image("GET", "/api/generar-diseno", _pinned(params, version, label))

    def sheet_from_latents(
        self,
        latents: Sequence[Sequence[float]] | Any,
        rows: int | None = None,
        cols: int | None = None,
        scale: int = 1,
        spacing: int = 0,
        version: int | None = None,
        label: str | None = None,
        category: int | str | Sequence[int | str] | None = None,
    ) -> Sheet:
        """A sheet from your own latent vectors (a list of lists or a 2-D numpy array); with
        ``category`` (one for all, or a list of one per latent) from the class-conditional
        model."""
        body = {"latents": _lists(latents), "rows": rows, "cols": cols, "scale": scale}
        body |= {"spacing": spacing, "category": _lists(category)}
        return self._image("POST", "/api/generar-diseno", None, _pinned(body, version, label))

    def interpolate(
        self,
        from_seed: int,
        to_seed: int,
        steps: int = 8,
        fmt: str = "png",
        scale: int = 1,
        spacing: int = 0,
        version: int | None = None,
        label: str | None = None,
        category: int | str | None = None,
        to_category: int | str | None = None,
    ) -> Sheet:
        """The walk between two seeds' first designs: a 1 x steps PNG strip, or a GIF; with
        ``category`` drawn as that category, with ``to_category`` also as a second one (a
        second row)."""
        params = {"from": from_seed, "to": to_seed, "steps": steps, "format": fmt}
        params |= {"scale": scale, "spacing": spacing}
        params |= {"category": category, "to_category": to_category}
        return self._image("GET", "/api/interpolate", _pinned(params, version, label))

    def interpolate_latents(
        self,
        start: Sequence[float] | Any,
        end: Sequence[float] | Any,
        steps: int = 8,
        fmt: str = "png",
        scale: int = 1,
        spacing: int = 0,
        version: int | None = None,
        label: str | None = None,
        category: int | str | None = None,
        to_category: int | str | None = None,
    ) -> Sheet:
        """The walk between two latent vectors of your own (``category``, ``to_category``:
        as in ``interpolate``)."""
        body = {"from": _lists(start), "to": _lists(end), "steps": steps, "format": fmt}
        body |= {"scale": scale, "spacing": spacing}
        body |= {"category": category, "to_category": to_category}
        return self._image("POST", "/api/interpolate", None, _pinned(body, version, label))

    # --- state -----------------------------------------------------------------------------
    def versions(self, model: str | None = None) -> dict[str, Any]:
        """Versions, their states, labels and model-card quality figures (``model``: another
        served model's, e.g. ``"fashion_gan_cond"``; ``models`` lists them)."""
        params = {"model": model} if model else None
        doc: dict[str, Any] = self._call("GET", "/api/versions", params).json()
        return doc

    def training(self, model: str | None = None) -> dict[str, Any]:
        """The training job: state, profile, epoch, progress, log lines, error (``model``:
        the class-conditional model's job)."""
        params = {"model": model} if model else None
        doc: dict[str, Any] = self._call("GET", "/api/training", params).json()["training"]
        return doc

    def start_training(self, token: str, profile: str | None = None) -> dict[str, Any]:
        """Start a job (the gateway's admin token); answers the job and whether it started."""
        body = {"profile": profile} if profile else None
        headers = {"Authorization": f"Bearer {token}"}
        doc: dict[str, Any] = self._call("POST", "/api/training", None, body, headers).json()
        return doc

    # --- transport -------------------------------------------------------------------------
    def _image(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None = None,
    ) -> Sheet:
        resp = self._call(method, path, params, body)
        seed = resp.headers.get("x-seed")
        return Sheet(
            resp.content,
            resp.headers.get("content-type", ""),
            int(resp.headers["x-model-version"]),
            int(seed) if seed else None,
            resp.headers.get("x-model-name"),
            resp.headers.get("x-category"),
        )

    def _call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        url, waited, attempt, reconnected = self.base_url + path, 0.0, 0, False
        while True:
            try:
                resp = self.session.request(
                    method, url, params=params, json=body, headers=headers, timeout=self.timeout_s
                )
            except requests.ConnectionError as exc:
                if not reconnected and not isinstance(exc, requests.ConnectTimeout):
                    # a kept-alive connection the server closed just as it was reused (uvicorn
                    # drops idle ones after 5 s: a Retry-After of 5 s meets it): once more, anew
                    reconnected = True
                    continue
                raise GatewayError(f"{url} is unreachable ({type(exc).__name__}).", 503) from None
            except requests.Timeout:  # a read timeout (ConnectTimeout is a ConnectionError)
                raise GatewayError(
                    f"{url} did not answer within {self.timeout_s:g}s.", 504
                ) from None
            except requests.RequestException as exc:
                raise GatewayError(f"{url} is unreachable ({type(exc).__name__}).", 503) from None
            if resp.status_code < 400:
                return resp
            wait = _retry_after(resp)
            if (
                resp.status_code == 503
                and wait is not None
                and attempt < self.retries
                and waited + wait <= self.max_wait_s
            ):
                pause = wait + self._rng.uniform(0, self.jitter_s)
                self._sleep(pause)
                waited, attempt = waited + pause, attempt + 1
                continue
            raise GatewayError(_sentence(resp), resp.status_code, wait)


def _sentence(resp: requests.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return f"the gateway answered HTTP {resp.status_code}."
    return str(doc.get("error") if isinstance(doc, dict) else doc)


def _pinned(params: dict[str, Any], version: int | None, label: str | None) -> dict[str, Any]:
    out = {k: v for k, v in params.items() if v is not None}
    if version is not None:
        out["version"] = version
    if label is not None:
        out["label"] = label
    return out


def _lists(x: Any) -> Any:
    """numpy arrays -> nested lists of floats (JSON); lists pass through."""
    return x.tolist() if hasattr(x, "tolist") else x
