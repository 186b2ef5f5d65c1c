"""GetModelMetadata (servables/tensorflow/get_model_metadata_impl.cc), shared by REST and gRPC."""

from __future__ import annotations

from tensorflow_serving.apis import get_model_metadata_pb2

from .errors import Code, ServingError
from .manager import ServableManager

SIGNATURE_DEF_FIELD = "signature_def"


def get_model_metadata(
    manager: ServableManager, request: get_model_metadata_pb2.GetModelMetadataRequest
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """Every SignatureDef of the resolved version, packed in ``metadata["signature_def"]``."""
    if not request.HasField("model_spec"):
        raise ServingError(Code.INVALID_ARGUMENT, "Missing ModelSpec")
    # Contract: metadata_field must be "signature_def", else INVALID_ARGUMENT.
    if not request.metadata_field:
        raise ServingError(
            Code.INVALID_ARGUMENT,
            "GetModelMetadataRequest must specify at least one metadata_field",
        )
    for field in request.metadata_field:
        if field != SIGNATURE_DEF_FIELD:
            # errors::InvalidArgument concatenates its arguments, so the real message really
            # reads "...%s is not supported<field>".
            raise ServingError(Code.INVALID_ARGUMENT, f"Metadata field %s is not supported{field}")
    servable = manager.resolve(request.model_spec)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    for name, signature in servable.signature_defs.items():
        signatures.signature_def[name].CopyFrom(signature)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signatures)
    return response
