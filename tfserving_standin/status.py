"""GetModelStatus (model_servers/get_model_status_impl.cc), shared by REST and gRPC."""

from __future__ import annotations

from tensorflow_serving.apis import get_model_status_pb2

from .errors import Code, ServingError
from .manager import ServableManager


def get_model_status(
    manager: ServableManager, request: get_model_status_pb2.GetModelStatusRequest
) -> get_model_status_pb2.GetModelStatusResponse:
    """Status of one version (``model_spec.version`` set) or of every version, newest first.

    A ``version_label`` in the spec is ignored, so ``/v1/models/m/labels/L`` lists every version
    and never fails on an unknown label: GetModelStatusImpl only looks at ``version`` (the contract
    table suggests a single version; the server code, which wins, does not).
    """
    if not request.HasField("model_spec"):
        raise ServingError(Code.INVALID_ARGUMENT, "Missing ModelSpec")
    spec = request.model_spec
    rows = manager.version_states(spec.name)
    if spec.HasField("version"):
        wanted = int(spec.version.value)
        rows = [row for row in rows if row.version == wanted]
        if not rows:
            raise ServingError(
                Code.NOT_FOUND, f"Could not find version {wanted} of model {spec.name}"
            )
    elif not rows:
        raise ServingError(Code.NOT_FOUND, f"Could not find any versions of model {spec.name}")
    response = get_model_status_pb2.GetModelStatusResponse()
    for row in rows:
        status = response.model_version_status.add()
        status.version = row.version
        status.state = int(row.state)
        status.status.error_code = int(row.error_code)
        status.status.error_message = row.error_message
    return response
