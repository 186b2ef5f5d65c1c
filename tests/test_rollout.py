"""Rollouts across two TF Serving replicas (stand-ins started with docker-compose.yml's flags)
that read one models.config from the shared models volume, with a REST gateway sending 10% of
clients to the canary through a round-robin proxy over both: v1 stable -> v2 canary (the split
observed) -> promote -> rollback -> a worse v3 refused -> retire, while traffic runs and never
sees a failure. Also: a change that is not applied in time is undone byte for byte, and a second
rollout waits for the first's lock."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from fashion_core import locks
from fashion_core.models_config import read
from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import run_cli
from tests.proxy import http_proxy
from tests.servers import compose_standin, labels_config, serve
from tests.tfserving_flags import Mounts, prepare_mounts
from tfserving_standin.harness import StandIn
from tfserving_standin.publishing import publish_version

pytestmark = pytest.mark.slow


class Traffic:
    """Requests from random clients in a background thread until stopped (bounded)."""

    def __init__(self, url: str, limit: int = 3000) -> None:
        self.url, self.limit = url, limit
        self.results: list[tuple[int, str]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set() and len(self.results) < self.limit:
            r = session.get(
                f"{self.url}/api/generar-diseno",
                headers={"X-Client-Id": uuid.uuid4().hex},
                timeout=30,
            )
            self.results.append((r.status_code, r.headers.get("x-model-version", r.text)))

    def finish(self) -> list[tuple[int, str]]:
        self.stop.set()
        self.thread.join(60)
        return self.results


def _publish(smoke_base: Path, base: Path, source: int, version: int, fid: float) -> None:
    staging = base.parent / f"staging-{version}"
    shutil.copytree(smoke_base / str(source), staging)
    card_path = staging / "assets.extra" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["version"], card["quality"]["fid"] = version, fid
    card_path.write_text(json.dumps(card))
    publish_version(staging, base, version)
    shutil.rmtree(staging)


@dataclass
class Deployment:
    mounts: Mounts
    replicas: list[StandIn]
    url: str  # the REST gateway, through a round-robin proxy over both replicas


@pytest.fixture(scope="module")
def deployment(smoke_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("rollout")
    mounts = prepare_mounts(tmp, models_config=labels_config({"stable": 1}))
    _publish(smoke_base, mounts.base_path, 1, 1, fid=50.0)
    replicas = [
        compose_standin(mounts, model_config_file_poll_wait_seconds=1).start(wait=False)
        for _ in range(2)
    ]
    try:
        for replica in replicas:
            replica.wait_ready()
        with http_proxy([r.rest_url for r in replicas]) as proxy:
            s = Settings(
                backend="rest",
                rest_url=proxy.url,
                model_base_path=mounts.base_path,
                canary_percent=10,
                train_on_miss=False,
                poll_interval_s=0.5,
                jobs_dir=tmp / "jobs",
            )
            with serve(create_app(s)) as url:
                yield Deployment(mounts, replicas, url)
    finally:
        for replica in replicas:
            replica.close()


def rollout_cli(d: Deployment, *args: str, timeout: str = "60") -> subprocess.CompletedProcess[str]:
    urls = [f"--rest-url={r.rest_url}" for r in d.replicas]
    return run_cli(
        "export.rollout",
        "--config",
        str(d.mounts.models_config),
        "--model-base-path",
        str(d.mounts.base_path),
        *urls,
        "--timeout",
        timeout,
        *args,
        timeout=180,
    )


def rollout(d: Deployment, *args: str) -> str:
    proc = rollout_cli(d, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def versions_seen(url: str, n: int, prefix: str) -> Counter[str]:
    """Which version each of ``n`` clients (X-Client-Id prefix-i) is served, 8 at a time."""

    def one(i: int) -> str:
        r = requests.get(
            f"{url}/api/generar-diseno", headers={"X-Client-Id": f"{prefix}-{i}"}, timeout=30
        )
        assert r.status_code == 200, r.text
        return str(r.headers["x-model-version"])

    with ThreadPoolExecutor(8) as pool:
        return Counter(pool.map(one, range(n)))


def settled(url: str, stable: str, within_s: float = 10) -> None:
    """The rollout is confirmed on every replica; the gateway follows within its
    GATEWAY_POLL_INTERVAL_S (label resolutions are cached that long)."""
    deadline = time.monotonic() + within_s
    while stable not in versions_seen(url, 1, "probe"):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_rollout_session(deployment: Deployment, smoke_base: Path) -> None:
    d, base = deployment, deployment.mounts.base_path
    traffic = Traffic(d.url)
    try:
        assert versions_seen(d.url, 30, "warm") == Counter({"1": 30})

        _publish(smoke_base, base, 2, 2, fid=40.0)
        out = rollout(d, "canary", "2")
        assert "policy now keeps versions [1, 2]" in out and "canary -> 2" in out
        # the share itself is pinned down on 10,000 client ids in test_gateway_api
        split = versions_seen(d.url, 150, "client")
        assert set(split) == {"1", "2"} and split["2"] < split["1"], split
        one = {versions_seen(d.url, 1, "client-7").most_common(1)[0][0] for _ in range(5)}
        assert len(one) == 1  # one client sees one version
        metrics = requests.get(f"{d.url}/metrics", timeout=10).text
        assert 'route="canary"' in metrics and 'route="stable"' in metrics

        assert "stable -> 2" in rollout(d, "promote")
        settled(d.url, "2")
        assert versions_seen(d.url, 30, "after-promote") == Counter({"2": 30})

        assert "rolled back: stable 2 -> 1" in rollout(d, "rollback")
        settled(d.url, "1")
        after = versions_seen(d.url, 80, "after-rollback")
        assert set(after) == {"1", "2"} and after["1"] > after["2"]  # stable 1, canary still 2

        _publish(smoke_base, base, 1, 3, fid=99.0)
        before = d.mounts.models_config.read_bytes()
        worse = rollout_cli(d, "canary", "3")
        assert worse.returncode == 1 and "worse than stable" in worse.stderr
        assert "Traceback" not in worse.stderr
        assert d.mounts.models_config.read_bytes() == before

        assert "retiring version 3" in rollout(d, "retire", "--keep", "0")
        assert sorted(p.name for p in base.iterdir() if p.name.isdigit()) == ["1", "2"]
        table = rollout(d, "list")
        assert "stable" in table and "canary" in table and "AVAILABLE" in table
    finally:
        results = traffic.finish()
    failures = [r for r in results if r[0] != 200]
    assert len(results) > 20 and not failures, failures[:5]


def test_a_change_not_applied_in_time_is_undone(deployment: Deployment) -> None:
    """--timeout 0: the label move cannot be confirmed on every replica in time (they re-read
    the file every second), so models.config goes back to exactly what it was."""
    d = deployment
    before = d.mounts.models_config.read_bytes()
    stable = read(d.mounts.models_config, "fashion_gan")[1].labels["stable"]
    other = "1" if stable == 2 else "2"  # both are kept loaded after the session
    proc = rollout_cli(d, "stable", other, "--force", timeout="0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "models.config is as it was" in proc.stderr and "Traceback" not in proc.stderr
    assert d.mounts.models_config.read_bytes() == before


def test_a_second_rollout_waits_for_the_first(deployment: Deployment) -> None:
    d = deployment
    fd = locks.try_acquire(d.mounts.models_config.with_name(".models.config.lock"))
    assert fd is not None  # this test plays a rollout in progress
    try:
        proc = rollout_cli(d, "list", timeout="0.5")
    finally:
        os.close(fd)
    assert proc.returncode == 1 and "another rollout holds" in proc.stderr
    assert rollout_cli(d, "list").returncode == 0
