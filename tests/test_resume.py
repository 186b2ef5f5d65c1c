"""Nothing a training run did is lost: killed, the same command goes on from the last finished
epoch; finished but not published (evaluation or publish failed), the same command publishes it
without training again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ENV, REPO


def test_resume_after_kill_then_publish_after_a_failed_publish(
    tmp_path: Path, data_dir: Path, classifier_path: Path
) -> None:
    run_dir, base = tmp_path / "run", tmp_path / "models" / "fashion_gan"
    base.parent.mkdir()
    base.write_text("a file where the base path should be: publishing fails")
    cmd = [
        sys.executable, "-m", "training", "--profile", "smoke", "--set", "epochs=3",
        "--data-dir", str(data_dir), "--run-dir", str(run_dir), "--model-base-path", str(base),
        "--keras-out", str(tmp_path / "g.keras"), "--classifier", str(classifier_path), "--quiet",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Época de moda 1/3" in line:
            break
    # state.json is written right after the line; wait for it, then kill without warning
    for _ in range(200):
        state = json.loads((run_dir / "state.json").read_text())
        if state["completed_epochs"] >= 1:
            break
        __import__("time").sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = json.loads((run_dir / "state.json").read_text())["completed_epochs"]
    assert 1 <= done_before < 3
    assert not (tmp_path / "g.keras").exists()

    again = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    # the training finished; the publish failed: the run is kept, in one sentence
    assert again.returncode == 1 and "the run is kept" in again.stderr, again.stderr[-2000:]
    assert "Traceback" not in again.stderr
    assert f"Reanudando desde la época {done_before}/3" in again.stdout
    epochs_run = [n for n in range(1, 4) if f"Época de moda {n}/3" in again.stdout]
    assert epochs_run == list(range(done_before + 1, 4))
    state = json.loads((run_dir / "state.json").read_text())
    assert state["completed_epochs"] == 3 and len(state["seconds_per_epoch"]) == 3
    assert sorted(p.name for p in (run_dir / "sheets").iterdir()) == [
        "epoch_001.png",
        "epoch_002.png",
        "epoch_003.png",
    ]
    assert (tmp_path / "g.keras").is_file()

    base.unlink()
    last = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300)
    assert last.returncode == 0, last.stderr[-2000:]
    assert "se publica sin reentrenar" in last.stdout and "Época de moda" not in last.stdout
    assert "Publicada la versión 1" in last.stdout
    assert json.loads((run_dir / "state.json").read_text())["published_version"] == 1


def test_unfinished_run_of_another_config_is_set_aside(tmp_path: Path, data_dir: Path) -> None:
    """An unfinished run whose config changed (a profile retuned since) must not block every
    later job with an error nobody can act on: it is kept under another name, and training
    starts afresh."""
    run_dir = tmp_path / "run"
    (run_dir).mkdir()
    old = {"config": {"other": 1}, "completed_epochs": 1}
    (run_dir / "state.json").write_text(json.dumps(old))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "--profile",
            "smoke",
            "--data-dir",
            str(data_dir),
            "--run-dir",
            str(run_dir),
            "--keras-out",
            str(tmp_path / "g.keras"),
            "--no-publish",
            "--quiet",
        ],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.set-aside-")]
    assert len(aside) == 1 and json.loads((aside[0] / "state.json").read_text()) == old
    assert f"kept as {aside[0].name}" in proc.stdout
    assert json.loads((run_dir / "state.json").read_text())["completed_epochs"] == 2


def test_a_run_from_before_a_new_option_is_the_same_config() -> None:
    """A run started before ``TrainConfig`` gained a field has no such key: it trained with the
    field's default, so it resumes; a stored value that differs is another config."""
    from training.config import make_config
    from training.runs import same_config

    cfg = make_config("seed")
    stored = cfg.to_dict()
    del stored["r1_gamma"], stored["augment"]  # options newer than the run
    assert same_config(stored, cfg)
    assert not same_config({**stored, "batch_size": 32}, cfg)
    assert not same_config({**stored, "gone_option": 1}, cfg)
    quick = make_config("quick")  # its r1_gamma is not the default: an old quick run differs
    old_quick = quick.to_dict()
    del old_quick["r1_gamma"]
    assert not same_config(old_quick, quick) and not same_config(None, cfg)
