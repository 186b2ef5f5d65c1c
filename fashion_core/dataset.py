"""Fashion-MNIST: read and check the four IDX files, normalise to [-1, 1]. No TensorFlow
(training's tf.data pipeline is in training/data.py; the evaluator reads the same arrays).

Two sources, as the seed: ``keras.datasets.fashion_mnist.load_data()`` (downloads into
KERAS_HOME on a machine with internet), or a folder with the canonical gzip IDX files
(``--data-dir`` / ``FASHION_MNIST_DIR``) for offline machines.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILES = {
    "x_train": ("train-images-idx3-ubyte.gz", 60000),
    "y_train": ("train-labels-idx1-ubyte.gz", 60000),
    "x_test": ("t10k-images-idx3-ubyte.gz", 10000),
    "y_test": ("t10k-labels-idx1-ubyte.gz", 10000),
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049  # IDX: ubyte data, 3 dims / 1 dim
# what a model card records as the data's source: how it was read, never where (sha256 says what)
IDX_SOURCE = "fashion-mnist IDX files (FASHION_MNIST_DIR or --data-dir)"
KERAS_SOURCE = "keras.datasets.fashion_mnist"
NUM_CLASSES = 10


class DataError(Exception):
    """The data set is missing, truncated, corrupt or not downloadable (message: one sentence)."""


@dataclass(frozen=True)
class FashionMNIST:
    x_train: np.ndarray  # (60000, 28, 28) uint8
    y_train: np.ndarray  # (60000,) uint8 in 0..9
    x_test: np.ndarray  # (10000, 28, 28) uint8
    y_test: np.ndarray
    source: str  # IDX_SOURCE or KERAS_SOURCE: portable, for the model card
    sha256: str  # of the four arrays, for the model card
    folder: Path | None = None  # where the IDX files were read (for logs; a path of this machine)


def _read_idx(path: Path, count: int, is_images: bool) -> np.ndarray:
    if not path.is_file():
        raise DataError(
            f"{path} is missing: put the four Fashion-MNIST IDX gzip files in {path.parent} "
            "or point FASHION_MNIST_DIR / --data-dir at a folder that has them."
        )
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a complete gzip file ({exc}); download it again.") from None
    magic, dims = (IMAGE_MAGIC, 3) if is_images else (LABEL_MAGIC, 1)
    header = 4 + 4 * dims
    if len(raw) < header or struct.unpack(">I", raw[:4])[0] != magic:
        raise DataError(
            f"{path} has no IDX magic number {magic}; it is not the file its name says."
        )
    shape = struct.unpack(">" + "I" * dims, raw[4:header])
    expected = (count, 28, 28) if is_images else (count,)
    if shape != expected:
        raise DataError(f"{path} holds shape {shape}, expected {expected}; download it again.")
    body = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if body.size != int(np.prod(expected)):
        raise DataError(
            f"{path} is truncated ({body.size} of {int(np.prod(expected))} bytes); "
            "download it again."
        )
    array = body.reshape(expected)
    if not is_images and int(array.max()) >= NUM_CLASSES:
        raise DataError(f"{path} has labels outside 0..9; download it again.")
    return array


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def load_from_dir(folder: Path) -> FashionMNIST:
    """Read the four canonical files from ``folder``, checking magic numbers, counts and labels."""
    if not folder.is_dir():
        raise DataError(
            f"Data folder {folder} does not exist: point FASHION_MNIST_DIR / --data-dir at the "
            "folder with the four Fashion-MNIST IDX gzip files."
        )
    arrays = {
        key: _read_idx(folder / name, count, key.startswith("x"))
        for key, (name, count) in FILES.items()
    }
    return FashionMNIST(
        **arrays, source=IDX_SOURCE, sha256=_digest(*arrays.values()), folder=folder.resolve()
    )


def load_with_keras() -> FashionMNIST:
    """Keras' loader: uses the KERAS_HOME cache, downloads on a miss."""
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    except Exception as exc:  # keras raises bare Exception on a failed download
        raise DataError(
            f"Fashion-MNIST is not cached and could not be downloaded ({type(exc).__name__}); "
            "connect to the internet or set FASHION_MNIST_DIR / --data-dir to a folder with the "
            "four IDX gzip files."
        ) from None
    for arr, shape in ((x_train, (60000, 28, 28)), (x_test, (10000, 28, 28))):
        if arr.shape != shape:
            raise DataError(
                f"Keras' Fashion-MNIST cache has shape {arr.shape}; delete it and retry."
            )
    return FashionMNIST(
        x_train,
        y_train,
        x_test,
        y_test,
        source=KERAS_SOURCE,
        sha256=_digest(x_train, y_train, x_test, y_test),
    )


def load(data_dir: Path | None) -> FashionMNIST:
    return load_from_dir(data_dir) if data_dir is not None else load_with_keras()


def to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [-1, 1], the generator's tanh range."""
    return (images.astype(np.float32)[..., None] - 127.5) / 127.5
