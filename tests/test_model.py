"""The seed's architecture: shapes, output range, and a train step that moves both losses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from training.model import build_discriminator, build_generator


def test_generator_shapes_and_range() -> None:
    g = build_generator()
    assert g.input_shape == (None, 100) and g.output_shape == (None, 28, 28, 1)
    out = np.asarray(g(np.random.default_rng(0).standard_normal((4, 100)) * 10, training=False))
    assert out.min() >= -1 and out.max() <= 1  # tanh
    names = [type(layer).__name__ for layer in g.layers]
    assert names.count("Conv2DTranspose") == 3 and names.count("BatchNormalization") == 3
    assert g.layers[1].units == 7 * 7 * 256 and not g.layers[1].use_bias


def test_discriminator_shapes() -> None:
    d = build_discriminator()
    assert d.input_shape == (None, 28, 28, 1) and d.output_shape == (None, 1)
    names = [type(layer).__name__ for layer in d.layers]
    assert names.count("Conv2D") == 2 and names.count("Dropout") == 2


def _weights(net: Any) -> list[np.ndarray]:
    return [np.array(w) for w in net.get_weights()]


def test_one_compiled_call_updates_both_networks_and_the_ema() -> None:
    """The trainer's TensorFlow step (two steps per call): both networks move, and the EMA
    generator follows the live one without equalling it."""
    from training.config import make_config
    from training.devices import place
    from training.parts import build_parts

    cfg = make_config("smoke", ["batch_size=8", "steps_per_execution=2", "ema_decay=0.99"])
    placement = place(cfg)
    with placement.scope():
        parts = build_parts(cfg)
    assert parts.shown is parts.ema
    g0, d0, e0 = _weights(parts.generator), _weights(parts.discriminator), _weights(parts.ema)
    rng = np.random.default_rng(1)
    real = rng.uniform(-1, 1, (2, 8, 28, 28, 1)).astype(np.float32)
    noise = rng.standard_normal((2, 8, 100)).astype(np.float32)
    g_loss, d_loss = placement.runner(parts, cfg).run(real, noise)
    assert np.isfinite(g_loss) and np.isfinite(d_loss) and d_loss > 0
    g1, d1, e1 = _weights(parts.generator), _weights(parts.discriminator), _weights(parts.ema)
    assert any(not np.array_equal(a, b) for a, b in zip(g0, g1, strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(d0, d1, strict=True))
    # the EMA moved from its start towards the live weights, and is not a copy of them
    assert any(not np.array_equal(a, b) for a, b in zip(e0, e1, strict=True))
    assert any(not np.allclose(a, b) for a, b in zip(g1, e1, strict=True))
    assert int(parts.g_opt.iterations.numpy()) == 2


def test_ema_decay_warms_up() -> None:
    from training.config import make_config
    from training.parts import ema_decay_at

    cfg = make_config("smoke", ["ema_decay=0.999", "ema_kimg=0"])
    assert float(ema_decay_at(cfg, 0.0)) == pytest.approx(0.1)
    assert float(ema_decay_at(cfg, 90.0)) == pytest.approx(0.91)
    assert float(ema_decay_at(cfg, 1e6)) == pytest.approx(0.999)
    # by half-life in images: 10 kimg at batch 16 -> 0.5 ** (16 / 10000), ramped up before
    cfg = make_config("smoke", ["batch_size=16", "ema_kimg=10", "ema_rampup=0.05"])
    assert float(ema_decay_at(cfg, 1e6)) == pytest.approx(0.5 ** (16 / 10000))
    assert float(ema_decay_at(cfg, 0.0)) < float(ema_decay_at(cfg, 1000.0))


@pytest.mark.parametrize("loss", ["nonsat", "hinge"])
def test_losses_reward_the_discriminator_for_telling_apart(loss: str) -> None:
    from training.losses import LOSSES

    sure = LOSSES[loss](np.full((4, 1), 5.0, "float32"), np.full((4, 1), -5.0, "float32"))
    fooled = LOSSES[loss](np.full((4, 1), -5.0, "float32"), np.full((4, 1), 5.0, "float32"))
    # (generator loss, discriminator loss): each side is better off where it wins
    assert float(sure[1]) < float(fooled[1]) and float(sure[0]) > float(fooled[0])


def test_mixed_precision_computes_in_bfloat16_and_exports_float32() -> None:
    from training.config import make_config
    from training.parts import build_parts, float32_generator

    cfg = make_config("smoke", ["precision=mixed_bfloat16"])
    parts = build_parts(cfg)
    assert parts.generator.layers[1].compute_dtype == "bfloat16"
    assert parts.generator.output.dtype == "float32"  # tanh image layer stays float32
    assert parts.discriminator.output.dtype == "float32"  # and so does the logit
    out = float32_generator(parts.generator, cfg)
    assert all(layer.compute_dtype == "float32" for layer in out.layers)
    z = np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32)
    a = np.asarray(out(z, training=False))
    b = np.asarray(parts.generator(z, training=False)).astype(np.float32)
    assert np.abs(a - b).max() < 0.1  # the same weights; only the arithmetic's precision differs


def test_a_batch_that_grows(tmp_path: Path) -> None:
    """batch_growth: each epoch trains with its own batch (a step compiled per size), the
    optimizers' state carries on, and steps and images are counted across the change."""
    from fashion_core.dataset import FashionMNIST
    from training.config import ConfigError, make_config
    from training.train import train

    cfg = make_config(
        "smoke",
        ["epochs=3", "train_samples=64", "batch_size=8", "batch_growth=16@1,32@2", "width=0.25"],
    )
    assert [cfg.batch_at(e) for e in range(4)] == [8, 16, 32, 32]
    assert cfg.steps_before(3, 64) == 8 + 4 + 2
    assert [cfg.images_at_step(s, 64) for s in (8, 9, 12, 13, 14)] == [64, 80, 128, 160, 192]
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    labels = np.zeros(64, dtype=np.uint8)
    data = FashionMNIST(pixels, labels, pixels[:8], labels[:8], "test", "none")
    steps: list[int] = []
    result = train(cfg, data, tmp_path / "run", log=lambda _: None, verbose=0,
                   on_chunk=lambda step, shown: steps.append(step))  # fmt: skip
    assert steps[-1] == 14 and result.state["completed_epochs"] == 3
    with pytest.raises(ConfigError, match="batch@epoch"):
        make_config("smoke", ["batch_growth=32 at 4"])
