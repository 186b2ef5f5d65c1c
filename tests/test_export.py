"""Two smoke runs of the CLI publish versions 1 and 2 that TF Serving could load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from export.warmup import WARMUP_BATCHES
from fashion_core.dataset import IDX_SOURCE, KERAS_SOURCE
from fashion_core.versions import list_versions
from tests.conftest import ENV, run_cli


def test_two_versions_published(smoke_base: Path) -> None:
    assert list_versions(smoke_base) == [1, 2]
    assert not list(smoke_base.glob(".tmp-publish-*"))


@pytest.mark.parametrize("version", [1, 2])
def test_version_has_the_public_signature(smoke_base: Path, version: int) -> None:
    loaded = tf.saved_model.load(str(smoke_base / str(version)))
    fn = loaded.signatures["serving_default"]
    spec = fn.structured_input_signature[1]
    assert list(spec) == ["z"] and spec["z"].dtype == tf.float32
    assert spec["z"].shape.as_list() == [None, 100]
    out = fn.structured_outputs
    assert list(out) == ["images"] and out["images"].shape.as_list() == [None, 28, 28, 1]
    z = np.random.default_rng(0).standard_normal((5, 100)).astype(np.float32) * 5
    a = fn(z=tf.constant(z))["images"].numpy()
    b = fn(z=tf.constant(z))["images"].numpy()
    assert a.shape == (5, 28, 28, 1) and a.min() >= -1 and a.max() <= 1
    np.testing.assert_array_equal(a, b)  # inference mode: same z, same images


def test_saved_model_cli_shows_the_signature(smoke_base: Path) -> None:
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "saved_model_cli"),
            "show",
            "--dir",
            str(smoke_base / "1"),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "inputs['z']" in proc.stdout and "shape: (-1, 100)" in proc.stdout
    assert "outputs['images']" in proc.stdout and "shape: (-1, 28, 28, 1)" in proc.stdout


def test_versions_differ(smoke_base: Path) -> None:
    z = tf.constant(np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32))
    outs = [
        tf.saved_model.load(str(smoke_base / str(v))).signatures["serving_default"](z=z)["images"]
        for v in (1, 2)
    ]
    assert not np.allclose(outs[0].numpy(), outs[1].numpy())


def test_model_card(smoke_base: Path) -> None:
    card = json.loads((smoke_base / "2" / "assets.extra" / "model_card.json").read_text())
    assert card["version"] == 2 and card["latent_dim"] == 100
    assert card["signature"]["outputs"]["images"]["range"] == [-1, 1]
    assert card["training"]["profile"] == "smoke" and card["training"]["config"]["seed"] == 2
    assert card["training"]["epochs"] == 2 and len(card["training"]["seconds_per_epoch"]) == 2
    assert set(card["training"]["final_losses"]) == {"gen_loss", "disc_loss"}
    assert len(card["data"]["sha256"]) == 64
    assert card["packages"]["tensorflow"].startswith("2.21")
    # version 2 trained under JAX on two virtual devices (tests/conftest.py); TF exported it
    assert card["training"]["backend"] == "jax" and len(card["training"]["devices"]) == 2
    assert card["training"]["images_per_s"] > 0 and card["training"]["resumed_from_epoch"] == 0
    q = card["quality"]
    for key in ("fid", "fid_real_floor", "class_kl_to_uniform", "nn_distance_mean"):
        assert np.isfinite(q[key])
    assert q["fid"] > q["fid_real_floor"]  # an untrained smoke generator is worse than real data


def test_card_of_the_tensorflow_version(smoke_base: Path) -> None:
    card = json.loads((smoke_base / "1" / "assets.extra" / "model_card.json").read_text())
    assert card["training"]["backend"] == "tensorflow"
    assert card["training"]["devices"] == ["/cpu:0", "/cpu:1"]  # MirroredStrategy over both


def machine_paths(value: Any, where: str = "card") -> list[str]:
    """The fields of ``value`` that hold a path of this machine: an absolute path whose top
    folder exists here (TensorFlow's device names such as /cpu:0 are not paths)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in machine_paths(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in machine_paths(v, f"{where}[{i}]")]
    if isinstance(value, str):
        for token in value.split():
            parts = Path(token.strip("'\"(),;")).parts
            if len(parts) > 1 and parts[0] == "/" and Path("/", parts[1]).exists():
                return [f"{where} = {value!r}"]
    return []


@pytest.mark.parametrize("version", [1, 2])
def test_card_holds_no_path_of_this_machine(smoke_base: Path, version: int) -> None:
    """A card travels with its version (to TF Serving's hosts, to people): it says how the
    data was read and its hash, not in which folder of the training machine."""
    card = json.loads((smoke_base / str(version) / "assets.extra" / "model_card.json").read_text())
    assert not machine_paths(card), machine_paths(card)
    assert card["data"]["source"] in (IDX_SOURCE, KERAS_SOURCE)
    assert card["training"]["run_dir"] == f"run{version}"  # the run folder's name only
    assert machine_paths({"data": {"source": f"read from {smoke_base}"}})  # the check sees one


def test_warmup_records_are_predict_requests(smoke_base: Path) -> None:
    path = smoke_base / "1" / "assets.extra" / "tf_serving_warmup_requests"
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    sizes = []
    for raw in records:
        log = prediction_log_pb2.PredictionLog.FromString(raw)
        assert log.predict_log.request.model_spec.signature_name == "serving_default"
        z = tf.make_ndarray(log.predict_log.request.inputs["z"])
        assert z.dtype == np.float32 and z.shape[1] == 100
        sizes.append(z.shape[0])
    # one row, and every batch size TF Serving's batching runs (serving_config/batching.config)
    assert sizes == list(WARMUP_BATCHES) == [1, 9, 18, 36, 72]


def test_keras_file_saved(smoke_base: Path) -> None:
    import keras

    g = keras.models.load_model(smoke_base.parent / "g1.keras", compile=False)
    assert g.output_shape == (None, 28, 28, 1)


def test_export_cli_publishes_an_existing_generator(smoke_base: Path, tmp_path: Path) -> None:
    base = tmp_path / "fashion_gan"
    proc = run_cli(
        "export",
        "--generator",
        str(smoke_base.parent / "g1.keras"),
        "--model-base-path",
        str(base),
        "--no-eval",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list_versions(base) == [1]
    z = tf.constant(np.random.default_rng(0).standard_normal((2, 100)).astype(np.float32))
    a = tf.saved_model.load(str(base / "1")).signatures["serving_default"](z=z)["images"]
    b = tf.saved_model.load(str(smoke_base / "1")).signatures["serving_default"](z=z)["images"]
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_export_cli_errors_are_one_sentence(tmp_path: Path) -> None:
    proc = run_cli(
        "export", "--generator", str(tmp_path / "x.keras"), "--model-base-path", str(tmp_path / "m")
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("does not exist: pass a generator saved as .keras.")
