"""The gateway in front of real TF Serving behaviour: a stand-in started with
docker-compose.yml's exact flags (batching on, serving_config/batching.config: max_batch_size 72,
no splitting), REST and gRPC gateways in front of it through recording proxies that count the
rows of every predict. Big sheets and heavy load stay within the limit, seeded sheets stay
byte-identical although the server merges and pads batches, and a replica that has not loaded
the version another replica resolved makes a 503, never a training job."""

from __future__ import annotations

import asyncio
import io
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from PIL import Image

from gateway.app import create_app
from gateway.settings import Settings
from tests.proxy import GrpcProxy, HttpProxy, grpc_proxy, http_proxy
from tests.rawhttp import connect, get, read_answer
from tests.servers import compose_standin, copy_versions, serve
from tests.tfserving_flags import prepare_mounts
from tfserving_standin.harness import StandIn

MAX_BATCH = 72  # serving_config/batching.config (test_serving_config checks the gateway agrees)


@dataclass
class Deployment:
    standin: StandIn
    replica_b: StandIn  # has only version 1
    proxies: dict[str, HttpProxy | GrpcProxy]
    urls: dict[str, str]  # gateway name -> URL
    tmp: Path


@pytest.fixture(scope="module")
def deployment(smoke_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("upstream")
    mounts = prepare_mounts(tmp)
    copy_versions(smoke_base, mounts.base_path)
    behind = prepare_mounts(tmp / "behind")  # a replica that has not loaded version 2 yet
    copy_versions(smoke_base, behind.base_path, (1,))
    replica_b = compose_standin(behind, model_config_file_poll_wait_seconds=1).start(wait=False)

    def metadata_to_a_predicts_to_b(method: str, path: str) -> int:
        return 1 if path.endswith(":predict") else 0

    with (
        compose_standin(mounts, model_config_file_poll_wait_seconds=1) as standin,
        http_proxy([standin.rest_url]) as rest,
        grpc_proxy([standin.grpc_target]) as grpc_,
        http_proxy([standin.rest_url]) as rest_faulty,
        grpc_proxy([standin.grpc_target]) as grpc_faulty,
        http_proxy([standin.rest_url]) as rest_guarded,
    ):
        replica_b.wait_ready()
        with http_proxy(
            [standin.rest_url, replica_b.rest_url], router=metadata_to_a_predicts_to_b
        ) as split_brain:
            base = {"model_base_path": mounts.base_path, "jobs_dir": tmp / "jobs"}
            # admission control is tested in test_admission; here every request must be served
            common: dict[str, Any] = {**base, "train_on_miss": False}
            common |= {"max_queue_wait_s": 30, "queue_timeout_s": 60}
            faults: dict[str, Any] = {**common, "upstream_timeout_s": 1.0}  # a short deadline
            apps = {
                "rest": Settings(backend="rest", rest_url=rest.url, **common),
                "grpc": Settings(backend="grpc", grpc_target=grpc_.target, **common),
                "embedded": Settings(
                    backend="embedded",
                    **{**common, "model_base_path": smoke_base},
                    model_config_file=mounts.models_config,
                ),
                "rest_faulty": Settings(backend="rest", rest_url=rest_faulty.url, **faults),
                # the default admission control: refusals when the model server slows down
                "rest_guarded": Settings(
                    backend="rest",
                    rest_url=rest_guarded.url,
                    **{**common, "max_queue_wait_s": 1, "queue_timeout_s": 3},
                    status_timeout_s=10,
                ),
                "grpc_faulty": Settings(backend="grpc", grpc_target=grpc_faulty.target, **faults),
                # train-on-miss is on: these must answer 503, never train (base has versions)
                "lagging": Settings(
                    backend="rest",
                    rest_url=split_brain.url,
                    model_base_path=mounts.base_path,
                    jobs_dir=tmp / "lagging-jobs",
                    retry_after_s=7,
                ),
                "b": Settings(
                    backend="rest",
                    rest_url=replica_b.rest_url,
                    model_base_path=behind.base_path,
                    jobs_dir=tmp / "b-jobs",
                    poll_interval_s=0.2,
                ),
            }
            contexts = {name: serve(create_app(s)) for name, s in apps.items()}
            urls = {name: ctx.__enter__() for name, ctx in contexts.items()}
            proxies: dict[str, HttpProxy | GrpcProxy] = {"rest": rest, "grpc": grpc_}
            proxies.update(rest_faulty=rest_faulty, grpc_faulty=grpc_faulty)
            proxies.update(rest_guarded=rest_guarded)
            try:
                yield Deployment(standin, replica_b, proxies, urls, tmp)
            finally:
                for ctx in contexts.values():
                    ctx.__exit__(None, None, None)
                replica_b.close()


def _sheet(url: str, query: str) -> requests.Response:
    r = requests.get(f"{url}/api/generar-diseno?{query}", timeout=120)
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("backend", ["rest", "grpc"])
def test_big_sheets_and_load_stay_within_max_batch_size(
    deployment: Deployment, backend: str
) -> None:
    url = deployment.urls[backend]
    proxy = deployment.proxies[backend]
    proxy.predict_rows.clear()
    nine = _sheet(url, "rows=9&cols=9&seed=3")
    assert Image.open(io.BytesIO(nine.content)).size == (252, 252)
    sixteen = _sheet(url, "rows=16&cols=16")
    assert Image.open(io.BytesIO(sixteen.content)).size == (448, 448)
    # 81 rows -> 72 + 9; 256 rows -> 72 + 72 + 72 + 40, sent concurrently
    assert sorted(proxy.predict_rows) == [9, 40, 72, 72, 72, 72]
    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(lambda _: _sheet(url, ""), range(64)))
    assert len({a.content for a in answers}) == 64
    assert max(proxy.predict_rows) <= MAX_BATCH, sorted(proxy.predict_rows)[-5:]
    assert min(proxy.predict_rows) >= 9  # every call is at least one whole sheet


