"""Where the suite reads Fashion-MNIST, as the README says: a local copy of the four IDX gzip files
(``FASHION_MNIST_DIR``, else ``../shared/datasets/fashion-mnist`` beside the clone), else Keras'
own cache (``KERAS_HOME/datasets/fashion-mnist``, by default ``~/.keras/...``), which Keras fills
on the first use by downloading the files. Both are folders ``load_from_dir`` reads."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from fashion_core.dataset import FILES, DataError

REPO = Path(__file__).resolve().parents[1]
# keras.datasets.fashion_mnist.load_data() downloads from here into the same cache folder
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


def local_copy(environ: Mapping[str, str] = os.environ, repo: Path = REPO) -> Path | None:
    """``FASHION_MNIST_DIR`` when set, else the shared copy beside the clone when it exists;
    None means Keras' cache."""
    if environ.get("FASHION_MNIST_DIR"):
        return Path(environ["FASHION_MNIST_DIR"])
    shared = repo.parent / "shared" / "datasets" / "fashion-mnist"
    return shared if shared.is_dir() else None


def keras_cache() -> Path:
    """Keras' cache folder with the four files, downloaded into it on a miss (what Keras'
    loader does; get_file then also names the folder)."""
    import keras

    try:
        paths = [
            keras.utils.get_file(
                name,
                origin=KERAS_ORIGIN + name,
                cache_subdir=os.path.join("datasets", "fashion-mnist"),
            )
            for name, _ in FILES.values()
        ]
    except Exception as exc:  # keras raises bare Exception on a failed download
        raise DataError(
            f"Fashion-MNIST is neither local nor in Keras' cache, and the download failed ({exc}); "
            "set FASHION_MNIST_DIR to a folder with the four IDX gzip files."
        ) from None
    return Path(paths[0]).parent
