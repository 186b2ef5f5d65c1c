"""A fresh deployment serves its first design with no manual step: an empty models volume, a
TF Serving started with docker-compose.yml's flags that therefore keeps its ports closed, and
REST, gRPC and embedded gateways in front of it. The gateways start one training job between
them (smoke profile), answer 503 with Retry-After meanwhile, and once the job has published
version 1, TF Serving loads it, opens its ports, and every gateway serves sheets. The Python
API joins that job rather than training again, a GatewayClient waits it out through the
gateways' Retry-After, and the gallery page, opened meanwhile in headless Chromium, shows the
job's progress and turns into designs once version 1 is published."""

from __future__ import annotations

import asyncio
import io
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from fashion_core.versions import list_versions
from fashion_gan import (
    GatewayClient,
    GatewayError,
    Generador,
    cargar_o_entrenar,
    generar_muestra_ropa,
)
from gateway.app import create_app
from gateway.settings import Settings
from tests.browser import MISSING, image_bytes, open_page, page_state, wait_for
from tests.conftest import REPO
from tests.servers import compose_standin, serve
from tests.tfserving_flags import prepare_mounts

pytestmark = pytest.mark.slow


def _get(url: str) -> requests.Response:
    return requests.get(f"{url}/api/generar-diseno", timeout=60)


