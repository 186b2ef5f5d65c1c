"""The REST API (model_servers/http_rest_api_handler.cc + http_server.cc) on http.server.

Routing, messages and status codes follow the contract's REST section: every ``/v1/...`` answer is
``application/json`` (errors are ``{"error": "..."}``), anything outside ``/v1/`` is a plain 404,
unknown ``/v1`` paths are 400 ``Malformed request: <METHOD> <path>``. Paths match
case-insensitively on the raw request target (query string included, as the real server does);
model names and labels are URL-decoded after matching.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import threading
import urllib.parse
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

from . import json_request, json_response, metadata, predict, status, tensor_proto
from .errors import Code, ServingError, http_status
from .faults import Faults
from .manager import ServableManager

_log = logging.getLogger("tfserving_standin.rest")

_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)
_PREDICT_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?"
    r":(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?(?:/(metadata))?",
    re.IGNORECASE,
)
_INT64_MAX = 2**63 - 1
_JSON_HEADERS = (("Content-Type", "application/json"),)
# libevent's body for a 404 outside the REST API (contract: plain 404, no JSON).
_NOT_FOUND_BODY = b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>\n</BODY></HTML>\n"  # noqa: E501
_METRICS_BODY = b"# TensorFlow Serving stand-in: metrics are not emulated.\n"


@dataclass(frozen=True)
class Response:
    """A complete HTTP answer."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = field(default=_JSON_HEADERS)


class _BareError(ServingError):
    """Raised before the real handler sets up its JSON output: the answer has an empty body."""


@dataclass(frozen=True)
class _Route:
    name: str
    version: int | None
    label: str | None
    verb: str  # predict/classify/regress for POST, "metadata" or "" for GET


def _parse_route(method: str, target: str) -> _Route | None:
    """http_rest_api_util.cc ParseModelInfo."""
    if method == "POST":
        match = _PREDICT_PATH.fullmatch(target)
    elif method == "GET":
        match = _STATUS_PATH.fullmatch(target)
    else:
        return None
    if match is None:
        return None
    name_raw, version_raw, label_raw, verb = match.groups()
    version: int | None = None
    if version_raw:
        version = int(version_raw)
        if version > _INT64_MAX:
            raise _BareError(
                Code.INVALID_ARGUMENT, f"Failed to convert version: {version_raw} to numeric."
            )
    name = urllib.parse.unquote(name_raw) if name_raw else ""
    label = urllib.parse.unquote(label_raw) if label_raw else None
    return _Route(name, version, label, verb or "")


def _model_spec(route: _Route) -> model_pb2.ModelSpec:
    spec = model_pb2.ModelSpec(name=route.name)
    if route.version is not None:
        spec.version.value = route.version
    if route.label is not None:
        spec.version_label = route.label
    return spec


def _proto_json(message: object, *, field_names: bool) -> str:
    return str(
        json_format.MessageToJson(
            message,
            always_print_fields_with_no_presence=True,
            preserving_proto_field_name=field_names,
        )
    )


def _decode_body(body: bytes, content_encoding: str) -> bytes:
    # net_http inflates gzip bodies; an undecodable body reaches the handler empty.
    if "gzip" not in content_encoding:
        return body
    try:
        return gzip.decompress(body)
    except (OSError, EOFError, zlib.error):
        return b""


