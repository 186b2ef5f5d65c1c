"""Profiles and overrides: typed, and unknown keys are errors."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from training.config import PROFILES, ConfigError, make_config


def test_seed_profile_is_the_seed_recipe() -> None:
    cfg = PROFILES["seed"]
    assert (cfg.epochs, cfg.batch_size, cfg.gen_lr, cfg.disc_lr) == (50, 64, 1e-4, 1e-4)
    assert cfg.latent_dim == 100 and cfg.train_samples is None


def test_overrides_are_typed() -> None:
    cfg = make_config("smoke", ["epochs=5", "gen_lr=3e-4", "train_samples=none", "jit_compile=1"])
    assert (cfg.epochs, cfg.gen_lr, cfg.train_samples, cfg.jit_compile) == (5, 3e-4, None, True)


@pytest.mark.parametrize(
    "override",
    [
        "epoch=5",
        "epochs",
        "epochs=five",
        "jit_compile=maybe",
        "epochs=0",
        "loss=wasserstein",
        "precision=float16",
        "ema_decay=1",
        "devices=3",  # 64 images do not split evenly over 3 devices
    ],
)
def test_bad_overrides_are_refused(override: str) -> None:
    with pytest.raises(ConfigError):
        make_config("quick", [override])


def test_unknown_profile() -> None:
    with pytest.raises(ConfigError, match="choose one of"):
        make_config("huge")


def test_cli_help_documents_every_option() -> None:
    proc = run_cli("training", "--help", timeout=60)
    assert proc.returncode == 0
    for option in (
        "--profile",
        "--set",
        "--model-base-path",
        "--data-dir",
        "--run-dir",
        "--fresh",
        "--keras-out",
        "--classifier",
        "--no-publish",
        "--quiet",
    ):
        assert option in proc.stdout


def test_cli_bad_override_exits_2_with_a_sentence() -> None:
    proc = run_cli("training", "--profile", "smoke", "--set", "epochz=1", timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not key=value with a known key" in proc.stderr


def test_cli_more_devices_than_there_are_is_one_sentence(tmp_path: object) -> None:
    proc = run_cli(
        "training", "--profile", "smoke", "--set", "devices=4", "--no-publish",
        "--run-dir", f"{tmp_path}/run", timeout=120,
        env_extra={"KERAS_BACKEND": "jax", "XLA_FLAGS": ""},
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "devices=4 but JAX sees 1 devices" in proc.stderr
    assert "XLA_FLAGS=--xla_force_host_platform_device_count=4" in proc.stderr
