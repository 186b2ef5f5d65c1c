"""Train-on-miss fails closed: a base path the gateway cannot read is an error (503, logged,
counted for an alert), never "no versions", even with TF Serving unreachable (before, that
pair started a training job); the folder is listed off the event loop with a deadline, so a
hung mount cannot stall /healthz."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from fashion_core.versions import BasePathError, list_versions, scan_versions
from gateway.app import create_app
from gateway.disk import ModelFolder
from gateway.settings import Settings
from tests.servers import serve


def test_scan_tells_a_fresh_volume_from_one_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    assert scan_versions(tmp_path / "models" / "fashion_gan") == []  # nothing published yet
    with pytest.raises(BasePathError, match="is the volume mounted"):
        scan_versions(tmp_path / "not-mounted" / "fashion_gan")
    (tmp_path / "file").write_text("")
    with pytest.raises(BasePathError, match="cannot be read"):
        scan_versions(tmp_path / "file")
    # tools that only report keep the old answer
    assert list_versions(tmp_path / "not-mounted" / "fashion_gan") == []


@pytest.fixture(params=["not-mounted", "a-file"])
def unreadable(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    if request.param == "a-file":
        (tmp_path / "fashion_gan").write_text("not a folder")
        return tmp_path / "fashion_gan"
    return tmp_path / "not-mounted" / "fashion_gan"


@pytest.fixture()
def gateway(unreadable: Path, tmp_path: Path) -> Iterator[str]:
    # TF Serving unreachable and nothing readable on disk: the pair that used to train
    s = Settings(
        backend="rest",
        rest_url="http://127.0.0.1:9",
        model_base_path=unreadable,
        jobs_dir=tmp_path / "jobs",
        train_on_miss=True,
        retry_after_s=7,
    )
    with serve(create_app(s)) as url:
        yield url


def test_an_unreadable_base_path_is_a_503_and_trains_nothing(
    gateway: str, unreadable: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    r = requests.get(f"{gateway}/api/generar-diseno", timeout=30)
    assert r.status_code == 503 and r.headers["retry-after"] == "7", r.text
    assert "cannot read its model folder" in r.json()["error"] and "training" not in r.json()
    assert requests.get(f"{gateway}/api/generar-diseno", timeout=30).status_code == 503
    assert not (tmp_path / "jobs" / "job.json").exists()  # no job, not even at start-up
    ready = requests.get(f"{gateway}/readyz", timeout=10)  # the gateway itself answers
    assert ready.status_code == 200 and ready.json()["model_folder_readable"] is False
    assert ready.json()["upstream"]["reachable"] is False
    metrics = requests.get(f"{gateway}/metrics", timeout=10).text
    assert "gateway_base_path_readable 0.0" in metrics
    errors = [ln for ln in metrics.splitlines() if ln.startswith("gateway_base_path_errors_total")]
    assert float(errors[0].split()[-1]) >= 1
    assert "gateway_training_jobs_started_total 0.0" in metrics
    records = caplog.get_records("setup") + caplog.records  # it was found at start-up
    logged = [r.getMessage() for r in records if "model folder cannot be read" in r.getMessage()]
    # once per outage and folder, not once per request: the first model's, and the second
    # model's beside it when that one is unreadable too (not mounted: the same missing parent)
    cond = unreadable.parent / "fashion_gan_cond"
    assert sum(f" {unreadable} " in m for m in logged) == 1, logged
    assert sum(f" {cond} " in m for m in logged) == (0 if cond.parent.is_dir() else 1)
    assert len(logged) == (1 if cond.parent.is_dir() else 2), logged


def test_a_hung_listing_passes_its_deadline_and_never_blocks_the_event_loop(
    tmp_path: Path,
) -> None:
    """A listing that never returns (a hung NFS mount): callers get BasePathError at the
    deadline, and the event loop runs on meanwhile."""
    release = threading.Event()

    def hung(base: Path) -> list[int]:
        release.wait(30)
        return []

    async def run() -> int:
        folder = ModelFolder(tmp_path, timeout_s=0.3, ttl_s=0, scan=hung)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        try:
            with pytest.raises(BasePathError, match=r"did not answer within 0\.3s"):
                await folder.versions()
        finally:
            ticker.cancel()
            release.set()
            folder.close()
        assert folder.readable is False
        return ticks

    assert asyncio.run(run()) >= 5  # the loop kept running while the listing hung


def test_the_python_api_fails_closed_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cargar_o_entrenar() trains when nothing is published; a folder it cannot read is an
    error instead (nothing is trained in its place)."""
    from fashion_gan import ModelError, cargar_o_entrenar

    monkeypatch.setenv("GATEWAY_JOBS_DIR", str(tmp_path / "jobs"))
    with pytest.raises(ModelError, match="is the volume mounted"):
        cargar_o_entrenar(base_path=tmp_path / "not-mounted" / "fashion_gan")
    assert not (tmp_path / "jobs").exists()