def test_fresh_deployment_trains_then_serves(
    tmp_path: Path,
    data_dir: Path,
    classifier_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chromium_or_none: Any,
) -> None:
    # what the training job reads: the local data (tests never download) and the evaluator
    monkeypatch.setenv("FASHION_MNIST_DIR", str(data_dir))
    monkeypatch.setenv("FASHION_GAN_CLASSIFIER", str(classifier_path))
    mounts = prepare_mounts(tmp_path)  # an empty base path and the starting models.config
    standin = compose_standin(mounts, model_config_file_poll_wait_seconds=1)
    standin.start(wait=False)  # as TF Serving on an empty volume: waiting, ports closed
    common = {
        "model_base_path": mounts.base_path,
        "jobs_dir": tmp_path / "jobs",
        "train_profile": "smoke",
        "retry_after_s": 5,
        "poll_interval_s": 0.5,
    }
    settings = {
        "rest": Settings(backend="rest", rest_url=standin.rest_url, **common),  # type: ignore[arg-type]
        "grpc": Settings(backend="grpc", grpc_target=standin.grpc_target, **common),  # type: ignore[arg-type]
        "embedded": Settings(backend="embedded", **common),  # type: ignore[arg-type]
    }
    contexts = {name: serve(create_app(s)) for name, s in settings.items()}
    try:
        urls = {name: ctx.__enter__() for name, ctx in contexts.items()}
        with ThreadPoolExecutor(21) as pool:
            answers = list(pool.map(_get, [u for u in urls.values() for _ in range(7)]))
        assert [r.status_code for r in answers] == [503] * 21, answers[0].text
        assert all(r.headers["retry-after"] == "5" for r in answers)
        bodies = [r.json() for r in answers]
        assert all(b["status_url"] == "/api/training" for b in bodies)
        assert {b["training"]["state"] for b in bodies} == {"running"}
        pids = {b["training"]["pid"] for b in bodies}
        assert len(pids) == 1 and bodies[0]["training"]["profile"] == "smoke"  # one job
        started = sum(
            _metric(
                requests.get(f"{u}/metrics", timeout=10).text, "gateway_training_jobs_started_total"
            )
            for u in urls.values()
        )
        assert started == 1
        # ready (it answers, with 503 and the job's progress), TF Serving not yet
        ready = requests.get(f"{urls['rest']}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["upstream"]["ready"] is False

        # the gallery, opened now, shows the job's progress (and its designs once published)
        page = chromium_or_none
        if page is None:
            warnings.warn(MISSING, stacklevel=1)
        else:
            open_page(page, urls["embedded"] + "/?seed=77", state="training")
            assert page.find_element("id", "training").is_displayed()
            wait_for(
                lambda: "running (smoke profile)" in page.find_element("id", "training-text").text,
                what="the job's state on the page",
            )

        # the Python API joins the running job (same jobs folder) instead of starting another,
        # called from a coroutine (a notebook or an async app: an event loop is running), and
        # a GatewayClient rides out the 503s by honouring their Retry-After
        monkeypatch.setenv("GATEWAY_JOBS_DIR", str(tmp_path / "jobs"))
        monkeypatch.setenv("MODEL_BASE_PATH", str(mounts.base_path))
        api_log: list[str] = []

        async def in_a_running_loop() -> Generador:
            asyncio.get_running_loop()  # there is one
            return cargar_o_entrenar(profile="smoke", log=api_log.append)

        waiting = ThreadPoolExecutor(2)
        loaded = waiting.submit(asyncio.run, in_a_running_loop())
        client = GatewayClient(urls["grpc"], retries=100, max_wait_s=300)
        patient = waiting.submit(client.sheet, seed=11)
        with pytest.raises(GatewayError) as impatient:
            GatewayClient(urls["rest"], retries=0).sheet(seed=11)
        assert impatient.value.status == 503 and impatient.value.retry_after == 5

        # a gateway started now (a restart) finds the running job instead of starting another
        with serve(create_app(settings["rest"])) as again:
            assert _get(again).json()["training"]["pid"] in pids

        # the job publishes version 1; TF Serving loads it and only then opens its ports
        standin.wait_ready(timeout_s=240)
        assert list_versions(mounts.base_path) == [1]
        for name, url in urls.items():
            deadline = time.monotonic() + 60
            while (r := _get(url)).status_code != 200 and time.monotonic() < deadline:
                assert r.status_code == 503, (name, r.text)
                time.sleep(0.5)
            assert r.status_code == 200, (name, r.text)
            assert r.headers["x-model-version"] == "1"
            assert Image.open(io.BytesIO(r.content)).size == (84, 84)
            assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
        deadline = time.monotonic() + 60
        while (job := _training(urls["rest"]))["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert job["state"] == "succeeded" and job["version"] == 1 and job["pid"] in pids
        assert job["epoch"] == job["epochs"] == 2 and job["progress"] == 1.0
        assert job["phase"] == "done" and job["images_per_s"] > 0

        if page is not None:  # the progress view turned into the first designs by itself
            wait_for(lambda: page_state(page) == "ready", timeout_s=120, what="designs")
            assert not page.find_element("id", "training").is_displayed()
            shown = page.find_element("id", "sheet")
            assert (shown.get_attribute("data-seed"), shown.get_attribute("data-version")) == (
                "77",
                "1",
            )
            direct = requests.get(
                f"{urls['embedded']}/api/generar-diseno?seed=77&scale=4", timeout=30
            )
            assert image_bytes(page, "sheet") == direct.content

        generator, sheet = loaded.result(timeout=120), patient.result(timeout=120)
        waiting.shutdown()
        assert "esperando al entrenamiento en curso" in api_log[0], api_log
        assert generator.version == 1 and sheet.version == 1 and sheet.seed == 11
        assert generar_muestra_ropa(seed=11).getvalue() == sheet.data  # the gateway's bytes
        assert GatewayClient(urls["rest"]).training()["pid"] in pids  # still the one job
    finally:
        for ctx in contexts.values():
            ctx.__exit__(None, None, None)
        standin.close()


def _training(url: str) -> dict[str, Any]:
    job: dict[str, Any] = requests.get(f"{url}/api/training", timeout=10).json()["training"]
    return job


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in metrics")


def test_a_fresh_clone_has_the_default_base_paths_parent() -> None:
    """The gateway fails closed on a base path whose parent is missing too (a volume that is
    not mounted): a fresh clone's default models/fashion_gan must read as a fresh volume, or
    `make run` would answer 503 for ever instead of training."""
    import subprocess

    parent = Settings().model_base_path.parent
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", str(parent / ".gitkeep")],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert tracked.returncode == 0, f"{parent}/.gitkeep is not in git: {tracked.stderr}"
