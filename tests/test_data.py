"""The data loader on the real files, and on missing, truncated and corrupt copies."""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fashion_core.dataset import FILES, DataError, load_from_dir, to_unit_range
from tests.conftest import ENV, REPO, run_cli
from tests.fashion_data import local_copy


@pytest.fixture()
def copy_dir(tmp_path: Path, data_dir: Path) -> Path:
    out = tmp_path / "fm"
    shutil.copytree(data_dir, out)
    return out


def test_real_files_load_with_checked_shapes(data_dir: Path) -> None:
    d = load_from_dir(data_dir)
    assert d.x_train.shape == (60000, 28, 28) and d.x_train.dtype == np.uint8
    assert d.x_test.shape == (10000, 28, 28)
    assert d.y_train.shape == (60000,) and set(np.unique(d.y_train)) == set(range(10))
    # the README's published statistics, to its precision
    assert abs(d.x_train.mean() / 255 - 0.2860) < 5e-4
    assert len(d.sha256) == 64


def test_normalised_to_unit_range_with_channel_axis(data_dir: Path) -> None:
    x = to_unit_range(load_from_dir(data_dir).x_train[:1000])
    assert x.shape == (1000, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0


def test_feed_chunks_cover_an_epoch_without_repeats() -> None:
    from training.data import Feed

    images = np.zeros((650, 28, 28), np.uint8)
    images[:, 0, 0], images[:, 0, 1] = np.divmod(np.arange(650), 256)  # each image unique
    feed = Feed.from_uint8(images, batch_size=64, latent_dim=100, steps_per_execution=4, seed=7)
    chunks = list(feed.chunks(epoch=0))
    # 10 full batches (the remainder of 10 images dropped, as the seed's drop_remainder), in
    # chunks of 4 steps and a last one of 2
    assert [c[0].shape for c in chunks] == [(4, 64, 28, 28, 1)] * 2 + [(2, 64, 28, 28, 1)]
    assert [c[1].shape for c in chunks] == [(4, 64, 100)] * 2 + [(2, 64, 100)]
    real = np.concatenate([c[0] for c in chunks]).reshape(640, -1)
    assert real.dtype == np.float32 and real.min() >= -1 and real.max() <= 1
    assert len({row.tobytes() for row in real}) == 640  # no image twice in one epoch


def test_feed_is_the_same_for_the_same_epoch_and_new_for_the_next() -> None:
    from training.data import Feed, prefetched

    images = np.random.default_rng(0).integers(0, 256, (256, 28, 28), dtype=np.uint8)
    feed = Feed.from_uint8(images, batch_size=32, latent_dim=100, steps_per_execution=3, seed=1)
    a, again, b = (list(prefetched(feed.chunks(e))) for e in (2, 2, 3))
    for x, y in zip(a, again, strict=True):  # a resumed epoch sees exactly the same batches
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
    assert not np.array_equal(a[0][0], b[0][0]) and not np.array_equal(a[0][1], b[0][1])


def test_prefetch_raises_the_producers_error() -> None:
    from training.data import prefetched

    def broken() -> Any:
        yield np.zeros(1), np.zeros(1)
        raise ValueError("bad chunk")

    out = prefetched(broken())
    next(out)
    with pytest.raises(ValueError, match="bad chunk"):
        next(out)


def test_keras_loader_reads_the_keras_home_cache(copy_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "keras_home"
    (home / "datasets").mkdir(parents=True)
    shutil.copytree(copy_dir, home / "datasets" / "fashion-mnist")
    # Keras reads KERAS_HOME when it is imported: a fresh process, as a user's would be
    code = "from fashion_core.dataset import load; d = load(None); print(d.x_train.shape, d.source)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**ENV, "KERAS_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(60000, 28, 28) keras" in proc.stdout  # cached: no download was attempted


def test_the_suite_reads_a_local_copy_first(tmp_path: Path) -> None:
    clone, shared = tmp_path / "clone", tmp_path / "shared" / "datasets" / "fashion-mnist"
    assert local_copy({}, clone) is None  # then Keras' cache
    shared.mkdir(parents=True)
    assert local_copy({}, clone) == shared
    assert local_copy({"FASHION_MNIST_DIR": "/data/fm"}, clone) == Path("/data/fm")


def test_without_a_local_copy_the_suite_reads_keras_cache(data_dir: Path, tmp_path: Path) -> None:
    """No FASHION_MNIST_DIR and no ../shared: the suite's data folder is Keras' cache in
    KERAS_HOME, used as it is (a download would fail: the proxy named here does not listen)."""
    home = tmp_path / "keras_home"
    cache = home / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for name, _ in FILES.values():
        (cache / name).symlink_to(data_dir / name)
    code = (
        "from pathlib import Path\n"
        "from tests.fashion_data import keras_cache, local_copy\n"
        f"assert local_copy({{}}, Path({str(tmp_path / 'clone')!r})) is None\n"
        "print(keras_cache())\n"
    )
    env = {k: v for k, v in ENV.items() if k != "FASHION_MNIST_DIR"}
    dead = "http://127.0.0.1:9"
    env.update(KERAS_HOME=str(home), HTTPS_PROXY=dead, https_proxy=dead, NO_PROXY="")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-1] == str(cache)
    assert load_from_dir(cache).x_test.shape == (10000, 28, 28)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_from_dir(tmp_path / "nope")


def test_missing_file(copy_dir: Path) -> None:
    (copy_dir / FILES["y_test"][0]).unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz is missing"):
        load_from_dir(copy_dir)


def test_truncated_gzip(copy_dir: Path) -> None:
    path = copy_dir / FILES["x_train"][0]
    path.write_bytes(path.read_bytes()[:100000])
    with pytest.raises(DataError, match="not a complete gzip file"):
        load_from_dir(copy_dir)


def test_truncated_payload(copy_dir: Path) -> None:
    path = copy_dir / FILES["x_test"][0]
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-784]))
    with pytest.raises(DataError, match="truncated"):
        load_from_dir(copy_dir)


def test_wrong_magic(copy_dir: Path) -> None:
    # a labels file where the images should be
    shutil.copy(copy_dir / FILES["y_train"][0], copy_dir / FILES["x_train"][0])
    with pytest.raises(DataError, match="magic number 2051"):
        load_from_dir(copy_dir)


def test_labels_out_of_range(copy_dir: Path) -> None:
    path = copy_dir / FILES["y_test"][0]
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8 + 5] = 42
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match=r"labels outside 0\.\.9"):
        load_from_dir(copy_dir)


def test_wrong_count(copy_dir: Path) -> None:
    path = copy_dir / FILES["y_test"][0]
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(struct.pack(">II", 2049, 9999) + raw[8:-1]))
    with pytest.raises(DataError, match=r"shape \(9999,\)"):
        load_from_dir(copy_dir)


def test_cli_reports_bad_data_in_one_sentence(copy_dir: Path, tmp_path: Path) -> None:
    (copy_dir / FILES["x_train"][0]).unlink()
    proc = run_cli(
        "training",
        "--profile",
        "smoke",
        "--data-dir",
        str(copy_dir),
        "--model-base-path",
        str(tmp_path / "m"),
        "--run-dir",
        str(tmp_path / "r"),
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "train-images-idx3-ubyte.gz is missing" in proc.stderr
    assert not (tmp_path / "m").exists()