def test_seeded_sheets_are_byte_identical_under_server_batching(deployment: Deployment) -> None:
    """With load running, TF Serving (the stand-in with compose's batching) merges a seeded
    request with others and pads the batch; its sheet is still the embedded model's, byte for
    byte (fashion_gan/tfserving/chunking.py explains why)."""
    stop = threading.Event()

    def load() -> None:
        session = requests.Session()
        while not stop.is_set():
            for backend in ("rest", "grpc"):
                session.get(f"{deployment.urls[backend]}/api/generar-diseno", timeout=60)

    before = len(deployment.standin.stderr_text())
    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    try:
        for query in ("seed=11", "seed=12&rows=9&cols=9", "seed=13&rows=1&cols=2&label=canary"):
            reference = _sheet(deployment.urls["embedded"], query)
            for backend in ("rest", "grpc"):
                for _ in range(3):
                    answer = _sheet(deployment.urls[backend], query)
                    assert answer.headers["x-model-version"] == reference.headers["x-model-version"]
                    assert answer.content == reference.content, (backend, query)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    log = deployment.standin.stderr_text()[before:]
    batches = re.findall(r"ran a batch of (\d+) rows \(padded to (\d+)\)", log)
    # the server did merge requests and pad batches while the seeded sheets were drawn
    assert any(int(rows) > 9 for rows, _ in batches)
    assert any(int(padded) > int(rows) for rows, padded in batches)


def test_a_replica_without_the_resolved_version_is_a_503_not_a_training_job(
    deployment: Deployment,
) -> None:
    """Behind a Service, the REST backend may resolve "newest" on one replica (version 2) and
    predict on another that has not loaded it: it resolves and tries once more, then answers
    503 with Retry-After. The base path has versions, so nothing is trained (train-on-miss is
    on for this gateway)."""
    url = deployment.urls["lagging"]
    r = requests.get(f"{url}/api/generar-diseno?seed=4", timeout=60)
    assert r.status_code == 503 and r.headers["retry-after"] == "7", r.text
    assert "not loaded on every TF Serving replica" in r.json()["error"]
    assert "training" not in r.json()
    assert _sheet(url, "seed=4&version=1").headers["x-model-version"] == "1"  # B has 1
    assert not (deployment.tmp / "lagging-jobs" / "job.json").exists()
    metrics = requests.get(f"{url}/metrics", timeout=10).text
    assert "gateway_training_jobs_started_total 0.0" in metrics


