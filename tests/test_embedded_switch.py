"""The embedded backend switches to a newly published version under traffic, without a restart
and without failing a request."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import requests

from gateway.app import create_app
from gateway.settings import Settings
from tests.servers import serve
from tfserving_standin.publishing import publish_version


def test_new_version_is_served_without_dropping_requests(smoke_base: Path, tmp_path: Path) -> None:
    base = tmp_path / "fashion_gan"
    base.mkdir()
    shutil.copytree(smoke_base / "1", base / "1")
    s = Settings(
        model_base_path=base, poll_interval_s=0.2, train_on_miss=False, jobs_dir=tmp_path / "jobs"
    )
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    with serve(create_app(s)) as url:

        def load() -> None:
            session = requests.Session()
            while not stop.is_set() and len(seen) < 3000:
                r = session.get(f"{url}/api/generar-diseno", timeout=30)
                seen.append((r.status_code, r.headers.get("x-model-version", r.text)))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        publish_version(smoke_base / "2", base, 2)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not seen or seen[-1][1] != "2"):
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)

    assert all(status == 200 for status, _ in seen), [x for x in seen if x[0] != 200][:3]
    versions = [v for _, v in seen]
    assert versions[0] == "1" and versions[-1] == "2"
    first_two = versions.index("2")
    assert "1" not in versions[first_two + 8 :]  # after the switch, only requests in flight used 1
