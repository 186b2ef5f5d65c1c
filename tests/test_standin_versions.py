"""The TF Serving stand-in's versions, labels and config reloads, end to end over loopback: what
tensorflow/serving's ServerCore, FileSystemStoragePathSource and AspiredVersionsManager do,
each test naming the source it mirrors where it pins a detail down. Every assertion holds
against the real server (no stand-in-only knob here). Start-up: test_standin_startup.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    model_management_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from tests.standin_support import (
    COMMON_FLAGS,
    TIMEOUT,
    Models,
    latents,
    predict_request,
    reload_request,
    rest_get,
    rest_post,
    rpc_code,
    served_version,
)
from tfserving_standin.harness import StandIn
from tfserving_standin.publishing import publish_version, wait_for_version

MULTI_CONFIG = """
model_config_list {
  config {
    name: 'gan'  base_path: '%(gan)s'  model_platform: 'tensorflow'
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: 'stable' value: %(stable)d }
    version_labels { key: 'canary' value: %(canary)d }
  }
  config { name: 'poll'  base_path: '%(poll)s'  model_platform: 'tensorflow' }
}
"""

# 'grow': a policy that the reload test extends; %(more)s: models a reload adds
GROW_CONFIG = """
model_config_list {
  config {
    name: 'grow'  base_path: '%(root)s/grow'  model_platform: 'tensorflow'
    model_version_policy { specific { %(versions)s } }
    %(labels)s
  }
  %(more)s
}
"""
LATE_MODEL = "config { name: 'late'  base_path: '%(root)s/late'  model_platform: 'tensorflow' }"


@dataclass
class Fleet:
    """The module's stand-ins, started together; each test waits only for the one it uses."""

    multi: StandIn
    grower: StandIn  # GROW_CONFIG
    root: Path

    @property
    def poll_base(self) -> Path:
        return self.root / "poll"


@pytest.fixture(scope="module")
def fleet(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("bases")
    publish_version(models.a, root / "gan", 1)
    publish_version(models.b, root / "gan", 2)
    publish_version(models.a, root / "poll", 1)
    publish_version(models.a, root / "grow", 1)
    publish_version(models.b, root / "grow", 2)
    publish_version(models.corrupt, root / "grow", 3)
    publish_version(models.b, root / "late", 1)
    config = root / "models.config"
    config.write_text(
        MULTI_CONFIG % {"gan": root / "gan", "poll": root / "poll", "stable": 1, "canary": 2}
    )
    grow_config = root / "grow.config"
    grow_config.write_text(grow_text(root, "versions: 1"))
    fleet = Fleet(
        # Labels in a start-up config need this flag on the real server too: they are checked
        # before any version has loaded.
        multi=StandIn(
            config_file=config,
            extra_flags=[
                *COMMON_FLAGS,
                "--allow_version_labels_for_unavailable_models=true",
                "--enable_serialization_as_tensor_content=true",
            ],
        ),
        grower=StandIn(config_file=grow_config, extra_flags=COMMON_FLAGS),
        root=root,
    )
    servers = [fleet.multi, fleet.grower]
    try:
        for server in servers:
            server.start(wait=False)
        yield fleet
    finally:
        for server in servers:
            server.close()


def grow_text(root: Path, versions: str, labels: str = "", more: str = "") -> str:
    """GROW_CONFIG with 'grow''s specific versions, its labels and more models."""
    return GROW_CONFIG % {"root": root, "versions": versions, "labels": labels, "more": more}


@pytest.fixture(scope="module")
def multi(fleet: Fleet) -> StandIn:
    return fleet.multi.wait_ready()


@pytest.fixture(scope="module")
def multi_stubs(multi: StandIn) -> Iterator[tuple[Any, Any]]:
    with grpc.insecure_channel(multi.grpc_target) as channel:
        yield (
            prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel),
        )


@pytest.fixture(scope="module")
def grower(fleet: Fleet) -> StandIn:
    return fleet.grower.wait_ready()


# --------------------------------------------------------------------------------- labels


def _label_config(fleet: Fleet, stable: int, canary: int) -> str:
    return MULTI_CONFIG % {
        "gan": fleet.poll_base.parent / "gan",
        "poll": fleet.poll_base,
        "stable": stable,
        "canary": canary,
    }


