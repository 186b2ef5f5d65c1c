"""HTTP for tests that need what a browser-style client does not do: a chosen source address
(every 127.x.y.z is this machine, so loopback tests can play many clients), sockets that stay
idle, heads and bodies sent only in part."""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def _where(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


class Client:
    """One keep-alive connection from ``source`` (a loopback address) to the server at ``url``."""

    def __init__(self, url: str, source: str = "127.0.0.1", timeout: float = 60.0) -> None:
        host, port = _where(url)
        self.conn = http.client.HTTPConnection(
            host, port, timeout=timeout, source_address=(source, 0)
        )

    def get(self, path: str) -> Answer:
        return self.send("GET", path)

    def send(self, method: str, path: str, body: bytes = b"") -> Answer:
        headers = {"Content-Type": "application/json"} if body else {}
        try:
            self.conn.request(method, path, body=body or None, headers=headers)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()  # a kept-alive connection the server closed: once more, anew
            self.conn.request(method, path, body=body or None, headers=headers)
            resp = self.conn.getresponse()
        data = resp.read()
        answer = Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        if answer.headers.get("connection", "").lower() == "close":
            self.conn.close()
        return answer

    def close(self) -> None:
        self.conn.close()


def get(url: str, path: str, source: str = "127.0.0.1", timeout: float = 60.0) -> Answer:
    client = Client(url, source, timeout)
    try:
        return client.get(path)
    finally:
        client.close()


def connect(url: str, source: str = "127.0.0.1", timeout: float = 30.0) -> socket.socket:
    """A connected socket that has sent nothing yet."""
    sock = socket.create_connection(_where(url), timeout=timeout, source_address=(source, 0))
    return sock


def read_answer(sock: socket.socket) -> Answer:
    """The next whole answer on ``sock`` (by Content-Length), or a status of 0 when the server
    closed the connection without one."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return Answer(0, {}, data)
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Answer(status, headers, rest[:length])


def closed_by_server(sock: socket.socket, wait_s: float = 0.0) -> bool:
    """Whether the server closes ``sock`` within ``wait_s`` (any answer it sent first is
    read and dropped)."""
    sock.settimeout(max(wait_s, 0.001))
    try:
        while sock.recv(65536):
            pass
    except (TimeoutError, BlockingIOError):
        return False
    except ConnectionResetError:
        return True
    return True
