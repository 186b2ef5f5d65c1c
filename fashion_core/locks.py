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


def _names(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``. A cleaner may unlink a lock file
    between our open() and our flock(): a lock on the unlinked file then guards nothing, and
    the next process to open the path creates a new file and "holds" the same lock too."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def try_acquire(path: Path) -> int | None:
    """An open, exclusively locked descriptor of ``path``, or None when someone holds it (or
    the path was unlinked and recreated meanwhile). The caller keeps the lock by keeping the
    descriptor open (or passing it to a child with ``pass_fds``: the lock lives as long as any
    process holds a copy)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not _names(fd, path):
        os.close(fd)
        return None
    return fd


def acquire(path: Path) -> int:
    """Like ``try_acquire`` but waits: for a lock that others only take briefly (a cleaner
    probing whether its owner is alive). Retries until the lock it holds is the one ``path``
    names, so a cleaner that unlinked the file meanwhile cannot leave us holding a stale one."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _names(fd, path):
            return fd
        os.close(fd)


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
