"""What every TF Serving replica reports: version states and label targets, and waiting until
all of them agree."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from fashion_gan.serving import ServingClient
from fashion_gan.tfserving import ServingConfig, ServingError, VersionState

Log = Callable[[str], None]
ASK_TIMEOUT_S = 5.0  # one status or metadata call to one replica


def expand(urls: Sequence[str], from_dns: bool) -> list[str]:
    """The replicas' REST URLs. With ``from_dns``, a host name that resolves to several
    addresses (a Kubernetes headless Service) stands for one replica per address."""
    out: list[str] = []
    for url in urls:
        parts = urlsplit(url.rstrip("/"))
        if not from_dns or parts.hostname is None:
            out.append(url.rstrip("/"))
            continue
        port = parts.port or 8501
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
        for address in sorted({str(info[4][0]) for info in infos}):
            host = f"[{address}]" if ":" in address else address
            out.append(urlunsplit((parts.scheme, f"{host}:{port}", parts.path, "", "")))
    return out


@dataclass
class Replicas:
    urls: list[str]
    model: str
    timeout_s: float
    log: Log = print

    def __post_init__(self) -> None:
        # the library's REST client, one per replica (the gateway's transport, blocking)
        # (a label is resolved anew on every call: a rollout waits for it to move)
        self.clients: list[ServingClient] = []
        try:
            for url in self.urls:
                self.clients.append(ServingClient(config=self._config(url)))
        except BaseException:
            self.close()  # the replicas' clients built so far
            raise

    def _config(self, url: str) -> ServingConfig:
        t = ASK_TIMEOUT_S
        return ServingConfig(
            rest_url=url, model_name=self.model, timeout_s=t, status_timeout_s=t, resolve_ttl_s=0
        )

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def states(self, version: int) -> list[VersionState | None]:
        """The version's state on each replica (None: unreachable or never heard of it)."""
        out: list[VersionState | None] = []
        for client in self.clients:
            try:
                states = {v.version: v for v in client.versions()}
            except ServingError:  # down, or not listening yet
                out.append(None)
            else:
                out.append(states.get(version))
        return out

    def describe(self, version: int) -> str:
        parts = []
        for url, state in zip(self.urls, self.states(version), strict=True):
            text = "not known" if state is None else state.state
            if state is not None and state.error:
                text += f" ({state.error})"
            parts.append(f"{url}: {text}")
        return "; ".join(parts)

    def all_available(self, version: int) -> bool:
        return all(s is not None and s.state == "AVAILABLE" for s in self.states(version))

    def failed(self, version: int) -> str | None:
        """A load error some replica reports for ``version``, if any."""
        for state in self.states(version):
            if state is not None and state.state == "END" and state.error:
                return state.error
        return None

    def all_unloaded(self, version: int) -> bool:
        return all(s is None or s.state == "END" for s in self.states(version))

    def label_version(self, client: ServingClient, label: str) -> int | None:
        """The version a replica serves for ``label`` (None: unknown label, or unreachable)."""
        try:
            return client.resolve(label=label)
        except ServingError:
            return None

    def all_serve_label(self, label: str, version: int) -> bool:
        return all(self.label_version(c, label) == version for c in self.clients)

    def wait(self, what: str, done: Callable[[], bool], fail: Callable[[], str | None]) -> str:
        """Poll until ``done`` (""), or until ``fail`` says why not, or until the timeout."""
        deadline = time.monotonic() + self.timeout_s
        while (now := time.monotonic()) <= deadline:
            if done():
                return ""
            reason = fail()
            if reason:
                return reason
            time.sleep(min(0.2, max(deadline - now, 0.0)))
        return f"not confirmed on every replica within {self.timeout_s:g}s"
