"""Every backend through a real gateway on a loopback port, against a real model server:
the embedded SavedModel, and TF Serving over REST and gRPC (the stand-in, or a real TF Serving
when TFSERVING_REST_URL / TFSERVING_GRPC_TARGET are set; see tests/servers.py)."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from gateway.app import create_app
from tests.servers import BACKENDS, ModelServer, serve, settings_for


def pixels(resp: requests.Response) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(resp.content)))


@pytest.mark.parametrize("query", ["seed=11", "seed=11&version=1", "seed=12&label=canary"])
def test_seeded_sheets_are_identical_across_backends(gateways: dict[str, str], query: str) -> None:
    answers = {
        b: requests.get(f"{u}/api/generar-diseno?{query}", timeout=60) for b, u in gateways.items()
    }
    versions = {r.headers["x-model-version"] for r in answers.values()}
    assert len(versions) == 1
    ref = pixels(answers["embedded"])
    assert ref.shape == (84, 84) and ref.std() > 0
    for backend in ("rest", "grpc"):
        np.testing.assert_array_equal(pixels(answers[backend]), ref, err_msg=backend)
        assert answers[backend].content == answers["embedded"].content


@pytest.mark.parametrize("backend", BACKENDS)
def test_pins_pass_through(gateways: dict[str, str], backend: str) -> None:
    url = f"{gateways[backend]}/api/generar-diseno"
    for query, version in (
        ("", "2"),
        ("version=1", "1"),
        ("label=stable", "1"),
        ("label=canary", "2"),
        ("version=2", "2"),
    ):
        r = requests.get(f"{url}?seed=3&{query}", timeout=60)
        assert r.status_code == 200 and r.headers["x-model-version"] == version, (query, r.text)
    missing = requests.get(f"{url}?version=99", timeout=60)
    assert missing.status_code == 404 and "version 99" in missing.json()["error"].lower()
    unknown = requests.get(f"{url}?label=nope", timeout=60)
    assert unknown.status_code == 400 and "label 'nope'" in unknown.json()["error"].lower()


@pytest.mark.parametrize("backend", BACKENDS)
def test_post_latents(gateways: dict[str, str], backend: str) -> None:
    z = np.random.default_rng(0).standard_normal((4, 100)).round(3).tolist()
    r = requests.post(f"{gateways[backend]}/api/generar-diseno", json={"latents": z}, timeout=60)
    assert pixels(r).shape == (56, 56)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ready_reads_the_status_body(gateways: dict[str, str], backend: str) -> None:
    r = requests.get(f"{gateways[backend]}/readyz", timeout=30)
    assert r.status_code == 200 and r.json()["ready"] is True
    assert r.json()["upstream"]["ready"] is True and set(r.json()["upstream"]["available"]) >= {
        1,
        2,
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_requests_share_model_calls(gateways: dict[str, str], backend: str) -> None:
    url = gateways[backend]
    with ThreadPoolExecutor(24) as pool:
        answers = list(
            pool.map(lambda _: requests.get(f"{url}/api/generar-diseno", timeout=120), range(48))
        )
    assert all(pixels(r).shape == (84, 84) for r in answers)
    assert len({r.content for r in answers}) == 48
    metrics = requests.get(f"{url}/metrics", timeout=30).text
    count = _metric(metrics, "gateway_batch_images_count")
    total = _metric(metrics, "gateway_batch_images_sum")
    assert total / count > 9, "no request shared a model call"  # more than one sheet per call


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in metrics")


# --- upstream faults: the stand-in injects them (a real TF Serving can't be told to) --------


@pytest.fixture()
def faulty(server: ModelServer, smoke_base: Path) -> Iterator[tuple[ModelServer, dict[str, str]]]:
    if server.standin is None:
        pytest.skip("fault injection needs the stand-in")
    contexts = [
        serve(create_app(settings_for(b, server, smoke_base, upstream_timeout_s=0.5)))
        for b in ("rest", "grpc")
    ]
    urls = {b: c.__enter__() for b, c in zip(("rest", "grpc"), contexts, strict=True)}
    try:
        yield server, urls
    finally:
        server.standin.clear_faults()
        for c in contexts:
            c.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"delay_ms": 2000}, 504),
        ({"error": "UNAVAILABLE:overloaded"}, 503),
        ({"error": "INTERNAL:boom"}, 502),
    ],
)
def test_upstream_faults_become_502_503_504(
    faulty: tuple[ModelServer, dict[str, str]], fault: dict[str, object], status: int
) -> None:
    server, urls = faulty
    assert server.standin is not None
    for backend, url in urls.items():
        _recovered(url)
        server.standin.set_faults(**fault)  # type: ignore[arg-type]
        r = requests.get(f"{url}/api/generar-diseno?seed=1", timeout=30)
        server.standin.clear_faults()
        assert r.status_code == status, (backend, r.text)
        assert r.json()["error"].endswith(".") and "Traceback" not in r.text
        if status == 503:
            assert r.headers.get("retry-after")
        _recovered(url)  # the same gateway serves again once the server does: no restart


def _recovered(url: str, within_s: float = 15) -> None:
    """Wait until ``url`` draws a sheet again: a slow model's batches that were already
    running finish first (TF Serving cannot cancel them either)."""
    deadline = time.monotonic() + within_s
    while (r := requests.get(f"{url}/api/generar-diseno?seed=1", timeout=30)).status_code != 200:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.2)


def test_unreachable_server_is_503(smoke_base: Path) -> None:
    dead = ModelServer("http://127.0.0.1:9", "127.0.0.1:9", None)
    for backend in ("rest", "grpc"):
        with serve(
            create_app(settings_for(backend, dead, smoke_base, upstream_timeout_s=2))
        ) as url:
            r = requests.get(f"{url}/api/generar-diseno", timeout=30)
            assert r.status_code == 503 and r.headers.get("retry-after"), (backend, r.text)
            ready = requests.get(f"{url}/readyz", timeout=30)  # the gateway answers: ready
            assert ready.status_code == 200 and ready.json()["upstream"]["reachable"] is False


def test_grpc_gateway_never_loads_tensorflow() -> None:
    """The gRPC backend takes TF Serving's message classes from disk, not by loading TensorFlow
    (gateway/backends/protos.py), and a later real import of TensorFlow still works."""
    import subprocess
    import sys

    from tests.conftest import ENV, REPO

    code = (
        "import sys\n"
        "from gateway.app import create_app\n"
        "from gateway.settings import Settings\n"
        "from fashion_gan.tfserving.grpc import to_tensor, from_tensor\n"
        "import numpy as np\n"
        "create_app(Settings(backend='grpc'))\n"
        "z = np.arange(6, dtype=np.float32).reshape(2, 3)\n"
        "assert (from_tensor(to_tensor(z)) == z).all()\n"
        "assert not [m for m in sys.modules if m.startswith(('tensorflow.python', 'keras'))]\n"
        "import tensorflow as tf\n"
        "assert (tf.make_ndarray(to_tensor(z)) == z).all()\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_training_status_is_shared_and_never_waits_in_the_default_pool(
    server: ModelServer, smoke_base: Path
) -> None:
    """40 concurrent GET /api/training while the trainer's job runner accepts and never
    answers: they share one call, an async one that no thread waits on, and a REST sheet (its
    answer is parsed in the default thread pool) is drawn meanwhile. Before, each call blocked
    a thread of that pool (6 on 2 cores) until its timeout, and the sheet waited behind them."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    accepted: list[socket.socket] = []
    release = threading.Event()

    def hold() -> None:
        while not release.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])

    holder = threading.Thread(target=hold)
    holder.start()
    trainer = f"http://127.0.0.1:{listener.getsockname()[1]}"
    settings = settings_for("rest", server, smoke_base, trainer_url=trainer, status_timeout_s=20)
    try:
        with serve(create_app(settings)) as url, ThreadPoolExecutor(40) as pool:
            job = f"{url}/api/training"
            calls = [pool.submit(requests.get, job, timeout=60) for _ in range(40)]
            deadline = time.monotonic() + 10
            while not accepted:
                assert time.monotonic() < deadline, "the trainer was never asked"
                time.sleep(0.05)
            time.sleep(0.3)  # every call has arrived and waits
            sheet = requests.get(f"{url}/api/generar-diseno", timeout=30)
            waiting = sum(not c.done() for c in calls)
            release.set()
            for conn in accepted:
                conn.close()
            answers = [c.result() for c in calls]
    finally:
        release.set()
        holder.join(10)
        listener.close()
    assert sheet.status_code == 200 and waiting == 40
    assert len(accepted) == 1  # one call for all forty
    assert {a.status_code for a in answers} == {503}
    assert all("trainer" in a.json()["error"] for a in answers)
