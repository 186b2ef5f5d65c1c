"""JSON -> tensors for the REST predict API, following util/json_tensor.cc.

The JSON is parsed before the model is looked up; dtypes come from the signature, not from the
JSON (contract, "Predict"): DT_FLOAT takes any JSON number including ``NaN`` and ``Infinity``,
integer dtypes reject ``1.0``, ``{"b64": ...}`` is only for DT_STRING, and every row must have
the same shape (ragged rows are a 400). Messages copy json_tensor.cc.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from .errors import Code, ServingError
from .json_values import FLT_MAX, RequestFormat, dtype_name, invalid, json_type, value_to_string

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT32 = (0, 2**32 - 1)
_UINT64 = (0, 2**64 - 1)
_SMALL_INTS = (types_pb2.DT_INT32, types_pb2.DT_INT16, types_pb2.DT_INT8, types_pb2.DT_UINT8)


def parse_json(body: bytes) -> dict[str, Any]:
    """Parse a request body; it must be a JSON object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(
            f"JSON Parse error: Invalid encoding in string. at offset: {exc.start}"
        ) from None
    if not text.strip():
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise invalid(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None
    except RecursionError:
        raise invalid("JSON Parse error: document nested too deeply") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {value_to_string(doc)} Is not object")
    return doc


def signature_name(doc: Mapping[str, Any]) -> str:
    """The optional ``signature_name`` ("" when absent)."""
    if "signature_name" not in doc:
        return ""
    name = doc["signature_name"]
    if not isinstance(name, str):
        raise invalid(
            f"JSON Value: {value_to_string(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


def _type_error(value: Any, dtype: int) -> ServingError:
    return invalid(
        f"JSON Value: {value_to_string(value)} Type: {json_type(value)} "
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
        if not _lossless(value, 24 if single else 53, FLT_MAX if single else math.inf):
            target = "float" if single else "double"
            raise invalid(
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
        raise invalid(
            f"JSON Value: {value_to_string(value)} not formatted correctly for base64 data"
        )
    text: str = value["b64"]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Unable to base64 decode") from None


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
            raise invalid(
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
        raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid(
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
            raise invalid(f"JSON object: does not have named input: {name}")
        shape = _dense_shape(item)
        out: list[Any] = []
        _fill(item, 0, shape, self._dtypes[name], out)
        if name not in self.values:
            self.values[name] = out
            self.shapes[name] = shape
            return
        expected = self.shapes[name]
        if math.prod(expected) != len(out):
            raise invalid(f"Expecting tensor size: {math.prod(expected)} but got: {len(out)}")
        if expected != shape:
            raise invalid(f"Expecting shape {_shape_text(expected)} but got: {_shape_text(shape)}")
        self.values[name].extend(out)


def _from_instances(instances: list[Any], dtypes: Mapping[str, int]) -> dict[str, np.ndarray]:
    if not isinstance(instances[0], dict) and len(dtypes) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    objects = _is_element_object(instances[0])
    names = sorted(dtypes)
    batcher = _InstanceBatcher(dtypes)
    for index, element in enumerate(instances):
        if objects:
            if not _is_element_object(element):
                raise invalid(f"Expecting object but got list at item {index} of input list")
            for name, item in element.items():
                try:
                    batcher.add(item, name)
                except ServingError as exc:
                    raise invalid(
                        f"Failed to process element: {index} key: {name} of 'instances' list. "
                        f"Error: {exc}"
                    ) from None
            if set(element) != set(names):
                raise invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{value_to_string(element)} must only have keys: {','.join(names)}"
                )
        else:
            if _is_element_object(element):
                raise invalid(f"Expecting value/list but got object at item {index} of input list")
            try:
                batcher.add(element, names[0])
            except ServingError as exc:
                raise invalid(
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
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        return {names[0]: _tensor_from_value(value, dtypes[names[0]])}
    tensors: dict[str, np.ndarray] = {}
    for name in names:
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = _tensor_from_value(value[name], dtypes[name])
    return tensors


def tensors_from_request(
    doc: Mapping[str, Any], signature: str, dtypes: Mapping[str, int]
) -> tuple[dict[str, np.ndarray], RequestFormat]:
    """Input tensors from ``instances`` or ``inputs``; ``dtypes`` maps input alias -> DataType."""
    if not dtypes:
        raise invalid(f"Failed to get input map for signature: {signature or 'DEFAULT'}")
    has_instances = "instances" in doc
    if has_instances and "inputs" in doc:
        raise invalid(
            f"JSON Value: {value_to_string(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid(
                f"JSON Value: {value_to_string(doc)} Excepting 'instances' to be an list/array"
            )
        if not instances:
            raise invalid(f"JSON Value: {value_to_string(doc)} No values in 'instances' array")
        return _from_instances(instances, dtypes), RequestFormat.ROW
    if "inputs" in doc:
        return _from_inputs(doc["inputs"], dtypes), RequestFormat.COLUMNAR
    raise invalid("Missing 'inputs' or 'instances' key")
