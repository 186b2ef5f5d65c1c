"""JSON <-> tensors for the REST predict API, following util/json_tensor.cc.

Request side: the JSON is parsed before the model is looked up; dtypes come from the signature,
not from the JSON (contract, "Predict"): DT_FLOAT takes any JSON number including ``NaN`` and
``Infinity``, integer dtypes reject ``1.0``, ``{"b64": ...}`` is only for DT_STRING, and every row
must have the same shape (ragged rows are a 400). Messages copy json_tensor.cc.

Response side: ``{"predictions": ...}`` for row requests, ``{"outputs": ...}`` for columnar ones;
floats are written like TF Serving's WriteDecimal: ``%.6g`` when that round-trips, otherwise full
precision, plus ``.0`` on whole numbers (``3.0``, ``9e+06``, bare ``NaN`` / ``Infinity``).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from .errors import Code, ServingError

_FLT_MAX = float(np.finfo(np.float32).max)
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT32 = (0, 2**32 - 1)
_UINT64 = (0, 2**64 - 1)
_SMALL_INTS = (types_pb2.DT_INT32, types_pb2.DT_INT16, types_pb2.DT_INT8, types_pb2.DT_UINT8)

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


def _invalid(message: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, message)


def dtype_name(dtype: int) -> str:
    """tensorflow::DataTypeString."""
    return _DTYPE_NAMES.get(dtype) or str(tf.dtypes.as_dtype(dtype).name)


# ---------------------------------------------------------------------------------------- numbers


def format_float(value: float, *, single: bool) -> str:
    """One float as TF Serving's WriteDecimal prints it."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = f"{value:.6g}"
    back = float(text)
    if single:
        back = float(np.float32(back)) if abs(back) <= _FLT_MAX else math.inf
    if back != value:
        text = f"{value:.9g}" if single else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _format_floats(flat: np.ndarray, *, single: bool) -> list[str]:
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
            "{" + ",".join(f"{_key(str(k))}:{value_to_string(v)}" for k, v in value.items()) + "}"
        )
    return json.dumps(value)


def _json_type(value: Any) -> str:
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


# ---------------------------------------------------------------------------------------- request


def parse_json(body: bytes) -> dict[str, Any]:
    """Parse a request body; it must be a JSON object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(
            f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}"
        ) from None
    if not text.strip():
        raise _invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _invalid(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None
    except RecursionError:
        raise _invalid("JSON Parse error: document nested too deeply") from None
    if not isinstance(doc, dict):
        raise _invalid(f"JSON Value: {value_to_string(doc)} Is not object")
    return doc


def signature_name(doc: Mapping[str, Any]) -> str:
    """The optional ``signature_name`` ("" when absent)."""
    if "signature_name" not in doc:
        return ""
    name = doc["signature_name"]
    if not isinstance(name, str):
        raise _invalid(
            f"JSON Value: {value_to_string(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


def _type_error(value: Any, dtype: int) -> ServingError:
    return _invalid(
        f"JSON Value: {value_to_string(value)} Type: {_json_type(value)} "
        f"is not of expected type: {dtype_name(dtype)}"
    )


def _lossless(value: int | float, mantissa_bits: int, max_value: float) -> bool:
    # json_tensor.cc IsLosslessDecimal: integers must fit the mantissa, decimals the range.
    if isinstance(value, int) and _INT64[0] <= value <= _UINT64[1]:
        return abs(value) <= (1 << mantissa_bits) - 1
    as_float = float(value)
    return not math.isfinite(as_float) or -max_value <= as_float <= max_value


def _is_int_in(value: Any, bounds: tuple[int, int]) -> bool:
    return (
        isinstance(value, int) and not isinstance(value, bool) and bounds[0] <= value <= bounds[1]
    )


def _convert_value(value: Any, dtype: int) -> Any:
    """AddValueToTensor: one JSON scalar to a Python value of the signature dtype."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if not is_number:
            raise _type_error(value, dtype)
        single = dtype == types_pb2.DT_FLOAT
        if not _lossless(value, 24 if single else 53, _FLT_MAX if single else math.inf):
            target = "float" if single else "double"
            raise _invalid(
                f"Cannot convert JSON value: {value_to_string(value)} to {target} "
                "without loss of precision."
            )
        return float(value)
    if dtype in _SMALL_INTS:
        ok = _is_int_in(value, _INT32)
    elif dtype == types_pb2.DT_INT64:
        ok = _is_int_in(value, _INT64)
    elif dtype == types_pb2.DT_UINT32:
        ok = _is_int_in(value, _UINT32)
    elif dtype == types_pb2.DT_UINT64:
        ok = _is_int_in(value, _UINT64)
    elif dtype == types_pb2.DT_BOOL:
        ok = isinstance(value, bool)
    elif dtype == types_pb2.DT_STRING:
        if not isinstance(value, str):
            raise _type_error(value, dtype)
        return value.encode("utf-8")
    else:
        raise ServingError(
            Code.UNIMPLEMENTED,
            f"Conversion of JSON Value: {value_to_string(value)} to type: {dtype_name(dtype)}",
        )
    if not ok:
        raise _type_error(value, dtype)
    return value


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _decode_b64(value: Any) -> bytes:
    if not _is_b64(value):
        raise _invalid(
            f"JSON Value: {value_to_string(value)} not formatted correctly for base64 data"
        )
    text: str = value["b64"]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Unable to base64 decode") from None


