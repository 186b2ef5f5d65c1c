"""The GAN losses in ``keras.ops``, shared by the TensorFlow and the JAX train steps.

Each returns (generator loss, discriminator loss) as float32 scalars from the discriminator's
logits on real and generated images.
"""

from __future__ import annotations

from typing import Any

from keras import ops


def nonsat(real_logits: Any, fake_logits: Any) -> tuple[Any, Any]:
    """The seed's binary cross-entropy on logits: the discriminator scores real 1 and fake 0;
    the generator maximises log D(G(z)) (non-saturating). softplus(-x) = BCE(1, x)."""
    d = ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))
    g = ops.mean(ops.softplus(-fake_logits))
    return g, d


def hinge(real_logits: Any, fake_logits: Any) -> tuple[Any, Any]:
    """Hinge loss (Geometric GAN / SAGAN): the discriminator pushes real logits above 1 and
    fake ones below -1; the generator raises the fakes' logits."""
    d = ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits))
    g = -ops.mean(fake_logits)
    return g, d


LOSSES = {"nonsat": nonsat, "hinge": hinge}