def test_labels_and_reload(
    multi: StandIn, fleet: Fleet, models: Models, multi_stubs: tuple[Any, Any]
) -> None:
    prediction, model_service = multi_stubs
    z = latents(1, seed=9)
    stable = rest_post(multi, "/v1/models/gan/labels/stable:predict", {"instances": z.tolist()})
    np.testing.assert_array_equal(
        np.asarray(stable.json()["predictions"], np.float32), models.reference(models.a, z)
    )
    canary = rest_post(multi, "/v1/models/gan/labels/canary:predict", {"inputs": z.tolist()})
    np.testing.assert_array_equal(
        np.asarray(canary.json()["outputs"], np.float32), models.reference(models.b, z)
    )
    assert served_version(multi, "/v1/models/gan/labels/stable") == 1
    # GetModelStatusImpl ignores labels: a label path lists every version (real server code).
    by_label = rest_get(multi, "/v1/models/gan/labels/stable").json()["model_version_status"]
    assert [entry["version"] for entry in by_label] == ["2", "1"]

    response = model_service.HandleReloadConfigRequest(
        reload_request(_label_config(fleet, stable=2, canary=1)), timeout=30
    )
    assert response.status.error_code == 0
    assert served_version(multi, "/v1/models/gan/labels/stable") == 2
    assert served_version(multi, "/v1/models/gan/labels/canary") == 1
    label_request = predict_request("gan", z, content=True, version_label="stable")
    answer = prediction.Predict(label_request, timeout=TIMEOUT)
    assert answer.model_spec.version.value == 2
    # --enable_serialization_as_tensor_content is on for this server.
    assert answer.outputs["images"].tensor_content != b""
    np.testing.assert_array_equal(
        tf.make_ndarray(answer.outputs["images"]), models.reference(models.b, z)
    )

    # Moving an existing label to a version that is not AVAILABLE is refused, even with
    # --allow_version_labels_for_unavailable_models (it only covers new labels).
    code, details = rpc_code(
        model_service.HandleReloadConfigRequest,
        reload_request(_label_config(fleet, stable=7, canary=1)),
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "Request to assign label to version 7 of model gan" in details
    assert served_version(multi, "/v1/models/gan/labels/stable") == 2

    bad = model_management_pb2.ReloadConfigRequest()
    assert rpc_code(model_service.HandleReloadConfigRequest, bad)[0] == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


# --------------------------------------------------------------------------------- versions


def _poll_latest(server: StandIn, z: np.ndarray) -> tuple[int, np.ndarray]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        answer = stub.Predict(predict_request("poll", z, content=True), timeout=TIMEOUT)
    return answer.model_spec.version.value, tf.make_ndarray(answer.outputs["images"])


def test_version_lifecycle(multi: StandIn, fleet: Fleet, models: Models) -> None:
    z = latents(1, seed=3)
    base = fleet.poll_base
    assert _poll_latest(multi, z)[0] == 1

    # A new version dir is picked up on the next poll; latest/1 then unloads version 1.
    publish_version(models.b, base, 2)
    wait_for_version(multi.rest_url, "poll", 2, timeout_s=15)
    unloaded = wait_for_version(multi.rest_url, "poll", 1, state="END", timeout_s=15)
    assert unloaded["status"] == {"error_code": "OK", "error_message": ""}
    version, images = _poll_latest(multi, z)
    assert version == 2
    np.testing.assert_array_equal(images, models.reference(models.b, z))

    # A corrupt version ends in END with an error; version 2 keeps serving.
    publish_version(models.corrupt, base, 3)
    failed = wait_for_version(multi.rest_url, "poll", 3, state="END", timeout_s=15)
    assert failed["status"]["error_code"] != "OK"
    assert failed["status"]["error_message"]
    assert _poll_latest(multi, z)[0] == 2
    states = {
        e["version"]: e["state"]
        for e in rest_get(multi, "/v1/models/poll").json()["model_version_status"]
    }
    assert states == {"3": "END", "2": "AVAILABLE", "1": "END"}

    # Warmup records are replayed at load time.
    publish_version(models.b_warm, base, 4)
    wait_for_version(multi.rest_url, "poll", 4, timeout_s=15)
    wait_for_version(multi.rest_url, "poll", 2, state="END", timeout_s=15)
    assert _poll_latest(multi, z)[0] == 4
    assert "Number of warmup records read: 2." in multi.stderr_text()


# --------------------------------------------------------------------------------- reloads


def _status(server: StandIn, model: str, version: int) -> tuple[int, str | None]:
    """(HTTP status, state) of one version; the state is None unless the answer is 200."""
    response = rest_get(server, f"/v1/models/{model}/versions/{version}")
    if response.status_code != 200:
        return response.status_code, None
    [entry] = response.json()["model_version_status"]
    return 200, str(entry["state"])


def test_a_reload_returns_once_the_config_is_accepted(grower: StandIn, fleet: Fleet) -> None:
    """model_servers/server_core.cc ReloadConfig -> AddModelsViaModelConfigList: a new config
    goes to sources/storage_path/file_system_storage_path_source.cc UpdateConfig, which only
    stores it; new versions of a model already served load at the next file-system poll, so
    HandleReloadConfigRequest (and the polled --model_config_file) returns OK before they load,
    and OK too when they then fail to load. Only a model new to the config is waited for
    (WaitUntilModelsAvailable). A config the server refuses is refused at once (a label on a
    version that is not AVAILABLE, UpdateModelVersionLabelMap)."""
    root = fleet.root
    with grpc.insecure_channel(grower.grpc_target) as channel:
        models = model_service_pb2_grpc.ModelServiceStub(channel)

        def reload(text: str) -> None:
            answer = models.HandleReloadConfigRequest(reload_request(text), timeout=120)
            assert answer.status.error_code == 0

        assert served_version(grower, "/v1/models/grow") == 1
        reload(grow_text(root, "versions: 1 versions: 2"))
        # back at once: version 2 is not loaded yet (at most discovered and loading)
        assert _status(grower, "grow", 2) in ((404, None), (200, "START"), (200, "LOADING"))
        wait_for_version(grower.rest_url, "grow", 2, timeout_s=60)
        assert served_version(grower, "/v1/models/grow") == 2

        reload(grow_text(root, "versions: 1 versions: 2 versions: 3"))  # 3 is corrupt: OK
        failed = wait_for_version(grower.rest_url, "grow", 3, state="END", timeout_s=90)
        assert failed["status"]["error_code"] != "OK" and failed["status"]["error_message"]
        assert served_version(grower, "/v1/models/grow") == 2

        labels = "version_labels { key: 'stable' value: 3 }"
        code, details = rpc_code(
            models.HandleReloadConfigRequest,
            reload_request(grow_text(root, "versions: 1 versions: 2", labels)),
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert "Request to assign label to version 3 of model grow" in details

        late = LATE_MODEL % {"root": root}
        reload(grow_text(root, "versions: 1 versions: 2 versions: 3", more=late))
        assert _status(grower, "late", 1) == (200, "AVAILABLE")  # waited for: a new model