def _dense_shape(value: Any) -> list[int]:
    # GetDenseTensorShape: follow the first element of every nested list.
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: Sequence[int], dtype: int, out: list[Any]) -> None:
    # FillTensorProto: every leaf at depth == rank, every list as long as the first one.
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise _invalid(
                f"JSON Value: {value_to_string(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {rank}"
            )
        if isinstance(value, dict):
            if dtype != types_pb2.DT_STRING:
                raise _type_error(value, dtype)
            out.append(_decode_b64(value))
        else:
            out.append(_convert_value(value, dtype))
        return
    if level >= rank:
        raise _invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise _invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, dtype, out)


def _to_array(values: list[Any], shape: Sequence[int], dtype: int) -> np.ndarray:
    if dtype == types_pb2.DT_STRING:
        flat = np.empty(len(values), dtype=object)
        flat[:] = values
        return flat.reshape(shape)
    np_dtype = tf.dtypes.as_dtype(dtype).as_numpy_dtype
    if dtype in _SMALL_INTS:
        # int_val holds int32; narrower dtypes wrap like the C++ cast.
        return np.array(values, dtype=np.int32).astype(np_dtype).reshape(shape)
    return np.array(values, dtype=np_dtype).reshape(shape)


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _tensor_from_value(value: Any, dtype: int) -> np.ndarray:
    shape = _dense_shape(value)
    out: list[Any] = []
    _fill(value, 0, shape, dtype, out)
    return _to_array(out, shape, dtype)


def _is_element_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


class _InstanceBatcher:
    """Stacks the elements of ``instances`` per input, checking they all have one shape."""

    def __init__(self, dtypes: Mapping[str, int]) -> None:
        self._dtypes = dtypes
        self.values: dict[str, list[Any]] = {}
        self.shapes: dict[str, list[int]] = {}

    def add(self, item: Any, name: str) -> None:
        if name not in self._dtypes:
            raise _invalid(f"JSON object: does not have named input: {name}")
        shape = _dense_shape(item)
        out: list[Any] = []
        _fill(item, 0, shape, self._dtypes[name], out)
        if name not in self.values:
            self.values[name] = out
            self.shapes[name] = shape
            return
        expected = self.shapes[name]
        if math.prod(expected) != len(out):
            raise _invalid(f"Expecting tensor size: {math.prod(expected)} but got: {len(out)}")
        if expected != shape:
            raise _invalid(f"Expecting shape {_shape_text(expected)} but got: {_shape_text(shape)}")
        self.values[name].extend(out)


def _from_instances(instances: list[Any], dtypes: Mapping[str, int]) -> dict[str, np.ndarray]:
    if not isinstance(instances[0], dict) and len(dtypes) > 1:
        raise _invalid(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    objects = _is_element_object(instances[0])
    names = sorted(dtypes)
    batcher = _InstanceBatcher(dtypes)
    for index, element in enumerate(instances):
        if objects:
            if not _is_element_object(element):
                raise _invalid(f"Expecting object but got list at item {index} of input list")
            for name, item in element.items():
                try:
                    batcher.add(item, name)
                except ServingError as exc:
                    raise _invalid(
                        f"Failed to process element: {index} key: {name} of 'instances' list. "
                        f"Error: {exc}"
                    ) from None
            if set(element) != set(names):
                raise _invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{value_to_string(element)} must only have keys: {','.join(names)}"
                )
        else:
            if _is_element_object(element):
                raise _invalid(f"Expecting value/list but got object at item {index} of input list")
            try:
                batcher.add(element, names[0])
            except ServingError as exc:
                raise _invalid(
                    f"Failed to process element: {index} of 'instances' list. Error: {exc}"
                ) from None
    return {
        name: _to_array(values, [len(instances), *batcher.shapes[name]], dtypes[name])
        for name, values in batcher.values.items()
    }


