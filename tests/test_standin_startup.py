"""The TF Serving stand-in's start-up, end to end: when the ports open, what makes the process
exit 255, and the flags it refuses, each test naming the tensorflow/serving source it mirrors.
Every assertion holds against the real server.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from tests.standin_support import (
    COMMON_FLAGS,
    MODEL,
    TIMEOUT,
    Models,
    latents,
    rest_get,
    rest_post,
    served_version,
    until,
)
from tfserving_standin.harness import StandIn
from tfserving_standin.publishing import publish_version, wait_for_version

EMPTY_CONFIG = """
model_config_list {
  config { name: 'empty'  base_path: '%(base)s'  model_platform: 'tensorflow'  %(labels)s }
}
"""
# latest/2 over a good version 1 and a corrupt version 2
FALLBACK_CONFIG = """
model_config_list {
  config {
    name: 'fallback'  base_path: '%(base)s'  model_platform: 'tensorflow'
    model_version_policy { latest { num_versions: 2 } }
  }
}
"""
# a corrupt version keeps being retried for 10 s: long enough for a good one to load meanwhile
SLOW_RETRY = ("--max_num_load_retries=1", "--load_retry_interval_micros=10000000")


@dataclass
class Fleet:
    """The module's stand-ins, started together; each test waits only for the one it uses."""

    corrupt: StandIn  # latest/1 over a corrupt newest version: never starts
    empty: StandIn  # an empty base path, a polled config file
    fallback: StandIn  # FALLBACK_CONFIG, retries slow
    no_port: StandIn  # --port=0 and no --grpc_socket_path: refused
    unix: StandIn  # --port=0 with --grpc_socket_path
    root: Path

    @property
    def empty_base(self) -> Path:
        return self.root / "empty"

    @property
    def empty_config(self) -> Path:
        return self.root / "empty.config"

    @property
    def grpc_socket(self) -> Path:
        return self.root / "grpc.sock"


