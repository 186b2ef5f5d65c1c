"""Rollouts per model: ``python -m export.rollout --model fashion_gan_cond`` moves the
conditional model's labels (the quality gate included) on a TF Serving stand-in started with
docker-compose.yml's flags, while fashion_gan's entry of the shared models.config stays byte for
byte what it was. The conditional model joins a file seeded without it (as the trainer seeds a
fresh volume: TF Serving would wait at start-up for a model with no version) on its first
rollout, taking its entry from the starting template.

    .venv/bin/pytest tests/test_cond_rollout.py -q
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import serving_config
from fashion_core.contract import COND_MODEL_NAME, MODEL_NAME
from fashion_core.models_config import read
from tests.cond_support import build_cond_model, with_card
from tests.conftest import run_cli
from tests.servers import compose_standin
from tests.standin_support import Models, served_version
from tests.tfserving_flags import Mounts, prepare_mounts
from tfserving_standin.harness import StandIn
from tfserving_standin.publishing import publish_version

QUALITY = {"evaluator": "fmnist-classifier-v2", "samples": 40}


def entry_text(config: Path, name: str) -> str:
    """The bytes of one model's ``config { ... }`` block in the file."""
    text = config.read_text()
    blocks = re.findall(r"  config \{\n.*?\n  \}\n", text, flags=re.S)
    (block,) = [str(b) for b in blocks if f'name: "{name}"' in b]
    return block


@dataclass
class Setup:
    mounts: Mounts
    server: StandIn
    template: Path  # the starting models.config, its base paths remapped as the server sees them
    cond_base: Path


@pytest.fixture(scope="module")
def setup(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("cond_rollout")
    mounts = prepare_mounts(tmp)  # seeded as the trainer seeds a fresh volume
    publish_version(models.a, mounts.base_path, 1)
    cond = build_cond_model(tmp / "cond_model")
    cond_base = mounts.models / COND_MODEL_NAME
    for version, fid in ((1, 50.0), (2, 40.0), (3, 99.0)):
        staged = with_card(cond, tmp / f"staged{version}", {**QUALITY, "fid": fid})
        publish_version(staged, cond_base, version)
    template = tmp / "template.config"
    template.write_text(
        serving_config.MODELS_CONFIG.read_text().replace('"/models/', f'"{mounts.models}/')
    )
    server = compose_standin(mounts, model_config_file_poll_wait_seconds=1).start()
    try:
        yield Setup(mounts, server, template, cond_base)
    finally:
        server.close()


def rollout_cli(
    s: Setup, *args: str, model: str = COND_MODEL_NAME
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "export.rollout",
        "--config", str(s.mounts.models_config),
        "--template", str(s.template),
        "--rest-url", s.server.rest_url,
        "--model", model,
        "--timeout", "60",
        *args,
        timeout=180,
    )  # fmt: skip


def rollout(s: Setup, *args: str) -> str:
    proc = rollout_cli(s, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_the_conditional_model_rolls_out_beside_the_first(setup: Setup) -> None:
    s, config = setup, setup.mounts.models_config
    # a fresh volume's file names only the model the trainer trains on a miss
    assert _names(config) == [MODEL_NAME]
    first = entry_text(config, MODEL_NAME)

    out = rollout(s, "stable", "1")  # joins the file, loads 1 everywhere, then stable -> 1
    assert "policy now keeps versions [1]" in out and "stable -> 1" in out
    assert served_version(s.server, f"/v1/models/{COND_MODEL_NAME}/labels/stable") == 1
    assert entry_text(config, MODEL_NAME) == first

    out = rollout(s, "canary", "2")  # FID 40 against stable's 50: passes the gate
    assert "quality gate: version 2 against stable 1" in out and "canary -> 2" in out
    assert served_version(s.server, f"/v1/models/{COND_MODEL_NAME}/labels/canary") == 2
    assert "stable -> 2" in rollout(s, "promote")
    assert served_version(s.server, f"/v1/models/{COND_MODEL_NAME}/labels/stable") == 2
    assert entry_text(config, MODEL_NAME) == first

    before = config.read_bytes()
    worse = rollout_cli(s, "canary", "3")  # FID 99: refused, nothing written
    assert worse.returncode == 1 and "worse than stable 2" in worse.stderr, worse.stderr
    assert config.read_bytes() == before

    assert "rolled back: stable 2 -> 1" in rollout(s, "rollback")
    assert read(config, COND_MODEL_NAME)[1].labels == {"stable": 1, "canary": 2}
    # the first model's labels, versions and bytes are untouched, and it still serves
    assert entry_text(config, MODEL_NAME) == first
    assert served_version(s.server, f"/v1/models/{MODEL_NAME}") == 1
    # each model keeps its own history of stable versions
    assert (config.parent / f"models.{COND_MODEL_NAME}.history.json").is_file()
    assert not (config.parent / "models.history.json").exists()

    table = rollout_cli(s, "list", model=COND_MODEL_NAME)
    assert table.returncode == 0 and "stable" in table.stdout
    alias = run_cli(
        "export.rollout", "--config", str(config), "--rest-url", s.server.rest_url,
        "--model-name", MODEL_NAME, "list",
    )  # fmt: skip
    assert alias.returncode == 0, alias.stderr
    assert "AVAILABLE" in alias.stdout and "canary" not in alias.stdout


def test_a_model_neither_listed_nor_in_the_template_is_refused(setup: Setup) -> None:
    proc = rollout_cli(setup, "stable", "1", model="fashion_gan_other")
    assert proc.returncode == 1 and "has no model named 'fashion_gan_other'" in proc.stderr
    assert "Traceback" not in proc.stderr


def _names(config: Path) -> list[str]:
    from fashion_core.models_config import parse

    return [str(m.name) for m in parse(config.read_text()).model_config_list.config]
