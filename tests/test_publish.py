"""Atomic publishing: a publish killed at any step leaves no numbered (loadable) folder, the next
publish cleans up after it, and concurrent publishes never share a number."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

from export.publish import TMP_PREFIX, clean_leftovers, owned_folder
from fashion_core import locks
from fashion_core.versions import list_versions
from tests.conftest import ENV, REPO

# runs in a child process, so that "crash" means the process dies with no cleanup at all
PUBLISH = """
import os, sys, keras
from pathlib import Path
from export.publish import publish
crash_at = sys.argv[3]
def step(name):
    if name == crash_at:
        os._exit(9)
g = keras.models.load_model(sys.argv[1], compile=False)
print(publish(g, Path(sys.argv[2]), {"test": True}, on_step=step).version)
"""


def _publish(generator: Path, base: Path, crash_at: str = "") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISH, str(generator), str(base), crash_at],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


STEPS = ["save", "warmup", "verify", "card", "fsync", "rename"]


def test_crash_at_each_step_leaves_no_version_and_the_next_publish_cleans_up(
    smoke_base: Path, tmp_path: Path
) -> None:
    # one publish killed at each step, all at once (each in a base path of its own)
    bases = {step: tmp_path / step / "fashion_gan" for step in STEPS}
    generator = smoke_base.parent / "g1.keras"
    crashes = {s: _publish(generator, b, crash_at=s) for s, b in bases.items()}
    for step, proc in crashes.items():
        assert proc.wait(timeout=180) == 9, step
        assert list_versions(bases[step]) == [], step  # nothing TF Serving would try to load
        assert len(_leftovers(bases[step])) == (0 if step == "save" else 1), step
    base = bases["rename"]  # a complete folder, just not renamed: the next publish removes it
    ok = _publish(generator, base)
    out, err = ok.communicate(timeout=180)
    assert ok.returncode == 0, err[-2000:]
    assert out.strip() == "1" and list_versions(base) == [1]
    assert not list(base.glob(TMP_PREFIX + "*"))  # folders and their lock files


def _leftovers(base: Path) -> list[Path]:
    return [p for p in base.glob(TMP_PREFIX + "*") if p.is_dir()]


def test_a_live_publish_is_not_cleaned(tmp_path: Path) -> None:
    # a folder whose owner lock is held (by this process, standing in for a publisher in
    # another PID namespace) stays; one whose lock is free goes, with its lock file
    live, dead = tmp_path / f"{TMP_PREFIX}live", tmp_path / f"{TMP_PREFIX}dead"
    live.mkdir()
    dead.mkdir()
    fd = locks.try_acquire(tmp_path / f"{TMP_PREFIX}live.lock")
    (tmp_path / f"{TMP_PREFIX}dead.lock").touch()
    try:
        assert clean_leftovers(tmp_path) == [dead]
        assert live.exists() and not (tmp_path / f"{TMP_PREFIX}dead.lock").exists()
    finally:
        assert fd is not None
        __import__("os").close(fd)
    assert clean_leftovers(tmp_path) == [live]


def test_a_deleted_newest_version_keeps_its_number(tmp_path: Path) -> None:
    from fashion_core.versions import next_version, record_version

    (tmp_path / "1").mkdir()
    assert next_version(tmp_path) == 2
    record_version(tmp_path, 2)
    (tmp_path / "2").mkdir()
    for v in ("1", "2"):
        (tmp_path / v).rmdir()  # an operator deletes every version
    assert list_versions(tmp_path) == [] and next_version(tmp_path) == 3


def test_concurrent_publishes_get_distinct_numbers(smoke_base: Path, tmp_path: Path) -> None:
    base = tmp_path / "fashion_gan"
    procs = [_publish(smoke_base.parent / f"g{n}.keras", base) for n in (1, 2, 1)]
    numbers = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        numbers.append(int(out.strip()))
    assert sorted(numbers) == [1, 2, 3] and list_versions(base) == [1, 2, 3]
    assert (base / ".high-water").read_text().strip() == "3"


def test_a_cleaner_probing_the_lock_never_fails_a_fresh_publisher(tmp_path: Path) -> None:
    """The race of issue 17: a cleaner holds a publisher's lock file for a moment (to see
    whether its owner is alive) and, finding no folder, unlinks it. The publisher waits for it
    and ends up holding a lock that its path still names (before: try_acquire failed and the
    publish died on an assert, or kept a lock on an unlinked file that guarded nothing)."""
    lock = tmp_path / f"{TMP_PREFIX}fresh.lock"
    cleaner = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(cleaner, fcntl.LOCK_EX)  # the cleaner's probe, caught in the act
    got: list[int] = []
    publisher = threading.Thread(target=lambda: got.append(locks.acquire(lock)))
    publisher.start()
    publisher.join(0.3)
    assert publisher.is_alive()  # waits rather than fails
    lock.unlink()  # the cleaner finds no folder: a leftover lock file, it goes
    os.close(cleaner)
    publisher.join(10)
    (fd,) = got
    try:
        assert os.fstat(fd).st_ino == os.stat(lock).st_ino  # the lock its path names
        assert locks.try_acquire(lock) is None  # and nobody else can take it
    finally:
        os.close(fd)


def test_cleaning_while_publishing_never_removes_a_live_folder(tmp_path: Path) -> None:
    """A cleaner in a loop beside a publisher that takes folders one after another, as
    publish() does (the real owned_folder): no folder disappears under its owner, and every
    leftover of a finished one is gone at the end."""
    stop = threading.Event()
    lost: list[Path] = []

    def clean() -> None:
        while not stop.is_set():
            clean_leftovers(tmp_path)

    cleaner = threading.Thread(target=clean)
    cleaner.start()
    try:
        for _ in range(1000):
            with owned_folder(tmp_path) as folder:
                folder.mkdir()
                (folder / "saved_model.pb").write_bytes(b"x")
                if not (folder / "saved_model.pb").exists():
                    lost.append(folder)
    finally:
        stop.set()
        cleaner.join(30)
    clean_leftovers(tmp_path)
    assert lost == [] and list(tmp_path.iterdir()) == []
