"""The progressive training job (training/progressive.py): versions published along the way,
each after the first only when the evaluator rates it better than the one being served, which
an embedded gateway serves in turn without a restart; the job killed and started again goes
on; old versions pruned, never a labelled one. Its networks are conditional behind the first
model (``category_from_z``, as ``quick``'s), so the same job publishes the class-conditional
model too, which the gateway serves by category from the job's first version."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from export.prune import protected_versions, prune
from fashion_core.cards import read_card
from fashion_core.jobs import TrainingJobs
from fashion_core.versions import list_versions, version_dir
from gateway.app import create_app
from gateway.settings import Settings
from tests.browser import open_page, wait_for
from tests.servers import labels_config, serve
from training.config import make_config
from training.schedule import Schedule

# smoke-sized, yet improving clearly between candidates: a quarter-width network, batch 16,
# 16 steps an epoch, a candidate every 4 epochs (points by epoch, not by the clock: the test
# must not depend on this machine's speed), the newest two versions kept
PROGRESSIVE = [
    "epochs=12", "time_budget_s=3600", "publish_every_epochs=4", "keep_versions=2",
    "width=0.25", "batch_size=16", "train_samples=512", "epoch_images=256", "eval_samples=500",
    "gen_lr=2e-4", "disc_lr=2e-4", "beta_1=0.5", "ema_decay=0.99", "category_from_z=true",
]  # fmt: skip


def test_schedule_points_follow_the_profile() -> None:
    cfg = make_config("smoke", ["time_budget_s=100", "publish_at_s=10,30", "publish_every_s=25"])
    schedule = Schedule.of(cfg)
    assert schedule.points == (10.0, 30.0, 55.0, 80.0, 100.0)
    assert schedule.due(-1, 10.0) and not schedule.due(10.0, 29.9) and schedule.due(10.0, 31)
    assert schedule.due(30.0, 99.0)  # several points passed: one candidate
    assert schedule.next_point(30.0) == 55.0 and schedule.next_point(100.0) is None
    assert schedule.early_until == 30.0  # a fresh machine's classifier waits until then


def _state(run: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((run / "state.json").read_text())
    except FileNotFoundError:
        return {}
    return state


def _served(url: str) -> int | None:
    r = requests.get(f"{url}/api/generar-diseno", params={"seed": 1}, timeout=60)
    return int(r.headers["x-model-version"]) if r.status_code == 200 else None


def _training(url: str) -> dict[str, Any]:
    training: dict[str, Any] = requests.get(f"{url}/api/training", timeout=30).json()["training"]
    return training


@pytest.mark.slow
def test_versions_improve_and_are_served_in_turn(
    tmp_path: Path,
    classifier_path: Path,
    data_dir: Path,
    chromium_or_none: Any,
) -> None:
    base, jobs_dir = tmp_path / "fashion_gan", tmp_path / "jobs"
    cond_base = tmp_path / "fashion_gan_cond"  # beside it: the gateway's and the job's default
    base.mkdir()
    run = jobs_dir / "run-smoke"  # where the job runner puts a smoke job's run
    settings = Settings(  # type: ignore[call-arg]
        backend="embedded",
        model_base_path=base,
        train_on_miss=False,
        poll_interval_s=0.2,
        jobs_dir=jobs_dir,
    )
    # the gateway's own job runner, as train-on-miss starts it, with the smoke-sized recipe
    sets = [a for s in PROGRESSIVE for a in ("--set", s)]
    extra = ("--classifier", str(classifier_path), "--data-dir", str(data_dir), *sets)
    jobs = TrainingJobs(jobs_dir, base, extra_args=extra)
    seen: list[int] = []
    with serve(create_app(settings)) as url:
        # the first run is killed once it has published its first version
        job, started = jobs.start("smoke", automatic=False)
        assert started and job.pid is not None
        wait_for(lambda: _state(run).get("published_versions"), 240, "the first version")
        # the same job's first version of the class-conditional model: dresses on request
        wait_for(lambda: list_versions(cond_base), 120, "the conditional model's first version")
        dresses = f"{url}/api/generar-diseno?category=vestido&seed=3"
        dress = wait_for(
            lambda: (r := requests.get(dresses, timeout=60)).status_code == 200 and r, 30, "dresses"
        )
        assert dress.headers["x-model-name"] == "fashion_gan_cond"
        assert dress.headers["x-category"] == "dress"
        os.killpg(job.pid, signal.SIGKILL)  # the supervisor and the trainer, as a node dies
        wait_for(lambda: jobs.state().state == "failed", 30, "the killed job's state")
        killed_at = _state(run)
        # started again, it goes on from its last epoch with its clock and versions
        job, started = jobs.start("smoke", automatic=False)
        assert started
        now = wait_for(lambda: (t := _training(url))["improving"] and t, 120, "improving")
        # /api/training says, as data, that the model is still improving and when next
        assert now["state"] == "running" and now["budget_s"] == 3600
        assert now["next_candidate_at"] and now["published"] == killed_at["published_versions"]
        assert now["companion"]["model"] == "fashion_gan_cond"
        if chromium_or_none is not None:  # the gallery says the same to a person
            page = chromium_or_none
            open_page(page, f"{url}/?seed=5")
            wait_for(lambda: page.find_element("id", "improving").is_displayed(), 30, "banner")
            text = page.find_element("id", "improving-text").text
            assert "still improving" in text and "next candidate is due" in text, text
        while jobs.state().state == "running":
            if (v := _served(url)) is not None:
                seen.append(v)
            time.sleep(0.1)
        final = jobs.state()
        assert final.state == "succeeded", final.log_tail
        newest = list_versions(base)[-1]
        wait_for(lambda: _served(url) == newest, 30, "the newest version served")
        seen.append(newest)
        assert not _training(url)["improving"]

    log = (jobs_dir / "train.log").read_text()
    assert "Reanudando desde la época" in log
    state = _state(run)
    assert state["finished"] and state["completed_epochs"] == 12
    assert state["clock_s"] > killed_at["clock_s"]
    published = state["published_versions"]
    assert len(published) >= 2 and published == sorted(published), state["candidates"]
    assert published[: len(killed_at["published_versions"])] == killed_at["published_versions"]
    by_version = {c["version"]: c for c in state["candidates"] if "version" in c}
    for v in published[1:]:
        # the gate: each later version beat the version served when it was judged
        entry = by_version[v]
        assert entry["verdict"].endswith(": better"), entry
        assert entry["fid"] < entry["served_fid"] * 0.97
    # the gateway served the versions in turn, newest last, without a restart
    assert seen == sorted(seen) and len(set(seen)) >= 2 and seen[-1] == published[-1]
    # keep_versions=2: the older ones are gone, the cards of the kept ones say how they rank
    assert list_versions(base) == published[-2:]
    fids = [read_card(version_dir(base, v))["quality"]["fid"] for v in published[-2:]]
    assert fids[1] < fids[0]
    # one conditional version for each first-model version, pruned alike; measured per
    # category once the evaluator is there (here from the start)
    assert len(state["companion_versions"]) == len(published)
    assert list_versions(cond_base) == state["companion_versions"][-2:]
    card = read_card(version_dir(cond_base, state["companion_versions"][-1]))
    assert card["conditional"] and len(card["quality"]["fid_per_class"]) == 10


def test_pruning_keeps_the_newest_and_every_version_a_config_names(tmp_path: Path) -> None:
    base = tmp_path / "fashion_gan"
    for v in range(1, 7):
        (base / str(v)).mkdir(parents=True)
    config = tmp_path / "models.config"
    config.write_text(labels_config({"stable": 2}, versions=[2, 3]))
    protected = protected_versions(config, "fashion_gan")
    assert protected == {2, 3}
    assert prune(base, 2, protected, log=lambda _: None) == [1, 4]
    assert list_versions(base) == [2, 3, 5, 6]
    assert not [p for p in os.listdir(base) if p.startswith(".")]  # nothing left half-deleted
    config.write_text("this is not a models.config")
    assert prune(base, 1, protected_versions(config, "fashion_gan"), log=print) == []
