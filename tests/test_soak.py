"""A short soak and a graceful stop of a real gateway process (embedded smoke model): 12 s of
mixed traffic with no unexpected answer and no growth in memory or open files (the 10-minute
version is ``python -m benchmarks.soak``), then SIGTERM while 50 requests are in flight: all of
them complete and the process exits within its grace period."""

from __future__ import annotations

import asyncio
import http.client
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from benchmarks.procs import Children, embedded_gateway_env, start_gateway
from benchmarks.soak import soak
from benchmarks.traffic import drive, soak_mix

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway(
    smoke_base: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Children, str]]:
    tmp = tmp_path_factory.mktemp("soak")
    with Children(tmp) as children:
        env = {
            **embedded_gateway_env(smoke_base, tmp),
            # every request is served: these tests are not about admission control
            "GATEWAY_MAX_QUEUE_WAIT_S": "30",
            "GATEWAY_MAX_QUEUE_IMAGES": "100000",
            "GATEWAY_QUEUE_TIMEOUT_S": "60",
            "GATEWAY_SHUTDOWN_GRACE_S": "20",
        }
        _, url = start_gateway(children, "gateway", env)
        yield children, url


def test_short_soak(gateway: tuple[Children, str]) -> None:
    children, url = gateway
    pid = children.procs["gateway"].pid
    asyncio.run(drive(url, soak_mix(), 16, 2.0))  # warm-up: kernels, caches, connections
    # a short soak in the suite (the 10-minute one is benchmarks/soak.py)
    report = asyncio.run(soak(url, pid, clients=16, seconds=8, every_s=1.0))
    assert set(report.tally.statuses) == {kind.name for kind in soak_mix()}  # every kind asked
    assert sum(sum(c.values()) for c in report.tally.statuses.values()) >= 40
    assert not report.tally.unexpected and report.tally.timeouts == 0, report.tally.unexpected
    assert report.rss_growth < 0.10, report.samples
    assert report.fd_growth <= 0, report.samples


def read_by_server(port: int, sent: set[int], answered: set[int]) -> bool:
    """Whether the server on ``port`` has read the requests sent from the local ports ``sent``:
    in /proc/net/tcp each of those connections (but those already answered) has no byte left
    unacknowledged at the client's end and none unread at the server's."""
    read = set(answered)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
        unacked, unread = (int(count, 16) for count in fields[4].split(":"))
        if local in sent and remote == port and unacked:
            return False
        if local == port and remote in sent:
            if unread:
                return False
            read.add(remote)
    return read >= sent


def test_sigterm_lets_requests_in_flight_finish(gateway: tuple[Children, str]) -> None:
    children, url = gateway
    proc = children.procs["gateway"]
    host, port = urlsplit(url).hostname or "", urlsplit(url).port or 80
    answers: list[int] = []
    sent: set[int] = set()  # the clients' local ports, once their request is written
    answered: set[int] = set()
    lock = threading.Lock()

    def one() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.request("GET", "/api/generar-diseno?rows=4&cols=4&scale=8")
        local = conn.sock.getsockname()[1]
        with lock:
            sent.add(local)
        response = conn.getresponse()
        response.read()
        with lock:
            answers.append(response.status)
            answered.add(local)
        conn.close()

    def all_read() -> bool:
        with lock:
            mine, done = set(sent), set(answered)
        return len(mine) == 50 and read_by_server(port, mine, done)

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    # all 50 sent and read by the gateway: the model and the renderer are busy with them
    deadline = time.monotonic() + 60
    while not all_read():
        assert time.monotonic() < deadline, f"{len(sent)} requests sent, not all read in 60s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    for t in threads:
        t.join(60)
    assert answers == [200] * 50
    # uvicorn finishes the requests, runs the shutdown, then re-raises the signal it caught
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    assert time.monotonic() - stopped < 20
    with pytest.raises(requests.ConnectionError):  # and it took no new ones
        requests.get(f"{url}/healthz", timeout=5)
