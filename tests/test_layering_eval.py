"""The evaluator's network never reaches training: a discriminator or loss that used the
network that scores the designs would teach the generator to please the metric, and the
metric would stop measuring anything (issue 16)."""

from __future__ import annotations

from tests.conftest import REPO
from tests.test_layering import imports

# what a train step runs: the networks, the losses, the steps and their parts
TRAINING_STEP = ["model.py", "losses.py", "parts.py", "augment.py", "step_tf.py", "step_jax.py"]


def test_the_train_step_never_imports_the_evaluator() -> None:
    for name in TRAINING_STEP:
        imported = imports(REPO / "training" / name)
        assert not {m for m in imported if m.split(".")[0] == "evaluation"}, name
