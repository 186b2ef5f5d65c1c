"""A rollout session against the TF Serving stand-in, with a REST gateway sending 10% of
clients to the canary: v1 stable -> v2 canary (split observed) -> promote -> rollback ->
a worse v3 refused -> retire, while background traffic runs and never sees a failure."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.app import create_app
from gateway.settings import Settings
from tests.conftest import run_cli
from tests.servers import serve, write_models_config
from tests.standin_harness import StandIn, publish_version

pytestmark = pytest.mark.slow


class Traffic:
    """Requests from random clients in a background thread until stopped (bounded)."""

    def __init__(self, url: str, limit: int = 5000) -> None:
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


@pytest.fixture()
def deployment(smoke_base: Path, tmp_path: Path) -> Iterator[tuple[Path, Path, StandIn, str]]:
    base = tmp_path / "models" / "fashion_gan"
    base.mkdir(parents=True)
    _publish(smoke_base, base, 1, 1, fid=50.0)
    config = write_models_config(tmp_path / "models.config", base, {"stable": 1})
    flags = [
        "--model_config_file_poll_wait_seconds=1",
        "--file_system_poll_wait_seconds=1",
        "--allow_version_labels_for_unavailable_models=true",
    ]
    with StandIn(config_file=config, extra_flags=flags) as tfs:
        s = Settings(
            backend="rest",
            rest_url=tfs.rest_url,
            model_base_path=base,
            canary_percent=10,
            train_on_miss=False,
            poll_interval_s=0.5,
            jobs_dir=tmp_path / "jobs",
        )
        with serve(create_app(s)) as url:
            yield base, config, tfs, url


def test_rollout_session(deployment: tuple[Path, Path, StandIn, str], smoke_base: Path) -> None:
    base, config, tfs, url = deployment

    def rollout_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(
            "export.rollout",
            "--config",
            str(config),
            "--model-base-path",
            str(base),
            "--rest-url",
            tfs.rest_url,
            "--grpc-target",
            tfs.grpc_target,
            "--timeout",
            "60",
            *args,
            timeout=180,
        )

    def rollout(*args: str) -> str:
        proc = rollout_cli(*args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def versions_seen(n: int, prefix: str) -> Counter[str]:
        seen: Counter[str] = Counter()
        for i in range(n):
            r = requests.get(
                f"{url}/api/generar-diseno", headers={"X-Client-Id": f"{prefix}-{i}"}, timeout=30
            )
            assert r.status_code == 200, r.text
            seen[r.headers["x-model-version"]] += 1
        return seen

    traffic = Traffic(url)
    try:
        assert versions_seen(50, "warm") == Counter({"1": 50})

        _publish(smoke_base, base, 2, 2, fid=40.0)
        out = rollout("canary", "2")
        assert "canary -> 2" in out
        split = versions_seen(1000, "client")
        assert set(split) == {"1", "2"}
        assert 0.07 <= split["2"] / 1000 <= 0.13, split  # 10% of clients, within tolerance
        one = {
            requests.get(
                f"{url}/api/generar-diseno", headers={"X-Client-Id": "client-7"}, timeout=30
            ).headers["x-model-version"]
            for _ in range(5)
        }
        assert len(one) == 1  # one client sees one version
        metrics = requests.get(f"{url}/metrics", timeout=10).text
        assert 'route="canary"' in metrics and 'route="stable"' in metrics

        assert "stable -> 2" in rollout("promote")
        assert versions_seen(100, "after-promote") == Counter({"2": 100})

        assert "rolled back: stable 2 -> 1" in rollout("rollback")
        after = versions_seen(300, "after-rollback")
        assert set(after) == {"1", "2"} and after["1"] > after["2"]  # stable 1, canary still 2

        _publish(smoke_base, base, 1, 3, fid=99.0)
        worse = rollout_cli("canary", "3")
        assert worse.returncode == 1 and "worse than stable" in worse.stderr
        assert "Traceback" not in worse.stderr

        assert "retiring version 3" in rollout("retire", "--keep", "0")
        assert sorted(p.name for p in base.iterdir() if p.name.isdigit()) == ["1", "2"]
        table = rollout("list")
        assert "stable" in table and "canary" in table and "AVAILABLE" in table
    finally:
        results = traffic.finish()
    failures = [r for r in results if r[0] != 200]
    assert len(results) > 20 and not failures, failures[:5]
