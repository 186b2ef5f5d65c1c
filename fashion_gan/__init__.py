"""The seed's Python API and the clients of the service.

    from fashion_gan import cargar_o_entrenar, generar_muestra_ropa  # the model, in-process
    from fashion_gan import GatewayClient   # the HTTP API (never imports TensorFlow)
    from fashion_gan import ServingClient   # TF Serving's predict, REST or gRPC (no TensorFlow)

Names are resolved on first use, so importing a client does not import TensorFlow; the model
API imports it only when it loads a version.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fashion_gan.client import GatewayClient, GatewayError, Sheet
    from fashion_gan.model import (
        Generador,
        ModelError,
        Muestra,
        cargar_o_entrenar,
        generar_muestra_ropa,
    )
    from fashion_gan.serving import Prediction, ServingClient, ServingError

_WHERE = {
    "cargar_o_entrenar": "fashion_gan.model",
    "generar_muestra_ropa": "fashion_gan.model",
    "Generador": "fashion_gan.model",
    "Muestra": "fashion_gan.model",
    "ModelError": "fashion_gan.model",
    "GatewayClient": "fashion_gan.client",
    "GatewayError": "fashion_gan.client",
    "Sheet": "fashion_gan.client",
    "ServingClient": "fashion_gan.serving",
    "ServingError": "fashion_gan.serving",
    "Prediction": "fashion_gan.serving",
}
__all__ = [
    "GatewayClient",
    "GatewayError",
    "Generador",
    "ModelError",
    "Muestra",
    "Prediction",
    "ServingClient",
    "ServingError",
    "Sheet",
    "cargar_o_entrenar",
    "generar_muestra_ropa",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'fashion_gan' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