@pytest.fixture(scope="module")
def fleet(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("bases")
    publish_version(models.a, root / "single", 1)
    publish_version(models.a, root / "corrupt", 1)
    publish_version(models.corrupt, root / "corrupt", 2)
    publish_version(models.a, root / "fallback", 1)
    publish_version(models.corrupt, root / "fallback", 2)
    (root / "empty").mkdir()
    (root / "empty.config").write_text(EMPTY_CONFIG % {"base": root / "empty", "labels": ""})
    (root / "fallback.config").write_text(FALLBACK_CONFIG % {"base": root / "fallback"})
    fleet = Fleet(
        corrupt=StandIn(model_name="broken", base_path=root / "corrupt", extra_flags=COMMON_FLAGS),
        empty=StandIn(
            config_file=root / "empty.config",
            extra_flags=[*COMMON_FLAGS, "--model_config_file_poll_wait_seconds=1"],
        ),
        fallback=StandIn(
            config_file=root / "fallback.config", extra_flags=[*COMMON_FLAGS, *SLOW_RETRY]
        ),
        no_port=StandIn(
            model_name=MODEL, base_path=root / "single", extra_flags=[*COMMON_FLAGS, "--port=0"]
        ),
        unix=StandIn(
            model_name=MODEL,
            base_path=root / "single",
            extra_flags=[*COMMON_FLAGS, "--port=0", f"--grpc_socket_path={root / 'grpc.sock'}"],
        ),
        root=root,
    )
    servers = [fleet.corrupt, fleet.empty, fleet.fallback, fleet.no_port, fleet.unix]
    try:
        for server in servers:
            server.start(wait=False)
        yield fleet
    finally:
        for server in servers:
            server.close()


def test_corrupt_latest_version_at_startup_exits_255(fleet: Fleet) -> None:
    """core/load_servables_fast.cc ConnectSourcesWithFastInitialLoad: with latest/1 the only
    aspired version is the corrupt one; it ends END, the start fails and main.cc exits -1."""
    server = fleet.corrupt
    assert server.wait_exit(timeout_s=120) == 255
    stdout = server.stdout_text()  # main.cc prints the failure on stdout
    assert "Failed to start server. Error: UNKNOWN: 1 servable(s) did not become available" in (
        stdout
    )
    assert "{name: broken version: 2} due to error:" in stdout
    assert "STANDIN READY" not in stdout


def test_a_corrupt_newest_version_at_startup_leaves_the_older_one_serving(fleet: Fleet) -> None:
    """core/load_servables_fast.cc: at start-up every aspired version loads in parallel
    (num_initial_load_threads), and the wait ends once core/servable_state_monitor.cc
    HasAnyServableInStreamReachedState, scanning newest first, finds a version AVAILABLE or
    END: version 1 AVAILABLE while the corrupt version 2 is still retried. The initial load
    threads are then drained (BasicManager::SetNumLoadThreads), so the ports open once version
    2 is END too; the server serves version 1 instead of exiting."""
    server = fleet.fallback.wait_ready()
    log = server.stderr_text()
    loaded = log.index("Successfully loaded servable version {name: fallback version: 1}")
    assert loaded < log.index("Servable {name: fallback version: 2} is END")  # in parallel
    states = {
        e["version"]: (e["state"], e["status"]["error_code"])
        for e in rest_get(server, "/v1/models/fallback").json()["model_version_status"]
    }
    assert states["1"] == ("AVAILABLE", "OK")
    assert states["2"][0] == "END" and states["2"][1] != "OK"
    answer = rest_post(server, "/v1/models/fallback:predict", {"instances": latents(1).tolist()})
    assert answer.status_code == 200 and served_version(server, "/v1/models/fallback") == 1


def test_port_0_without_a_grpc_socket_is_refused_at_start(fleet: Fleet) -> None:
    """model_servers/server.cc BuildAndStart, its first check: --port=0 does not turn gRPC off,
    it is refused unless --grpc_socket_path gives gRPC a UNIX socket instead."""
    server = fleet.no_port
    assert server.wait_exit(timeout_s=120) == 255
    assert (
        "Failed to start server. Error: INVALID_ARGUMENT: At least one of "
        "server_options.grpc_port or server_options.grpc_socket_path must be set."
    ) in server.stdout_text()

    unix = fleet.unix.wait_ready()
    with grpc.insecure_channel(f"unix:{fleet.grpc_socket}") as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = MODEL
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(
            request, timeout=TIMEOUT
        )
    assert [v.version for v in status.model_version_status] == [1]
    assert rest_get(unix, f"/v1/models/{MODEL}").status_code == 200


def test_empty_base_path_waits_then_config_file_is_polled(fleet: Fleet, models: Models) -> None:
    server = fleet.empty
    # Still waiting for a version: alive, ports closed (server_core.cc: the ports open only once
    # every model's latest version is AVAILABLE or END).
    assert not server.ready
    assert server.process is not None and server.process.poll() is None
    for port in (server.rest_port, server.grpc_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    waiting_log = "No versions of servable empty found under base path " + str(fleet.empty_base)
    until("the empty base path logged", lambda: waiting_log in server.stderr_text())
    publish_version(models.a, fleet.empty_base, 7)
    server.wait_ready(timeout_s=60)
    assert wait_for_version(server.rest_url, "empty", 7, timeout_s=5)["state"] == "AVAILABLE"

    # --model_config_file_poll_wait_seconds=1: an edited config file is applied on the next read.
    live = "/v1/models/empty/labels/live/metadata"
    assert rest_get(server, live).status_code == 400
    labels = "version_labels { key: 'live' value: 7 }"
    fleet.empty_config.write_text(EMPTY_CONFIG % {"base": fleet.empty_base, "labels": labels})
    until("the label applied", lambda: rest_get(server, live).status_code == 200)
    assert served_version(server, "/v1/models/empty/labels/live") == 7
