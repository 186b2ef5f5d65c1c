"""Clients that hold connections instead of asking: sockets that stay idle, and uploads that
stall half way. Each one that the server closes is opened again at once (a determined client,
or a misbehaving proxy, keeps the pressure up), from its own loopback address."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

from benchmarks.traffic import source


@dataclass
class Held:
    opened: int = 0
    closed_by_server: int = 0  # answered (then closed) or closed without an answer
    answers: Counter[int] = field(default_factory=Counter)  # status of what came before a close
    refused_at_connect: int = 0


async def _hold(
    host: str, port: int, until: float, sources: int, number: int, send: bytes, held: Held
) -> None:
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(
                host, port, local_addr=(source(number, sources), 0)
            )
        except OSError:
            held.refused_at_connect += 1
            await asyncio.sleep(0.1)
            continue
        held.opened += 1
        data, ours = b"", False
        try:
            left = max(until - time.monotonic(), 0.01)
            data = await asyncio.wait_for(_exchange(reader, writer, send), left)
        except TimeoutError:
            ours = True  # still held when the run ended
        except OSError:
            pass  # reset by the server: closed without an answer
        finally:
            writer.close()
        if not ours:
            held.closed_by_server += 1
            if data.startswith(b"HTTP/1.1 "):
                with contextlib.suppress(ValueError, IndexError):
                    held.answers[int(data.split()[1])] += 1


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, send: bytes
) -> bytes:
    if send:  # the server may stop reading half way: drain() then waits with us
        writer.write(send)
        await writer.drain()
    return await reader.read()  # until the server closes


async def hold(
    url_host: str,
    port: int,
    connections: int,
    seconds: float,
    send: bytes = b"",
    sources: int = 50,
) -> Held:
    """Keep ``connections`` sockets open for ``seconds``, each having sent ``send`` (nothing:
    idle ones), reopening every one the server closes. Opened over the first second."""
    held, until = Held(), time.monotonic() + seconds

    async def one(number: int) -> None:
        await asyncio.sleep(number / max(connections, 1))  # spread over the first second
        await _hold(url_host, port, until, sources, number, send, held)

    await asyncio.gather(*(one(n) for n in range(connections)))
    return held


def stalled_upload(declared: int = 1_000_000, sent: int = 100_000) -> bytes:
    """A POST that announces ``declared`` bytes of body and sends only ``sent``."""
    head = (
        "POST /api/generar-diseno HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    return head + b'{"latents": [[' + b"0," * ((sent - 16) // 2)
