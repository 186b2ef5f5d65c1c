"""End to end: a gateway with an empty base path answers 503 and starts exactly one training job
while 20 requests arrive at once; a restarted gateway does not start another; the job publishes
version 1 and the same gateway serves it as a PNG sheet without a restart."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.conftest import ENV, REPO
from tests.standin_harness import free_ports

pytestmark = pytest.mark.slow


def _start_gateway(tmp: Path, classifier: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **ENV,
        "GATEWAY_PORT": str(port),
        "MODEL_BASE_PATH": str(tmp / "models" / "fashion_gan"),
        "GATEWAY_JOBS_DIR": str(tmp / "jobs"),
        "GATEWAY_TRAIN_PROFILE": "smoke",
        "GATEWAY_POLL_INTERVAL_S": "0.5",
        "GATEWAY_RETRY_AFTER_S": "5",
        "FASHION_GAN_CLASSIFIER": str(classifier),
        "GATEWAY_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=REPO, env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("gateway did not start")


def test_train_on_miss_end_to_end(tmp_path: Path, classifier_path: Path) -> None:
    port = free_ports(1)[0]
    url = f"http://127.0.0.1:{port}"
    gateway = _start_gateway(tmp_path, classifier_path, port)
    try:
        with ThreadPoolExecutor(20) as pool:
            answers = list(
                pool.map(lambda _: requests.get(f"{url}/api/generar-diseno", timeout=60), range(20))
            )
        assert [r.status_code for r in answers] == [503] * 20
        assert all(r.headers["retry-after"] == "5" for r in answers)
        bodies = [r.json() for r in answers]
        assert all(b["status_url"] == "/api/training" for b in bodies)
        pids = {b["training"]["pid"] for b in bodies}
        assert len(pids) == 1 and bodies[0]["training"]["profile"] == "smoke"
        assert "training job is running" in bodies[0]["error"]
        metrics = requests.get(f"{url}/metrics", timeout=10).text
        assert "gateway_training_jobs_started_total 1.0" in metrics
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 503

        # a restarted gateway finds the job running and does not start a second one
        gateway.terminate()
        gateway.wait(30)
        gateway = _start_gateway(tmp_path, classifier_path, port)
        again = requests.get(f"{url}/api/generar-diseno", timeout=60)
        if again.status_code == 503:
            assert again.json()["training"]["pid"] in pids

        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            r = requests.get(f"{url}/api/generar-diseno", timeout=60)
            if r.status_code == 200:
                break
            assert r.status_code == 503, r.text
            time.sleep(1)
        assert r.status_code == 200, requests.get(f"{url}/api/training", timeout=10).text
        assert r.headers["x-model-version"] == "1"
        img = Image.open(io.BytesIO(r.content))
        assert img.format == "PNG" and img.size == (84, 84)
        # the version is served as soon as it is renamed into place; the job's process exits
        # (and records its outcome) a moment later
        deadline = time.monotonic() + 60
        while True:
            job = requests.get(f"{url}/api/training", timeout=10).json()["training"]
            if job["state"] != "running" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert job["state"] == "succeeded" and job["version"] == 1 and job["pid"] in pids
        assert job["epoch"] == job["epochs"] == 2 and job["progress"] == 1.0
        assert any("Publicada la versión 1" in line for line in job["log_tail"])
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
    finally:
        gateway.terminate()
        gateway.wait(30)
