"""The smallest HTTP server there is, for the control probe of benchmarks.reliability: what a
health check costs on this machine when the server does nothing else. On a machine shared
with other work, the gateway's health checks can be no quicker than this one's.

    python -m benchmarks.echo --port 8099
"""

from __future__ import annotations

import argparse
import asyncio

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok"


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.data = transport, b""

    def data_received(self, data: bytes) -> None:
        self.data += data
        while b"\r\n\r\n" in self.data:  # one answer per request head (no bodies here)
            _, _, self.data = self.data.partition(b"\r\n\r\n")
            self.transport.write(ANSWER)


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Echo, host, port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.echo", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
