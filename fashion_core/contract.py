"""The serving contract: what every published version takes and returns, and the names that
REST and gRPC clients address. Read by export (writes it), gateway and clients (call it)."""

from __future__ import annotations

import re
from typing import Final

MODEL_NAME: Final = "fashion_gan"
# serving_default: z float32 [-1, LATENT_DIM] -> images float32 [-1, 28, 28, 1] in [-1, 1]
SIGNATURE: Final = "serving_default"
INPUT: Final = "z"
OUTPUT: Final = "images"
LATENT_DIM: Final = 100  # the seed's noise vector; each version's model card carries its own
IMAGE_SHAPE: Final = (28, 28, 1)

# the class-conditional model, served beside the first under a name of its own:
# serving_default: z float32 [-1, LATENT_DIM], category int64 [-1] (0-9) -> images as above
COND_MODEL_NAME: Final = "fashion_gan_cond"
CATEGORY: Final = "category"
# Fashion-MNIST's ten labels in the order of their indices, in English and in Spanish
CATEGORIES_EN: Final = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
CATEGORIES_ES: Final = (
    "camiseta",
    "pantalón",
    "jersey",
    "vestido",
    "abrigo",
    "sandalia",
    "camisa",
    "zapatilla",
    "bolso",
    "botín",
)

# training recipes (training/config.py defines them; the gateway and job runner accept the names)
PROFILES: Final = ("seed", "smoke", "quick", "default")

# ModelVersionStatus.State (tensorflow_serving/apis/get_model_status.proto), number -> name
VERSION_STATES: Final = {
    0: "UNKNOWN",
    10: "START",
    20: "LOADING",
    30: "AVAILABLE",
    40: "UNLOADING",
    50: "END",
}

# a version label starts with a letter or digit: "." and ".." would be path segments that an
# HTTP client folds away (/labels/../metadata is the newest version's metadata, served as if
# pinned); the gateway's validator and the Python clients both refuse anything else
LABEL: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