@pytest.mark.parametrize(
    ("backend", "fault", "status"),
    [
        ("rest", "cut", 502),  # the connection closed mid-body
        ("rest", "garbage", 502),  # half a JSON document
        ("rest", "short", 502),  # one image fewer than latents sent
        ("rest", "slow:1500", 504),  # past GATEWAY_UPSTREAM_TIMEOUT_S (1 s here)
        ("grpc", "cut", 503),  # UNAVAILABLE: connection reset
        ("grpc", "short", 502),
        ("grpc", "slow:1500", 504),
    ],
)
def test_upstream_faults_are_502_503_504_then_recover(
    deployment: Deployment, backend: str, fault: str, status: int
) -> None:
    url, proxy = deployment.urls[f"{backend}_faulty"], deployment.proxies[f"{backend}_faulty"]
    _sheet(url, "seed=2")
    proxy.fault = fault
    try:
        r = requests.get(f"{url}/api/generar-diseno?seed=2", timeout=60)
    finally:
        proxy.fault = None
    assert r.status_code == status, r.text
    message = r.json()["error"]
    assert message.endswith(".") and "\n" not in message and "Traceback" not in r.text
    if status != 504:
        assert r.headers["retry-after"] == "2"  # GATEWAY_RETRY_BUSY_S
    deadline = time.monotonic() + 15  # the same gateway serves again: no restart
    while (
        again := requests.get(f"{url}/api/generar-diseno?seed=2", timeout=60)
    ).status_code != 200:
        assert time.monotonic() < deadline, again.text
        time.sleep(0.2)
    metrics = requests.get(f"{url}/metrics", timeout=10).text
    assert f'gateway_upstream_errors_total{{backend="{backend}",status="{status}"}}' in metrics


def test_label_and_model_name_misses_are_404_and_train_nothing(deployment: Deployment) -> None:
    """Replica B's models.config labels canary -> 2, a version it does not have: pinning that
    label is the caller's 404. A gateway asking for a model TF Serving does not know (a wrong
    MODEL_NAME) answers 404 too. Neither starts a training job (train-on-miss is on)."""
    url = deployment.urls["b"]
    r = requests.get(f"{url}/api/generar-diseno?seed=1&label=canary", timeout=30)
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "Label 'canary' names a version the model server has not loaded."
    wrong = Settings(
        backend="rest",
        rest_url=deployment.replica_b.rest_url,
        model_name="fashion_gna",
        model_base_path=deployment.tmp / "behind" / "models" / "fashion_gan",
        jobs_dir=deployment.tmp / "wrong-jobs",
    )
    with serve(create_app(wrong)) as wrong_url:
        miss = requests.get(f"{wrong_url}/api/generar-diseno", timeout=30)
    assert miss.status_code == 404 and "MODEL_NAME" in miss.json()["error"], miss.text
    for jobs in ("b-jobs", "wrong-jobs"):
        assert not (deployment.tmp / jobs / "job.json").exists()


def test_server_down_mid_traffic_is_503_and_readiness_follows(deployment: Deployment) -> None:
    """TF Serving goes away and comes back on the same ports: the gateway answers 503 with
    Retry-After meanwhile (the base path has a version, so nothing is trained) and serves again
    by itself. It stays ready throughout (it answers; a TF Serving outage must not take every
    gateway out of the Service), and says what TF Serving's state is in /readyz's body and in
    gateway_upstream_up / gateway_upstream_ready."""
    url, b = deployment.urls["b"], deployment.replica_b

    def upstream() -> dict[str, Any]:
        ready = requests.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["ready"] is True
        state: dict[str, Any] = ready.json()["upstream"]
        return state

    assert _sheet(url, "seed=1").headers["x-model-version"] == "1"
    assert upstream()["ready"] is True
    b.stop()
    r = requests.get(f"{url}/api/generar-diseno?seed=1", timeout=30)
    assert r.status_code == 503 and r.headers["retry-after"], r.text
    assert "training" not in r.json()
    _wait_for("readyz to report TF Serving down", lambda: upstream()["reachable"] is False)
    metrics = requests.get(f"{url}/metrics", timeout=10).text
    assert "gateway_upstream_up 0.0" in metrics and "gateway_upstream_ready 0.0" in metrics
    with b.respawn():  # the same command on the same ports
        deadline = time.monotonic() + 30
        while (
            r := requests.get(f"{url}/api/generar-diseno?seed=1", timeout=30)
        ).status_code != 200:
            assert r.status_code == 503 and time.monotonic() < deadline, r.text
            time.sleep(0.2)
        _wait_for("readyz to report TF Serving back", lambda: upstream()["ready"] is True)
    assert not (deployment.tmp / "b-jobs" / "job.json").exists()


def _predicts(proxy: HttpProxy | GrpcProxy) -> int:
    return len(proxy.predict_rows)