def _from_inputs(value: Any, dtypes: Mapping[str, int]) -> dict[str, np.ndarray]:
    names = sorted(dtypes)
    if not isinstance(value, dict) or _is_b64(value):
        if len(dtypes) > 1:
            raise _invalid(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        return {names[0]: _tensor_from_value(value, dtypes[names[0]])}
    tensors: dict[str, np.ndarray] = {}
    for name in names:
        if name not in value:
            raise _invalid(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = _tensor_from_value(value[name], dtypes[name])
    return tensors


def tensors_from_request(
    doc: Mapping[str, Any], signature: str, dtypes: Mapping[str, int]
) -> tuple[dict[str, np.ndarray], RequestFormat]:
    """Input tensors from ``instances`` or ``inputs``; ``dtypes`` maps input alias -> DataType."""
    if not dtypes:
        raise _invalid(f"Failed to get input map for signature: {signature or 'DEFAULT'}")
    has_instances = "instances" in doc
    if has_instances and "inputs" in doc:
        raise _invalid(
            f"JSON Value: {value_to_string(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise _invalid(
                f"JSON Value: {value_to_string(doc)} Excepting 'instances' to be an list/array"
            )
        if not instances:
            raise _invalid(f"JSON Value: {value_to_string(doc)} No values in 'instances' array")
        return _from_instances(instances, dtypes), RequestFormat.ROW
    if "inputs" in doc:
        return _from_inputs(doc["inputs"], dtypes), RequestFormat.COLUMNAR
    raise _invalid("Missing 'inputs' or 'instances' key")


# --------------------------------------------------------------------------------------- response


def _format_values(name: str, arr: np.ndarray) -> list[str]:
    flat = arr.ravel()
    kind = arr.dtype.kind
    if arr.dtype in (np.float32, np.float16):
        return _format_floats(flat, single=True)
    if arr.dtype == np.float64:
        return _format_floats(flat, single=False)
    if kind == "b":
        return ["true" if v else "false" for v in flat.tolist()]
    if kind in "iu":
        return [str(v) for v in flat.tolist()]
    if kind in "OSU":
        # Outputs whose alias ends in "_bytes" are binary: {"b64": ...} (IsNamedTensorBytes).
        as_bytes = name.endswith("_bytes")
        texts = []
        for item in flat.tolist():
            raw = item if isinstance(item, bytes) else str(item).encode("utf-8")
            if as_bytes:
                texts.append('{"b64": "' + base64.b64encode(raw).decode("ascii") + '"}')
            else:
                texts.append(json.dumps(raw.decode("utf-8", "replace"), ensure_ascii=False))
        return texts
    raise _invalid(f"Failed to write JSON value for tensor type: {arr.dtype}")


def _nest(items: list[str], shape: Sequence[int], levels: int) -> list[str]:
    # Group the innermost `levels` dimensions of a flat, row-major list into JSON arrays.
    for axis in range(len(shape) - 1, len(shape) - 1 - levels, -1):
        size = shape[axis]
        groups = math.prod(shape[:axis])
        items = ["[" + ",".join(items[g * size : (g + 1) * size]) + "]" for g in range(groups)]
    return items


def _nested_json(name: str, arr: np.ndarray, *, levels: int) -> list[str]:
    return _nest(_format_values(name, arr), arr.shape, levels)


def _key(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def response_json(outputs: Mapping[str, np.ndarray], request_format: RequestFormat) -> str:
    """MakeJsonFromTensors: the response body for a predict request."""
    if not outputs:
        raise _invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if request_format is RequestFormat.COLUMNAR:
        columns = {n: _nested_json(n, outputs[n], levels=outputs[n].ndim)[0] for n in names}
        if len(names) == 1:
            return '{"outputs": ' + columns[names[0]] + "}"
        return '{"outputs": {' + ",".join(f"{_key(n)}: {columns[n]}" for n in names) + "}}"
    batch = -1
    for n in names:
        arr = outputs[n]
        if arr.ndim == 0:
            raise _invalid(f"Tensor name: {n} has no shape information ")
        if batch >= 0 and arr.shape[0] != batch:
            raise _invalid(
                f"Tensor name: {n} has inconsistent batch size: {arr.shape[0]} expecting: {batch}"
            )
        batch = arr.shape[0]
    # Row format: one element per batch entry, the batch dimension itself is not nested.
    rows = {n: _nested_json(n, outputs[n], levels=outputs[n].ndim - 1) for n in names}
    if len(names) == 1:
        items = rows[names[0]]
    else:
        items = [
            "{" + ",".join(f"{_key(n)}: {rows[n][i]}" for n in names) + "}" for i in range(batch)
        ]
    return '{"predictions": [' + ",".join(items) + "]}"
