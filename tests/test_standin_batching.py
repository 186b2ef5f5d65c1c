"""The TF Serving stand-in with ``--enable_batching`` and ``--batching_parameters_file``, as
compose runs TF Serving: limits, merging and padding, splitting, the queue, deadlines. Each test
names the TF Serving (or TensorFlow) source whose behaviour it pins down. End to end over
loopback; the scheduler alone, in-process, is test_standin_scheduler.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.standin_support import (
    BATCHED,
    COMMON_FLAGS,
    MODEL,
    SPLIT,
    Models,
    latents,
    predict_request,
    rest_error,
    rest_get,
    rest_post,
    rpc_code,
    served_version,
    until,
)
from tfserving_standin.harness import StandIn
from tfserving_standin.publishing import publish_version, wait_for_version

GAN2_CONFIG = """
model_config_list {
  config {
    name: 'gan2'  base_path: '%(base)s'  model_platform: 'tensorflow'
    model_version_policy { specific { %(versions)s } }
    version_labels { key: 'stable' value: %(stable)d }
  }
}
"""

# REST requests to the split server end at 3 s (test_a_request_past_its_deadline_in_the_queue...)
SPLIT_REST_TIMEOUT_MS = 3000


@dataclass
class Fleet:
    batched: StandIn  # tight limits; model "gan2" from a polled config file, as compose runs it
    split: StandIn  # enable_large_batch_splitting, one batch thread, REST timeout 3 s
    gan2_config: Path


@pytest.fixture(scope="module")
def fleet(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("bases")
    publish_version(models.a, root / "single", 1)
    publish_version(models.a, root / "gan2", 1)
    publish_version(models.b, root / "gan2", 2)
    gan2_config = root / "gan2.config"
    gan2_config.write_text(
        GAN2_CONFIG % {"base": root / "gan2", "versions": "versions: 1", "stable": 1}
    )
    (root / "batched.config").write_text(BATCHED)
    (root / "split.config").write_text(SPLIT)
    fleet = Fleet(
        # as compose runs TF Serving: batching, a polled config, labels allowed at start
        batched=StandIn(
            config_file=gan2_config,
            extra_flags=[
                *COMMON_FLAGS,
                "--model_config_file_poll_wait_seconds=1",
                "--allow_version_labels_for_unavailable_models=true",
                "--enable_batching=true",
                f"--batching_parameters_file={root / 'batched.config'}",
            ],
        ),
        split=StandIn(
            model_name=MODEL,
            base_path=root / "single",
            extra_flags=[
                *COMMON_FLAGS,
                "--enable_batching",
                f"--batching_parameters_file={root / 'split.config'}",
                f"--rest_api_timeout_in_ms={SPLIT_REST_TIMEOUT_MS}",
            ],
        ),
        gan2_config=gan2_config,
    )
    try:
        for server in (fleet.batched, fleet.split):
            server.start(wait=False)
        yield fleet
    finally:
        fleet.batched.close()
        fleet.split.close()


@pytest.fixture(scope="module")
def batched(fleet: Fleet) -> StandIn:
    return fleet.batched.wait_ready()


@pytest.fixture(scope="module")
def split(fleet: Fleet) -> StandIn:
    return fleet.split.wait_ready()


def _batch_sizes(log: str) -> list[tuple[int, int]]:
    """(rows, padded rows) of every batch the stand-in ran, from its log."""
    found = re.findall(r"ran a batch of (\d+) rows \(padded to (\d+)\)", log)
    return [(int(a), int(b)) for a, b in found]


def test_batching_refuses_more_rows_than_max_batch_size(batched: StandIn, split: StandIn) -> None:
    """tensorflow/core/kernels/batching_util/shared_batch_scheduler.h,
    Queue::ValidateBatchTaskQueueCapacity: a task with more rows than max_batch_size is
    INVALID_ARGUMENT (REST 400), with or without enable_large_batch_splitting."""
    for server, model, limit in ((batched, "gan2", 18), (split, MODEL, 64)):
        ok = rest_post(
            server, f"/v1/models/{model}:predict", {"instances": latents(limit).tolist()}
        )
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == limit
        body = {"instances": latents(limit + 1).tolist()}
        message = f"Task size {limit + 1} is larger than maximum input batch size {limit}"
        assert rest_error(rest_post(server, f"/v1/models/{model}:predict", body), 400) == message
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_request(model, latents(limit + 1), content=True)
            assert rpc_code(stub.Predict, request) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_batching_merges_concurrent_requests_and_pads_to_an_allowed_size(
    batched: StandIn, models: Models
) -> None:
    """tensorflow_serving/batching/batching_session.cc, BatchingSession::ProcessBatch: the
    tasks of a batch are concatenated, padded up to the lowest allowed batch size with copies
    of the last task's first row, run once, and split back per task."""
    zs = [latents(5, seed=21), latents(5, seed=22)]
    before = len(batched.stderr_text())
    barrier = threading.Barrier(2)
    answers: dict[int, requests.Response] = {}

    def call(i: int) -> None:
        barrier.wait()
        answers[i] = rest_post(batched, "/v1/models/gan2:predict", {"instances": zs[i].tolist()})

    threads = [threading.Thread(target=call, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i, z in enumerate(zs):
        got = np.asarray(answers[i].json()["predictions"], np.float32)
        np.testing.assert_allclose(got, models.reference(models.a, z), atol=1e-6)
    # both arrived within batch_timeout_micros (300 ms): one run of 10 rows, padded to 18
    assert (10, 18) in _batch_sizes(batched.stderr_text()[before:])


def test_batching_splits_large_requests_into_execution_batches(
    split: StandIn, models: Models
) -> None:
    """shared_batch_scheduler.h with enable_large_batch_splitting (read by
    servables/tensorflow/bundle_factory_util.h GetQueueOptions): a task up to max_batch_size
    is cut into pieces of at most max_execution_batch_size, run, and put back together."""
    z = latents(40, seed=5)
    before = len(split.stderr_text())
    answer = rest_post(split, f"/v1/models/{MODEL}:predict", {"instances": z.tolist()})
    got = np.asarray(answer.json()["predictions"], np.float32)
    np.testing.assert_allclose(got, models.reference(models.a, z), atol=1e-6)
    assert _batch_sizes(split.stderr_text()[before:]) == [(16, 16), (16, 16), (8, 8)]


def test_a_reload_that_adds_a_version_and_moves_a_label_is_refused_whole(
    batched: StandIn, fleet: Fleet
) -> None:
    """model_servers/server_core.cc ServerCore::ReloadConfig: the label map is updated before
    new versions are added, and --allow_version_labels_for_unavailable_models exempts only new
    labels (UpdateModelVersionLabelMap), so one config that adds version 2 to the policy and
    moves "stable" onto it is refused whole; main.cc's config poll reads the same file again
    and is refused again. Two reloads (the policy, then the label) go through."""
    base = fleet.gan2_config.parent / "gan2"

    def write(versions: str, stable: int) -> None:
        text = GAN2_CONFIG % {"base": base, "versions": versions, "stable": stable}
        tmp = fleet.gan2_config.with_name(".gan2.config.tmp")
        tmp.write_text(text)
        tmp.replace(fleet.gan2_config)

    def stable_and_v2() -> tuple[int, int]:
        v2 = rest_get(batched, "/v1/models/gan2/versions/2").status_code
        return served_version(batched, "/v1/models/gan2/labels/stable"), v2

    refusal = "Request to assign label to version 2 of model gan2"
    assert stable_and_v2() == (1, 404)
    write("versions: 1 versions: 2", stable=2)
    until(  # refused at least twice: at one poll, and again at the next
        "the config refused twice", lambda: batched.stderr_text().count(refusal) >= 2
    )
    assert stable_and_v2() == (1, 404)  # neither the label nor the policy changed

    write("versions: 1 versions: 2", stable=1)
    wait_for_version(batched.rest_url, "gan2", 2, timeout_s=30)
    write("versions: 1 versions: 2", stable=2)
    until("stable on version 2", lambda: stable_and_v2() == (2, 200))


def test_a_request_past_its_deadline_in_the_queue_is_429_and_a_slow_run_504(
    split: StandIn,
) -> None:
    """batching_session.cc with the deadlines the front ends give: REST's RunOptions timeout
    is --rest_api_timeout_in_ms (http_rest_api_handler.cc), gRPC's the client's remaining
    deadline (prediction_service_impl.cc DeadlineToTimeoutMillis). A REST request queued
    behind a slow batch waits for its batch past its timeout, then gets RESOURCE_EXHAUSTED,
    REST 429 (http_server.cc ToHTTPStatusCode); alone, a run slower than the timeout is the
    session's DEADLINE_EXCEEDED, REST 504. STAND-IN ONLY knob: set_faults(delay_ms), a slow
    model."""
    one = {"instances": latents(1).tolist()}
    path = f"/v1/models/{MODEL}:predict"
    timeout_s = SPLIT_REST_TIMEOUT_MS / 1000
    split.set_faults(delay_ms=int(timeout_s * 1000) + 1500)
    try:
        before = len(split.stderr_text())
        with grpc.insecure_channel(split.grpc_target) as channel, ThreadPoolExecutor(1) as pool:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            request = predict_request(MODEL, latents(1), content=True)
            slow = pool.submit(stub.Predict, request, timeout=60)
            until(
                "the slow batch runs on the only batch thread",
                lambda: "took a batch of 1 rows off" in split.stderr_text()[before:],
            )
            started = time.monotonic()
            queued = rest_post(split, path, one)
            waited = time.monotonic() - started
            assert slow.result(timeout=60).model_spec.version.value == 1
        message = rest_error(queued, 429)
        assert message == "Run() timeout exceeded while waiting in batching queue"
        assert waited > timeout_s  # it waited for its batch instead of a 504 at its timeout
        assert rest_error(rest_post(split, path, one), 504) == "Timed out waiting for notification"
    finally:
        split.clear_faults()
