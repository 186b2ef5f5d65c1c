"""A progressive job's versions reach TF Serving (training/follow.py): on a TF Serving stand-in
started with docker-compose.yml's flags, on a volume seeded as the trainer seeds a fresh one
(fashion_gan keeps versions 1 and 2, labelled), each version the job adds to models.config is
loaded and serves unpinned traffic, the one it added before is let go, labels stay; the
class-conditional model, absent from the file, joins it with its first version; a rollout
holding the file's lock is never written over.

    .venv/bin/pytest tests/test_follow.py -q
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fashion_core import locks
from fashion_core.contract import COND_MODEL_NAME, MODEL_NAME
from fashion_core.models_config import follow, lock_path, parse, read
from tests.cond_support import build_cond_model
from tests.servers import compose_standin
from tests.standin_support import Models, rest_get, served_version, until
from tests.tfserving_flags import Mounts, prepare_mounts
from tfserving_standin.harness import StandIn
from tfserving_standin.publishing import publish_version
from training.follow import follow_version


@dataclass
class Setup:
    mounts: Mounts
    server: StandIn
    models: Models
    tmp: Path


@pytest.fixture(scope="module")
def setup(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("follow")
    mounts = prepare_mounts(tmp)  # fashion_gan only: specific {1, 2}, stable 1, canary 2
    publish_version(models.a, mounts.base_path, 1)
    publish_version(models.b, mounts.base_path, 2)
    server = compose_standin(mounts, model_config_file_poll_wait_seconds=1).start()
    try:
        yield Setup(mounts, server, models, tmp)
    finally:
        server.close()


def _states(server: StandIn, model: str) -> dict[int, str]:
    response = rest_get(server, f"/v1/models/{model}")
    if response.status_code != 200:
        return {}
    return {int(s["version"]): s["state"] for s in response.json()["model_version_status"]}


def test_each_new_version_is_loaded_and_the_one_before_let_go(setup: Setup) -> None:
    s, config, base = setup.server, setup.mounts.models_config, setup.mounts.base_path
    lines: list[str] = []
    state: dict[str, Any] = {}
    assert read(config, MODEL_NAME)[1].versions == [1, 2]
    publish_version(setup.models.a, base, 3)
    time.sleep(2.5)  # two polls of the base path: a specific policy does not load it
    assert 3 not in _states(s, MODEL_NAME) and served_version(s, f"/v1/models/{MODEL_NAME}") == 2
    follow_version(config, MODEL_NAME, base, 3, state, lines.append)
    until("unpinned traffic on 3", lambda: served_version(s, f"/v1/models/{MODEL_NAME}") == 3)
    assert read(config, MODEL_NAME)[1].versions == [1, 2, 3]

    publish_version(setup.models.b, base, 4)
    follow_version(config, MODEL_NAME, base, 4, state, lines.append)
    assert read(config, MODEL_NAME)[1].versions == [1, 2, 3, 4]  # 3 stays while 4 is new
    until("unpinned traffic on 4", lambda: served_version(s, f"/v1/models/{MODEL_NAME}") == 4)
    publish_version(setup.models.a, base, 5)
    follow_version(config, MODEL_NAME, base, 5, state, lines.append)
    entry = read(config, MODEL_NAME)[1]
    assert entry.versions == [1, 2, 4, 5]  # 3 was the job's: dropped; 1 and 2 are the template's
    assert entry.labels == {"stable": 1, "canary": 2}
    until("unpinned traffic on 5", lambda: served_version(s, f"/v1/models/{MODEL_NAME}") == 5)
    until("3 unloaded", lambda: _states(s, MODEL_NAME).get(3) == "END", 60)
    assert served_version(s, f"/v1/models/{MODEL_NAME}/labels/stable") == 1
    assert state["followed"] == {MODEL_NAME: [3, 4, 5]}
    assert any("Versión 5 de fashion_gan añadida" in line for line in lines), lines


def test_the_conditional_model_joins_the_file_with_its_first_version(setup: Setup) -> None:
    s, config = setup.server, setup.mounts.models_config
    before = read(config, MODEL_NAME)[1]
    cond_base = setup.mounts.models / COND_MODEL_NAME
    publish_version(build_cond_model(setup.tmp / "cond"), cond_base, 1)
    names = [m.name for m in parse(config.read_text()).model_config_list.config]
    assert COND_MODEL_NAME not in names  # TF Serving would wait for it at start-up
    follow_version(config, COND_MODEL_NAME, cond_base, 1, {}, lambda _line: None)
    entry = read(config, COND_MODEL_NAME)[1]
    assert entry.versions == [1] and entry.base_path == str(cond_base.resolve())
    until(
        "the conditional model served",
        lambda: _states(s, COND_MODEL_NAME).get(1) == "AVAILABLE",
        60,
    )
    assert served_version(s, f"/v1/models/{COND_MODEL_NAME}") == 1
    assert read(config, MODEL_NAME)[1] == before


def test_a_rollout_holding_the_lock_is_never_written_over(setup: Setup) -> None:
    config = setup.mounts.models_config
    before = config.read_bytes()
    lines: list[str] = []
    fd = locks.try_acquire(lock_path(config))
    assert fd is not None
    try:
        follow_version(config, MODEL_NAME, setup.mounts.base_path, 9, {}, lines.append, 0.5)
    finally:
        os.close(fd)
    assert config.read_bytes() == before
    assert "se añadirá con la siguiente" in lines[-1], lines


def test_a_policy_that_loads_new_versions_by_itself_is_left_as_it_is() -> None:
    latest = parse(
        "model_config_list { config { name: 'fashion_gan' base_path: '/m' "
        "model_platform: 'tensorflow' model_version_policy { latest { num_versions: 2 } } } }"
    )
    assert follow(latest, MODEL_NAME, "/m", 5) is None
    labelled = parse(
        "model_config_list { config { name: 'fashion_gan' base_path: '/m' "
        "model_platform: 'tensorflow' model_version_policy { specific { versions: 3 } } "
        "version_labels { key: 'canary' value: 3 } } }"
    )
    new = follow(labelled, MODEL_NAME, "/m", 5, added=[3, 4])
    assert new is not None
    kept = new.model_config_list.config[0]
    assert list(kept.model_version_policy.specific.versions) == [3, 5]  # a label names 3


def test_the_rollout_s_rollback_target_is_never_dropped(tmp_path: Path) -> None:
    """The job published 7 and 9; a rollout promoted 7, then 9, keeping 7 loaded for an
    instant rollback (unlabelled, in its history). The job's next version must not drop it."""
    from export.rollout.history import History

    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list { config { name: 'fashion_gan' base_path: '/m' "
        "model_platform: 'tensorflow' model_version_policy { specific { versions: 7 "
        "versions: 9 } } version_labels { key: 'stable' value: 9 } } }"
    )
    History(config).record(7, 9)
    state: dict[str, Any] = {"followed": {MODEL_NAME: [7, 9]}}
    follow_version(config, MODEL_NAME, tmp_path / "m", 10, state, lambda _line: None)
    assert read(config, MODEL_NAME)[1].versions == [7, 9, 10]
