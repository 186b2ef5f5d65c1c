"""GatewayClient's retries after 503 + Retry-After: never earlier than asked, and spread by a
random jitter so that clients refused in the same instant do not all come back in the same
instant (before: exactly at Retry-After). Against a real server on loopback that refuses
twice and then answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fashion_gan import GatewayClient, GatewayError
from tests.servers import serve

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def flaky() -> Iterator[str]:
    """Each client id is refused twice (503, Retry-After: 3), then served."""
    seen: dict[str, int] = {}

    async def sheet(request: Request) -> Response:
        who = request.headers.get("x-client-id", "")
        seen[who] = seen.get(who, 0) + 1
        if seen[who] <= 2:
            body = {"error": "The gateway is at capacity; retry in 3 s."}
            return JSONResponse(body, 503, {"Retry-After": "3"})
        return Response(PNG, media_type="image/png", headers={"X-Model-Version": "4"})

    with serve(Starlette(routes=[Route("/api/generar-diseno", sheet)])) as url:
        yield url


def test_retries_wait_retry_after_plus_jitter(flaky: str) -> None:
    waits: dict[str, list[float]] = {}
    for n in range(8):
        who = f"client-{n}"
        slept = waits.setdefault(who, [])
        client = GatewayClient(flaky, client_id=who, retries=3, jitter_s=1.0, sleep=slept.append)
        sheet = client.sheet(seed=1)
        assert sheet.version == 4 and sheet.data == PNG
    every = [w for ws in waits.values() for w in ws]
    assert len(every) == 16 and all(3.0 <= w <= 4.0 for w in every)  # never earlier
    assert len({round(w, 6) for w in every}) == 16  # not all in the same instant


def test_max_wait_counts_the_jitter_and_gives_up(flaky: str) -> None:
    slept: list[float] = []
    client = GatewayClient(flaky, client_id="patient-ish", max_wait_s=5, sleep=slept.append)
    with pytest.raises(GatewayError) as err:
        client.sheet()
    assert err.value.status == 503 and err.value.retry_after == 3
    assert len(slept) == 1  # a second wait of 3 s or more would pass max_wait_s
