"""File locks (``flock``) instead of pids: a lock is held exactly as long as some process keeps
the file open, so it is released when that process dies, however it dies, and it means the
same in every PID namespace that shares the filesystem (a Kubernetes Job beside the trainer
pod). Pids are reused and are not visible across namespaces; locks are neither.

On NFS, flock is emulated with POSIX byte-range locks by the client (Linux >= 2.6.12), which the
server also arbitrates: the same guarantees hold across nodes.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(path: Path) -> Iterator[int]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` body; blocks
    until it is free. Yields the file descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing the last descriptor of the open file releases the lock


def try_acquire(path: Path) -> int | None:
    """An open, exclusively locked descriptor of ``path``, or None when someone holds it.
    The caller keeps the lock by keeping the descriptor open (or passing it to a child with
    ``pass_fds``: the lock lives as long as any process holds a copy)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def is_held(path: Path) -> bool:
    """Whether some process holds the lock on ``path`` right now (False if it does not exist)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