def _wait_for(what: str, check: Callable[[], bool], within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_failing_model_server_is_tried_by_one_request_at_a_time(
    deployment: Deployment,
) -> None:
    """Predicts that time out (1 s deadline): the first wave finds out, and from then on one
    request at a time tries the model server while the others get 503 at once, instead of all
    being admitted and getting their 504 a second later, wave after wave. A POST meanwhile is
    refused before its body is read. It all recovers by itself."""
    url, proxy = deployment.urls["rest_faulty"], deployment.proxies["rest_faulty"]
    assert isinstance(proxy, HttpProxy)
    assert get(url, "/api/generar-diseno?seed=3", "127.0.6.1").status == 200
    proxy.fault = "slow:2500"
    try:
        assert get(url, "/api/generar-diseno?seed=3", "127.0.6.1").status == 504
        answers: list[int] = []
        before = _predicts(proxy)
        together = threading.Barrier(10)

        def one(n: int) -> None:
            together.wait(30)
            answers.append(get(url, "/api/generar-diseno?seed=3", f"127.0.6.{n + 10}").status)

        wave = [threading.Thread(target=one, args=(n,)) for n in range(10)]
        for t in wave:
            t.start()
        _wait_for("the probe's predict", lambda: _predicts(proxy) > before)
        sock = connect(url, source="127.0.6.50")  # a client in good standing
        sock.sendall(
            b"POST /api/generar-diseno HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nContent-Length: 500000\r\n\r\n"
        )
        refused = read_answer(sock)  # the body is never sent: only admission can answer
        sock.close()
        for t in wave:
            t.join(60)
    finally:
        proxy.fault = None
    # the wave's requests that tried the model server (one, unless the wave took longer to
    # arrive than the 1 s deadline: then a second tried after the first had failed)
    tried = _predicts(proxy) - before
    assert 1 <= tried <= 2 and sorted(answers) == [503] * (10 - tried) + [504] * tried, answers
    assert refused.status == 503 and refused.headers["connection"] == "close"
    assert "failing" in refused.body.decode()
    _wait_for("recovery", lambda: get(url, "/api/generar-diseno", "127.0.6.2").status == 200)


def test_a_slow_model_server_is_noticed_before_its_first_slow_answer(
    deployment: Deployment,
) -> None:
    """Predicts that suddenly take 3 s (within the deadline): once the running one is clearly
    late, new requests are refused at once, with the wait they would have had, while it is
    still running. Before, they queued and got their 503 only when it ended, 5 s later."""
    url, proxy = deployment.urls["rest_guarded"], deployment.proxies["rest_guarded"]
    for _ in range(3):  # the usual speed is measured: tens of milliseconds per call
        assert get(url, "/api/generar-diseno", "127.0.7.1").status == 200
    proxy.fault = "slow:3000"
    try:
        before = _predicts(proxy)
        first: list[int] = []
        running = threading.Thread(
            target=lambda: first.append(get(url, "/api/generar-diseno", "127.0.7.2").status)
        )
        running.start()
        _wait_for("the slow predict", lambda: _predicts(proxy) > before)
        time.sleep(1.3)  # past the 1 s wait limit, and far past four times its usual time
        refused = [get(url, "/api/generar-diseno", f"127.0.7.{n + 10}") for n in range(10)]
        still_running = running.is_alive()
        running.join(60)
    finally:
        proxy.fault = None
    assert still_running  # every refusal came while the slow call was still running
    assert [a.status for a in refused] == [503] * 10
    assert all("would take" in a.body.decode() for a in refused)
    assert first == [200] and _predicts(proxy) == before + 1


def test_status_calls_are_shared_and_leave_the_predictions_alone(
    deployment: Deployment,
) -> None:
    """300 concurrent /api/versions while TF Serving's status endpoint takes 3 s: they share
    one status call (made on connections of its own), and a sheet asked meanwhile is drawn
    before any of them is answered. Before, they took all 64 pooled connections and sheets
    waited 8-14 s."""
    url, proxy = deployment.urls["rest_guarded"], deployment.proxies["rest_guarded"]

    def status_calls() -> int:
        return sum(1 for m, p in proxy.calls if m == "GET" and p.endswith("/models/fashion_gan"))

    async def burst() -> tuple[list[int], int, bool]:
        async with httpx.AsyncClient(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=400)
        ) as client:
            await asyncio.sleep(1.1)  # the gateway's shared answer from before has expired
            listings = [asyncio.create_task(client.get("/api/versions")) for _ in range(300)]
            await asyncio.sleep(0.3)
            sheet = await client.get("/api/generar-diseno")
            waiting = not any(t.done() for t in listings)
            answers = await asyncio.gather(*listings)
            return [r.status_code for r in answers], sheet.status_code, waiting

    proxy.status_delay_ms = 3000
    try:
        before = status_calls()
        statuses, sheet, listings_were_waiting = asyncio.run(burst())
        during = status_calls() - before
    finally:
        proxy.status_delay_ms = 0
    assert statuses == [200] * 300 and sheet == 200
    assert listings_were_waiting  # the sheet came back first
    assert during <= 3, during  # one for the burst, the rest the gateway's own status watch
