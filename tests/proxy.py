"""Proxies between a gateway and TF Serving, for tests: they record what the gateway sends
(rows per predict), spread calls over several replicas (round robin, or a routing rule), and
can break answers the way a network or a faulty server does.

    with http_proxy([standin.rest_url]) as proxy:   # proxy.url for TFSERVING_REST_URL
        ...
        assert max(proxy.predict_rows) <= 72
    with grpc_proxy([standin.grpc_target]) as proxy:  # proxy.target for TFSERVING_GRPC_TARGET

Both are real servers on loopback ports that they bind themselves.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from fashion_core import protos
from tests.servers import serve

# method, path -> index of the upstream to use (None: round robin)
Router = Callable[[str, str], int | None]
PREDICT = "/tensorflow.serving.PredictionService/Predict"


@dataclass
class Recorder:
    predict_rows: list[int] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    # break predict answers: "cut" (connection closed mid-body), "garbage" (not JSON),
    # "short" (one image fewer than asked), "slow:<ms>"; None: pass through
    fault: str | None = None
    status_delay_ms: int = 0  # hold every model status answer this long (a slow status call)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, method: str, path: str, rows: int | None) -> None:
        with self._lock:
            self.calls.append((method, path))
            if rows is not None:
                self.predict_rows.append(rows)


class HttpProxy(Recorder):
    url: str = ""


class GrpcProxy(Recorder):
    target: str = ""


def _rows_in_json(body: bytes) -> int | None:
    try:
        doc = json.loads(body)
        return len(doc["instances"] if "instances" in doc else doc["inputs"])
    except (ValueError, KeyError, TypeError):
        return None


@contextmanager
def http_proxy(upstreams: list[str], router: Router | None = None) -> Iterator[HttpProxy]:
    """A reverse proxy for TF Serving's REST API in front of ``upstreams``."""
    proxy = HttpProxy()
    turn = itertools.count()
    client = httpx.AsyncClient(timeout=60)

    async def forward(request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        predict = request.method == "POST" and path.endswith(":predict")
        proxy.record(request.method, path, _rows_in_json(body) if predict else None)
        index = router(request.method, path) if router else None
        upstream = upstreams[next(turn) % len(upstreams) if index is None else index]
        target = (
            upstream + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
        headers = {"content-type": request.headers.get("content-type", "application/json")}
        try:
            answer = await client.request(request.method, target, content=body, headers=headers)
        except httpx.TransportError:
            return Response(status_code=502)  # the proxy itself answers: nothing listens
        content, fault = answer.content, proxy.fault if predict else None
        if request.method == "GET" and re.fullmatch(r"/v1/models/[^/]+", path):
            await asyncio.sleep(proxy.status_delay_ms / 1000)
        if fault and fault.startswith("slow:"):
            await asyncio.sleep(int(fault.split(":")[1]) / 1000)
        elif fault == "garbage":
            content = content[: len(content) // 2]
        elif fault == "short" and answer.status_code == 200:
            doc = json.loads(content)
            doc["predictions"] = doc["predictions"][:-1]
            content = json.dumps(doc).encode()
        elif fault == "cut":
            return StreamingResponse(_cut(content), media_type="application/json")
        media = answer.headers.get("content-type", "application/json")
        return Response(content, answer.status_code, media_type=media)

    methods = ["GET", "POST", "PUT", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", forward, methods=methods)])
    with serve(app) as url:
        proxy.url = url
        yield proxy
    asyncio.run(client.aclose())


async def _cut(content: bytes) -> AsyncIterator[bytes]:
    yield content[: len(content) // 2]
    raise ConnectionResetError("the proxy cut the answer short")  # uvicorn drops the socket


@contextmanager
def grpc_proxy(upstreams: list[str], router: Router | None = None) -> Iterator[GrpcProxy]:
    """A pass-through gRPC proxy (raw bytes, every method) in front of ``upstreams``."""
    proxy = GrpcProxy()
    pb = protos.load()
    turn = itertools.count()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    class Forward(grpc.GenericRpcHandler):  # type: ignore[misc]
        def service(self, details: Any) -> Any:
            method = details.method

            async def unary(request: bytes, context: Any) -> bytes:
                rows = None
                if method == PREDICT:
                    tensor = pb.predict_pb2.PredictRequest.FromString(request).inputs["z"]
                    rows = int(tensor.tensor_shape.dim[0].size)
                proxy.record("POST", method, rows)
                fault = proxy.fault if method == PREDICT else None
                if fault and fault.startswith("slow:"):
                    await asyncio.sleep(int(fault.split(":")[1]) / 1000)
                elif fault == "cut":  # the connection to the server broke mid-call
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "Connection reset by peer")
                index = router("POST", method) if router else None
                channel = state["channels"][next(turn) % len(upstreams) if index is None else index]
                remaining = context.time_remaining()
                try:
                    answer: bytes = await channel.unary_unary(method)(
                        request, timeout=None if remaining is None else max(remaining, 0.01)
                    )
                except grpc.aio.AioRpcError as err:
                    await context.abort(err.code(), err.details() or "")
                    raise AssertionError("abort returned") from None
                if fault == "short":
                    answer = _one_image_fewer(pb, answer)
                return answer

            return grpc.unary_unary_rpc_method_handler(unary)

    async def run() -> None:
        options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
        state["channels"] = [grpc.aio.insecure_channel(u, options=options) for u in upstreams]
        server = grpc.aio.server(options=options)
        server.add_generic_rpc_handlers((Forward(),))
        state["port"] = server.add_insecure_port("127.0.0.1:0")  # bound here, read back
        await server.start()
        state["stop"] = asyncio.Event()
        started.set()
        await state["stop"].wait()
        await server.stop(None)  # inside the loop's own task: done before the loop ends
        for channel in state["channels"]:
            await channel.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the gRPC proxy did not start")
    proxy.target = f"127.0.0.1:{state['port']}"
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(10)
        loop.close()


def _one_image_fewer(pb: Any, raw: bytes) -> bytes:
    """A PredictResponse whose "images" output lost its last image (a faulty server)."""
    response = pb.predict_pb2.PredictResponse.FromString(raw)
    images = response.outputs["images"]
    rows = images.tensor_shape.dim[0].size
    per_row = 28 * 28
    if images.tensor_content:
        images.tensor_content = images.tensor_content[: (rows - 1) * per_row * 4]
    else:
        kept = list(images.float_val)[: (rows - 1) * per_row]
        del images.float_val[:]
        images.float_val.extend(kept)
    images.tensor_shape.dim[0].size = rows - 1
    return bytes(response.SerializeToString())