class RestApi:
    """Turns one HTTP request into one Response. Thread-safe."""

    def __init__(
        self,
        manager: ServableManager,
        faults: Faults,
        *,
        timeout_in_ms: int,
        metrics_path: str | None = None,
    ) -> None:
        self._manager = manager
        self._faults = faults
        # http_rest_api_handler.cc: the timeout only applies when positive.
        self._timeout_s = timeout_in_ms / 1000.0 if timeout_in_ms > 0 else None
        self._metrics_path = metrics_path

    def handle(self, method: str, target: str, body: bytes, content_encoding: str) -> Response:
        """Answer one request (never raises)."""
        if self._metrics_path is not None and target.split("?", 1)[0] == self._metrics_path:
            return Response(200, _METRICS_BODY, (("Content-Type", "text/plain"),))
        if not _API_PATH.fullmatch(target):
            return Response(404, _NOT_FOUND_BODY, (("Content-Type", "text/html"),))
        try:
            output = self._dispatch(method, target, _decode_body(body, content_encoding))
            return Response(200, output.encode("utf-8"))
        except _BareError as exc:
            return Response(http_status(exc.code), b"")
        except ServingError as exc:
            return Response(http_status(exc.code), _error_body(exc.message))
        except Exception as exc:  # a stand-in bug must still answer, and visibly
            _log.exception("internal error for %s %s", method, target)
            return Response(500, _error_body(f"stand-in internal error: {exc!r}"))

    def _dispatch(self, method: str, target: str, body: bytes) -> str:
        malformed = ServingError(Code.INVALID_ARGUMENT, f"Malformed request: {method} {target}")
        route = _parse_route(method, target)
        if route is None:
            raise malformed
        if method == "POST":
            if route.verb == "predict":
                return self._predict(route, body)
            if route.verb in ("classify", "regress"):
                raise ServingError(
                    Code.UNIMPLEMENTED, f"TF Serving stand-in: {route.verb} is not implemented"
                )
            raise malformed  # e.g. ":PREDICT" matched the case-insensitive regex only
        if not route.name:
            raise ServingError(Code.INVALID_ARGUMENT, "Missing model name in request.")
        if route.verb == "metadata":
            return self._metadata(route)
        return self._status(route)

    def _status(self, route: _Route) -> str:
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=_model_spec(route))
        return _proto_json(status.get_model_status(self._manager, request), field_names=False)

    def _metadata(self, route: _Route) -> str:
        request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=_model_spec(route))
        request.metadata_field.append(metadata.SIGNATURE_DEF_FIELD)
        response = metadata.get_model_metadata(self._manager, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata[metadata.SIGNATURE_DEF_FIELD].Unpack(signatures)
        # http_rest_api_util.cc prints the two parts separately (no "@type" for the Any), which
        # gives the nested metadata.signature_def.signature_def of the contract.
        return (
            '{"model_spec": '
            + _proto_json(response.model_spec, field_names=True)
            + ', "metadata": {"signature_def": '
            + _proto_json(signatures, field_names=True)
            + "}}"
        )

    def _predict(self, route: _Route, body: bytes) -> str:
        # Contract: the JSON is parsed before the model is looked up.
        doc = json_request.parse_json(body)
        signature = json_request.signature_name(doc)
        spec = _model_spec(route)
        spec.signature_name = signature
        servable = self._manager.resolve(spec)
        signature_name = signature or predict.DEFAULT_SIGNATURE
        signature_def = servable.signature_defs.get(signature_name)
        if signature_def is None:
            raise ServingError(
                Code.INVALID_ARGUMENT,
                f'Serving signature name: "{signature_name}" not found in signature def',
            )
        dtypes = {alias: int(info.dtype) for alias, info in signature_def.inputs.items()}
        arrays, request_format = json_request.tensors_from_request(doc, signature, dtypes)
        request = predict_pb2.PredictRequest(model_spec=spec)
        for alias, array in arrays.items():
            request.inputs[alias].CopyFrom(tensor_proto.from_ndarray(array, as_content=True))
        response = predict.run_predict(
            self._manager,
            request,
            tensor_content=True,
            timeout_s=self._timeout_s,
            servable=servable,
            before_run=self._faults.check_error,
        )
        outputs = {alias: tensor_proto.to_ndarray(t) for alias, t in response.outputs.items()}
        return json_response.response_json(outputs, request_format)


def _error_body(message: str) -> bytes:
    return json.dumps({"error": message}, ensure_ascii=False).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like evhttp
    server: _RestServer

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        body = self._read_body()
        response = self.server.api.handle(
            self.command, self.path, body, self.headers.get("Content-Encoding", "")
        )
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

    def log_message(self, format: str, *args: object) -> None:
        _log.debug("%s " + format, self.address_string(), *args)


class _RestServer(ThreadingHTTPServer):
    daemon_threads = True
    api: RestApi


class RestServer:
    """The REST endpoint running in a background thread."""

    def __init__(self, api: RestApi, host: str, port: int) -> None:
        self._server = _RestServer((host, port), _Handler)
        self._server.api = api
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="standin-rest", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start serving."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
