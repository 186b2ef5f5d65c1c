"""TF Serving over gRPC: PredictionService.Predict with grpcio's asyncio API.

One channel for the life of the client (HTTP/2 multiplexes concurrent calls over it), tensors
sent as ``tensor_content`` (one memcpy instead of 100 repeated floats per row), a deadline on
every call. The answer's ``model_spec.version`` says which version drew the images.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
import numpy as np

from fashion_core import protos
from fashion_core.contract import (
    CATEGORY,
    IMAGE_SHAPE,
    INPUT,
    OUTPUT,
    SIGNATURE,
    VERSION_STATES,
)
from fashion_gan.tfserving.config import ServingConfig
from fashion_gan.tfserving.errors import (
    CATEGORY_CHECK,
    Fault,
    ServingError,
    UpstreamError,
    translate,
)
from fashion_gan.tfserving.values import Generated, ModelStatus, Pin, VersionState

pb = protos.load()  # message classes only: this module never loads TensorFlow

# sheets are small, but a batch of 288 images is 0.9 MB: leave room above gRPC's 4 MB default
MAX_MESSAGE = 64 << 20


def to_tensor(values: np.ndarray, dtype: str = "<f4") -> Any:
    """A TensorProto in ``tensor_content``: float32 (z) or, with ``dtype="<i8"``, int64
    (category), little-endian as TensorFlow reads it."""
    shape = pb.tensor_shape_pb2.TensorShapeProto(
        dim=[pb.tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in values.shape]
    )
    return pb.tensor_pb2.TensorProto(
        dtype=pb.types_pb2.DT_INT64 if dtype == "<i8" else pb.types_pb2.DT_FLOAT,
        tensor_shape=shape,
        tensor_content=np.ascontiguousarray(values, dtype=dtype).tobytes(),
    )


def from_tensor(t: Any) -> np.ndarray:
    shape = tuple(d.size for d in t.tensor_shape.dim)
    if t.tensor_content:
        flat = np.frombuffer(t.tensor_content, dtype="<f4")
    else:
        flat = np.asarray(t.float_val, dtype=np.float32)
    if flat.size != int(np.prod(shape)):
        raise UpstreamError("TF Serving sent a tensor whose size does not match its shape.", 502)
    return flat.astype(np.float32).reshape(shape)


def _fault(err: grpc.aio.AioRpcError) -> Fault:
    """A gRPC status of TF Serving -> the Fault it means (contract: gRPC codes)."""
    code, detail = err.code(), (err.details() or "").lower()
    if code == grpc.StatusCode.NOT_FOUND:
        return Fault.NOT_FOUND
    if code == grpc.StatusCode.INVALID_ARGUMENT and "label" in detail:
        return Fault.UNKNOWN_LABEL
    if code == grpc.StatusCode.INVALID_ARGUMENT and CATEGORY_CHECK in detail:
        return Fault.BAD_CATEGORY
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Fault.DEADLINE
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
        # grpcio reports a refused connection as UNAVAILABLE "failed to connect"
        refused = "connect" in detail or "refused" in detail
        return Fault.UNREACHABLE if refused else Fault.BUSY
    return Fault.OTHER


class GrpcTransport:
    name = "grpc"

    def __init__(self, config: ServingConfig) -> None:
        if config.grpc_target is None:
            raise ValueError("GrpcTransport needs a ServingConfig with grpc_target.")
        self.config, self.target = config, config.grpc_target
        self.channel: grpc.aio.Channel | None = None
        self._latent: dict[int, int] = {}  # version -> latent size
        self._resolved: dict[Pin, tuple[float, int]] = {}  # pin -> (expires, version)

    async def start(self) -> None:
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ]
        self.channel = grpc.aio.insecure_channel(self.target, options=options)
        self.predict_stub = pb.prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        # status calls on a connection of their own (a local subchannel pool: grpcio would
        # otherwise share the TCP connection of an identical channel), so a slow status call
        # never queues behind predictions or holds their streams
        self.status_channel = grpc.aio.insecure_channel(
            self.target, options=[*options, ("grpc.use_local_subchannel_pool", 1)]
        )
        self.model_stub = pb.model_service_pb2_grpc.ModelServiceStub(self.status_channel)

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
            await self.status_channel.close()

    def _spec(self, pin: Pin) -> Any:
        spec = pb.model_pb2.ModelSpec(name=self.config.model_name, signature_name=SIGNATURE)
        if pin.version is not None:
            spec.version.CopyFrom(pb.wrappers_pb2.Int64Value(value=pin.version))
        elif pin.label is not None:
            spec.version_label = pin.label
        return spec

    def _fail(self, err: grpc.aio.AioRpcError, pin: Pin) -> ServingError:
        fault = _fault(err)
        detail = err.details() or ""
        if fault is Fault.OTHER:
            detail = f"{err.code().name}: {detail}"
        return translate(fault, detail, pin, self.config)

    async def generate(
        self, z: np.ndarray, pin: Pin, category: np.ndarray | None = None
    ) -> Generated:
        request = pb.predict_pb2.PredictRequest(model_spec=self._spec(pin), output_filter=[OUTPUT])
        request.inputs[INPUT].CopyFrom(to_tensor(z))
        if category is not None:
            request.inputs[CATEGORY].CopyFrom(to_tensor(category, "<i8"))
        try:
            response = await self.predict_stub.Predict(request, timeout=self.config.timeout_s)
        except grpc.aio.AioRpcError as err:
            raise self._fail(err, pin) from None
        if OUTPUT not in response.outputs:
            raise UpstreamError(f"TF Serving's answer has no '{OUTPUT}' output.", 502)
        images = from_tensor(response.outputs[OUTPUT])
        if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE or len(images) != len(z):
            raise UpstreamError(f"TF Serving returned images of shape {images.shape}.", 502)
        return Generated(images, int(response.model_spec.version.value))

    async def resolve(self, pin: Pin) -> int:
        """The version ``pin`` names on the server now (kept for ``resolve_ttl_s``)."""
        if pin.version is not None:
            return pin.version
        await self.latent_dim(pin)
        return self._resolved[pin][1]

    async def latent_dim(self, pin: Pin) -> int:
        """The latent size of the version ``pin`` names, from its metadata; which version a
        label or "newest" names is re-read after ``resolve_ttl_s``, each version's size is
        kept."""
        cached = self._resolved.get(pin)
        if cached is not None and cached[0] > time.monotonic():
            return self._latent[cached[1]]
        request = pb.get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=self._spec(pin), metadata_field=["signature_def"]
        )
        try:
            response = await self.predict_stub.GetModelMetadata(
                request, timeout=self.config.status_timeout_s
            )
            sig_map = pb.get_model_metadata_pb2.SignatureDefMap()
            response.metadata["signature_def"].Unpack(sig_map)
            z = sig_map.signature_def[SIGNATURE].inputs[INPUT]
            version = int(response.model_spec.version.value)
            self._latent[version] = int(z.tensor_shape.dim[-1].size)
        except grpc.aio.AioRpcError as err:
            raise self._fail(err, pin) from None
        except (KeyError, IndexError):
            raise UpstreamError(f"TF Serving sent metadata without input '{INPUT}'.", 502) from None
        self._resolved[pin] = (time.monotonic() + self.config.resolve_ttl_s, version)
        return self._latent[version]

    async def status(self) -> ModelStatus:
        request = pb.get_model_status_pb2.GetModelStatusRequest(
            model_spec=pb.model_pb2.ModelSpec(name=self.config.model_name)
        )
        try:
            response = await self.model_stub.GetModelStatus(
                request, timeout=self.config.status_timeout_s
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return ModelStatus([])
            raise self._fail(err, Pin()) from None
        return ModelStatus(
            [
                VersionState(
                    int(v.version), VERSION_STATES.get(v.state, "UNKNOWN"), v.status.error_message
                )
                for v in response.model_version_status
            ]
        )
