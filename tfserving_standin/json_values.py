"""How TF Serving spells values in JSON (util/json_tensor.cc), shared by the request side
(json_request: error messages quote the request) and the response side (json_response).

Floats are written like WriteDecimal: ``%.6g`` when that round-trips, otherwise full precision,
plus ``.0`` on whole numbers (``3.0``, ``9e+06``, bare ``NaN`` / ``Infinity``); dtype names are
tensorflow::DataTypeString's.
"""

from __future__ import annotations

import enum
import json
import math
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from .errors import Code, ServingError

FLT_MAX = float(np.finfo(np.float32).max)

# tensorflow::DataTypeString names, as they appear in error messages.
_DTYPE_NAMES: dict[int, str] = {
    types_pb2.DT_FLOAT: "float",
    types_pb2.DT_DOUBLE: "double",
    types_pb2.DT_INT32: "int32",
    types_pb2.DT_UINT8: "uint8",
    types_pb2.DT_INT16: "int16",
    types_pb2.DT_INT8: "int8",
    types_pb2.DT_STRING: "string",
    types_pb2.DT_COMPLEX64: "complex64",
    types_pb2.DT_INT64: "int64",
    types_pb2.DT_BOOL: "bool",
    types_pb2.DT_BFLOAT16: "bfloat16",
    types_pb2.DT_UINT16: "uint16",
    types_pb2.DT_COMPLEX128: "complex128",
    types_pb2.DT_HALF: "half",
    types_pb2.DT_UINT32: "uint32",
    types_pb2.DT_UINT64: "uint64",
}


class RequestFormat(enum.Enum):
    """Which request key was used; it decides the response key."""

    ROW = "instances"
    COLUMNAR = "inputs"


def invalid(message: str) -> ServingError:
    """INVALID_ARGUMENT with ``message``, as every JSON error is."""
    return ServingError(Code.INVALID_ARGUMENT, message)


def dtype_name(dtype: int) -> str:
    """tensorflow::DataTypeString."""
    return _DTYPE_NAMES.get(dtype) or str(tf.dtypes.as_dtype(dtype).name)


def format_float(value: float, *, single: bool) -> str:
    """One float as TF Serving's WriteDecimal prints it."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = f"{value:.6g}"
    back = float(text)
    if single:
        back = float(np.float32(back)) if abs(back) <= FLT_MAX else math.inf
    if back != value:
        text = f"{value:.9g}" if single else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def format_floats(flat: np.ndarray, *, single: bool) -> list[str]:
    """format_float of every value of ``flat``."""
    # Vectorised format_float: "%.6g" everywhere, full precision where that does not round-trip.
    wide = flat.astype(np.float64)
    values = wide.tolist()
    texts = [f"{v:.6g}" for v in values]
    with np.errstate(over="ignore", invalid="ignore"):
        back = np.array(texts, dtype=np.float64)
        if single:
            back = back.astype(np.float32).astype(np.float64)
    finite = np.isfinite(wide)
    precise = "{:.9g}" if single else "{:.17g}"
    for i in np.nonzero(finite & (back != wide))[0].tolist():
        texts[i] = precise.format(values[i])
    for i in np.nonzero(~finite)[0].tolist():
        texts[i] = format_float(values[i], single=single)
    # Whole numbers get ".0" so clients keep reading them as decimals; NaN/Infinity stay bare.
    return [
        t if ("." in t or "e" in t or not is_finite) else t + ".0"
        for t, is_finite in zip(texts, finite.tolist(), strict=True)
    ]


def value_to_string(value: Any) -> str:
    """Compact JSON of a request value, for error messages (JsonValueToString)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return format_float(value, single=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(value_to_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{json_key(str(k))}:{value_to_string(v)}" for k, v in value.items())
            + "}"
        )
    return json.dumps(value)


def json_type(value: Any) -> str:
    """The JSON type name of a parsed value, as RapidJSON's error messages call it."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def json_key(name: str) -> str:
    """A JSON object key (a quoted string)."""
    return json.dumps(name, ensure_ascii=False)
