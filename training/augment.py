"""DiffAugment (Zhao et al. 2020) for the discriminator: random shifts and cut-outs that are
differentiable, so the generator learns through them.

A Keras layer at the discriminator's input, active only with ``training=True``: real and
generated images are both augmented, each draw independent, and the discriminator never sees
an augmented image when it is not training. Written in ``keras.ops`` with the layer's own
``SeedGenerator`` (whose state is a variable), so the same layer runs in the TensorFlow and the
JAX step. A shift is a product with two one-hot shift matrices (28x28 each): no gather, no
image-size loop, and its gradient is the transposed shift.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

BACKGROUND = -1.0  # Fashion-MNIST's black, in [-1, 1]


def _shift_matrices(shift: Any, size: int) -> Any:
    """(B,) integer shifts -> (B, size, size) with m[b, i, j] = 1 where j == i - shift[b]:
    rows that would read outside the image read nothing."""
    i = ops.arange(size)[None, :, None]
    j = ops.arange(size)[None, None, :]
    return ops.cast(ops.equal(j, i - shift[:, None, None]), "float32")


@keras.saving.register_keras_serializable(package="fashion_gan")
class DiffAugment(keras.layers.Layer):  # type: ignore[misc]
    def __init__(self, policy: str = "translation", seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images: Any, training: bool | None = None) -> Any:
        if not training or self.policy == "none":
            return images
        x = images
        if "translation" in self.policy:
            x = self._translate(x, ratio=0.125)
        if "cutout" in self.policy:
            x = self._cutout(x, ratio=0.5)
        return x

    def _translate(self, x: Any, ratio: float) -> Any:
        batch, size = ops.shape(x)[0], x.shape[1]
        r = max(1, int(size * ratio + 0.5))  # 3 pixels at 28x28, as DiffAugment's 1/8
        dy = keras.random.randint((batch,), -r, r + 1, seed=self.seed_generator)
        dx = keras.random.randint((batch,), -r, r + 1, seed=self.seed_generator)
        # in the images' dtype: bfloat16 under a mixed-precision policy
        sy = ops.cast(_shift_matrices(dy, size), x.dtype)
        sx = ops.cast(_shift_matrices(dx, size), x.dtype)
        # shift (x - background) so that what moves in from outside is background, not zero
        centred = x[..., 0] - BACKGROUND
        moved = ops.einsum("bik,bkl,bjl->bij", sy, centred, sx)
        return (moved + BACKGROUND)[..., None]

    def _cutout(self, x: Any, ratio: float) -> Any:
        batch, size = ops.shape(x)[0], x.shape[1]
        half = int(size * ratio + 0.5) // 2
        cy = keras.random.randint((batch,), 0, size, seed=self.seed_generator)
        cx = keras.random.randint((batch,), 0, size, seed=self.seed_generator)
        idx = ops.arange(size)
        in_y = ops.abs(idx[None, :] - cy[:, None]) < half  # (B, size)
        in_x = ops.abs(idx[None, :] - cx[:, None]) < half
        hole = ops.logical_and(in_y[:, :, None], in_x[:, None, :])
        # DiffAugment fills the hole with 0: mid-grey in [-1, 1]
        return ops.where(hole[..., None], 0.0, x)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "policy": self.policy, "seed": self.seed}
