"""The embedded backend gives memory back and does not load on every request: an evicted or a
replaced SavedModel is freed (a weak reference to it dies at the next collection), a version
that failed to load is not loaded again at once, and loads of versions nobody had loaded are
rate-limited. Through the real app and its lifespan, which freezes the start-up heap."""

from __future__ import annotations

import gc
import shutil
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.backends.embedded import EmbeddedBackend
from gateway.backends.loader import Loaded
from gateway.settings import Settings
from tfserving_standin.publishing import publish_version


def _backend(client: TestClient) -> EmbeddedBackend:
    backend = client.app.state.gateway.backend.inner  # type: ignore[attr-defined]
    assert isinstance(backend, EmbeddedBackend)
    return backend


def _root(backend: EmbeddedBackend, version: int) -> weakref.ref[Any]:
    loaded = backend.versions._loaded[version]
    return weakref.ref(loaded.root)


def _freed(ref: weakref.ref[Any]) -> bool:
    gc.collect()
    return ref() is None


@pytest.fixture()
def base(smoke_base: Path, tmp_path: Path) -> Path:
    """Five versions (copies of the two smoke ones: five SavedModels to load)."""
    base = tmp_path / "fashion_gan"
    base.mkdir()
    for v in range(1, 6):
        shutil.copytree(smoke_base / str(1 + v % 2), base / str(v))
    return base


def _client(base: Path, tmp_path: Path, **extra: Any) -> TestClient:
    s = Settings(
        model_base_path=base,
        jobs_dir=tmp_path / "jobs",
        train_on_miss=False,
        poll_interval_s=3600,  # versions are switched by the test, not by the poller
        **extra,
    )
    return TestClient(create_app(s), raise_server_exceptions=False)


def _counting(backend: EmbeddedBackend) -> list[int]:
    """The versions the backend opens from disk, in order (the real opener, counted)."""
    opened: list[int] = []
    real: Callable[[int], Loaded] = backend.versions.open_version

    def counted(version: int) -> Loaded:
        opened.append(version)
        return real(version)

    backend.versions.open_version = counted
    return opened


def test_an_evicted_or_replaced_version_is_freed(base: Path, tmp_path: Path) -> None:
    with _client(base, tmp_path, pin_load_interval_s=0) as client:
        backend = _backend(client)
        assert backend.versions.newest == 5
        sheets = [client.get(f"/api/generar-diseno?seed=1&version={v}") for v in (1, 2, 3)]
        assert [r.status_code for r in sheets] == [200, 200, 200]
        first = _root(backend, 1)
        assert not _freed(first)  # loaded and kept
        assert client.get("/api/generar-diseno?seed=1&version=4").status_code == 200
        assert backend.versions.loaded_versions() == [2, 3, 4, 5]  # 1 was the least recent
        assert _freed(first)

        newest = _root(backend, 5)  # only unpinned traffic has used it
        publish_version(base / "5", base, 6)
        backend.folder.fresh()  # the listing is shared for half a poll interval
        client.portal.call(backend.refresh)  # type: ignore[union-attr]
        assert backend.versions.newest == 6
        assert client.get("/api/generar-diseno?seed=1").headers["x-model-version"] == "6"
        assert _freed(newest)
        assert 5 not in backend.versions.loaded_versions()


def test_a_version_that_failed_to_load_is_remembered(base: Path, tmp_path: Path) -> None:
    with _client(base, tmp_path, pin_load_interval_s=0, failed_load_ttl_s=1.0) as client:
        backend = _backend(client)
        opened = _counting(backend)
        broken = base / "7"  # published (half-copied, say) while the gateway runs
        broken.mkdir()
        (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
        backend.folder.fresh()
        answers = [client.get("/api/generar-diseno?version=7") for _ in range(5)]
        assert [r.status_code for r in answers] == [502] * 5
        assert "failed to load" in answers[-1].json()["error"]
        assert int(answers[-1].headers["retry-after"]) >= 1
        assert opened == [7]  # tried once, then remembered
        time.sleep(1.2)  # past GATEWAY_FAILED_LOAD_TTL_S: tried again (it may have been fixed)
        assert client.get("/api/generar-diseno?version=7").status_code == 502
        assert opened == [7, 7]
        states = client.portal.call(backend.status).versions  # type: ignore[union-attr]
        assert {v.version: v.state for v in states}[7] == "END"


def test_loads_of_versions_nobody_loaded_are_rate_limited(base: Path, tmp_path: Path) -> None:
    with _client(base, tmp_path, pin_load_interval_s=60) as client:
        backend = _backend(client)
        opened = _counting(backend)
        assert client.get("/api/generar-diseno?version=1").status_code == 200
        limited = client.get("/api/generar-diseno?version=2")
        assert limited.status_code == 503 and 1 <= int(limited.headers["retry-after"]) <= 60
        assert "at most once every 60 s" in limited.json()["error"]
        # loaded versions are served as ever, the newest included
        assert client.get("/api/generar-diseno?version=1").status_code == 200
        assert client.get("/api/generar-diseno?version=5").status_code == 200
        assert client.get("/api/generar-diseno").status_code == 200
        assert opened == [1]


@pytest.fixture(autouse=True)
def _collect() -> Iterator[None]:
    yield
    gc.collect()  # the next test starts without this one's models
