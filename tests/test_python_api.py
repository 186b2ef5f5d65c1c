"""The seed's API, importable: ``cargar_o_entrenar()`` loads once per process and shares the
version between threads, and ``generar_muestra_ropa()`` returns in a BytesIO the very PNG the
gateway answers for the same version and seed (embedded, REST and gRPC gateways alike), writing
nothing to disk. Training when no version exists is tested in test_first_start, where it joins
the fresh deployment's job."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from PIL import Image

import fashion_gan.model
from fashion_gan import ModelError, cargar_o_entrenar, generar_muestra_ropa
from tests.conftest import ENV, REPO


@pytest.fixture(scope="module", autouse=True)
def published(smoke_base: Path, gateways: dict[str, str]) -> Iterator[Path]:
    """MODEL_BASE_PATH and MODEL_CONFIG_FILE as the gateways have them (stable 1, canary 2)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODEL_BASE_PATH", str(smoke_base))
        mp.setenv("MODEL_CONFIG_FILE", str(smoke_base.parent / "models.config"))
        yield smoke_base


def _decode(png: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.mode == "L"
    return img


def test_default_is_a_new_3x3_png_in_a_bytesio_from_the_newest_version() -> None:
    a, b = generar_muestra_ropa(), generar_muestra_ropa()
    assert isinstance(a, io.BytesIO) and a.tell() == 0
    assert _decode(a.getvalue()).size == (84, 84) and a.version == 2
    assert a.seed != b.seed and a.getvalue() != b.getvalue()


@pytest.mark.parametrize(
    ("kwargs", "query"),
    [
        ({}, ""),
        ({"rows": 2, "cols": 5, "scale": 3, "spacing": 2}, "&rows=2&cols=5&scale=3&spacing=2"),
        ({"version": 1}, "&version=1"),
        ({"label": "stable"}, "&label=stable"),
        ({"rows": 16, "cols": 16}, "&rows=16&cols=16"),  # four model calls of at most 72 rows
        ({"rows": 1, "cols": 1}, "&rows=1&cols=1"),  # one row, padded as the gateway pads it
    ],
)
def test_same_png_as_every_gateway(
    gateways: dict[str, str], kwargs: dict[str, int | str], query: str
) -> None:
    sheet = generar_muestra_ropa(seed=42, **kwargs)  # type: ignore[arg-type]
    for backend, url in gateways.items():
        answer = requests.get(f"{url}/api/generar-diseno?seed=42{query}", timeout=60)
        assert answer.status_code == 200, (backend, answer.text)
        assert answer.headers["x-model-version"] == str(sheet.version), backend
        assert answer.content == sheet.getvalue(), backend


def test_works_inside_a_running_event_loop() -> None:
    """A notebook or an async app calls it with an event loop running: no asyncio.run inside
    (training from a coroutine: test_first_start)."""

    async def draw() -> tuple[bytes, int]:
        asyncio.get_running_loop()
        sheet = generar_muestra_ropa(seed=5, version=1)
        return sheet.getvalue(), cargar_o_entrenar().version

    png, newest = asyncio.run(draw())
    assert png == generar_muestra_ropa(seed=5, version=1).getvalue() and newest == 2


def test_32_threads_share_one_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fashion_gan.model, "_loaded", {})  # this process starts unloaded
    serial = {seed: generar_muestra_ropa(seed=seed, version=1).getvalue() for seed in range(4)}
    monkeypatch.setattr(fashion_gan.model, "_loaded", {})
    start = threading.Barrier(32)

    def work(i: int) -> tuple[int, bytes, int]:
        start.wait()  # all 32 ask for the unloaded version at once
        return (
            i % 4,
            generar_muestra_ropa(seed=i % 4, version=1).getvalue(),
            id(cargar_o_entrenar(version=1)),
        )

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(work, range(32)))
    assert all(png == serial[seed] for seed, png, _ in results)
    assert len({gen for _, _, gen in results}) == 1  # one Generador, loaded once
    assert len(fashion_gan.model._loaded) == 1


def test_pins_and_bad_input_say_what_is_allowed() -> None:
    assert cargar_o_entrenar(label="canary").version == 2
    assert cargar_o_entrenar(version=1) is cargar_o_entrenar(label="stable")
    with pytest.raises(ModelError, match="published versions: 1, 2"):
        cargar_o_entrenar(version=9)
    with pytest.raises(ModelError, match="defined labels: canary, stable"):
        cargar_o_entrenar(label="gold")
    for bad in ({"rows": 0}, {"cols": 17}, {"scale": 9}, {"seed": -1}, {"rows": True}):
        with pytest.raises(ValueError, match="must be an integer from"):
            generar_muestra_ropa(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="either version or label"):
        generar_muestra_ropa(version=1, label="stable")


def test_issue_command_prints_a_size_and_writes_nothing(published: Path, tmp_path: Path) -> None:
    """The "done when" line, run as a user would in a fresh process: no display, an empty
    working folder that stays empty, and a models folder that stays as it was."""
    before = sorted((p, p.stat().st_mtime_ns) for p in published.parent.rglob("*"))
    env = {k: v for k, v in ENV.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env |= {"MODEL_BASE_PATH": str(published), "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    work = tmp_path / "work"
    work.mkdir()
    code = (
        "from fashion_gan import generar_muestra_ropa; "
        "print(len(generar_muestra_ropa().getvalue()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip()) > 100
    assert list(work.iterdir()) == []
    assert sorted((p, p.stat().st_mtime_ns) for p in published.parent.rglob("*")) == before
    # HOME holds only the libraries' own caches: Keras' keras.json, and matplotlib's font list
    # (Keras imports matplotlib when it is installed, as the bench extra does)
    home = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    caches = {h for h in home if h.startswith(".cache/matplotlib/fontlist-")}
    assert home - caches <= {".keras/keras.json"}, home


def test_importing_the_clients_never_loads_tensorflow() -> None:
    code = (
        "import sys; from fashion_gan import GatewayClient, ServingClient, GatewayError; "
        "ServingClient(rest_url='http://127.0.0.1:9').close(); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]
