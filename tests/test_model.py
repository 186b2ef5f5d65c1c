"""The seed's architecture: shapes, output range, and a train step that moves both losses."""

from __future__ import annotations

import numpy as np

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


def test_one_compiled_step_updates_both_networks() -> None:
    import keras

    from training.model import GAN

    g, d = build_generator(), build_discriminator()
    gan = GAN(g, d, 100, seed=0)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3), jit_compile=False)
    before_g = [w.copy() for w in g.get_weights()]
    before_d = [w.copy() for w in d.get_weights()]
    real = np.random.default_rng(1).uniform(-1, 1, (16, 28, 28, 1)).astype(np.float32)
    logs = gan.train_on_batch(real, return_dict=True)
    assert set(logs) == {"gen_loss", "disc_loss"} and all(np.isfinite(list(logs.values())))
    assert any(not np.array_equal(a, b) for a, b in zip(before_g, g.get_weights(), strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(before_d, d.get_weights(), strict=True))
