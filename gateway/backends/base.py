"""The one small interface every backend implements, and the values that cross it: the
library's (fashion_gan/tfserving/values.py), so the embedded model and TF Serving's REST and
gRPC transports are interchangeable."""

from __future__ import annotations

from fashion_gan.tfserving.values import LATEST, Generated, ModelStatus, Pin, VersionState
from fashion_gan.tfserving.values import Transport as Backend

__all__ = ["LATEST", "Backend", "Generated", "ModelStatus", "Pin", "VersionState"]
