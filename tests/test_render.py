"""Rendering: tanh outputs -> uint8 -> grid -> PNG bytes, checked by decoding them."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fashion_core.render import sheet_png, sheet_size, tile, to_uint8


def test_tanh_range_maps_to_full_uint8_range() -> None:
    x = np.array([-1.0, -2.0, 0.0, 1.0, 5.0, np.float32(-1 + 1 / 127.5)], np.float32)
    assert to_uint8(x.reshape(1, 1, 6)).tolist() == [[[0, 0, 128, 255, 255, 1]]]


def test_tiles_land_in_reading_order() -> None:
    tiles = np.stack([np.full((28, 28), i * 20, np.uint8) for i in range(6)])
    grid = tile(tiles, rows=2, cols=3, spacing=2)
    assert grid.shape == (2 * 28 + 2, 3 * 28 + 4)
    for i in range(6):
        r, c = divmod(i, 3)
        assert grid[r * 30 + 5, c * 30 + 5] == i * 20
    assert grid[28, 0] == 0 and grid[0, 28] == 0  # the spacing is black


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 5),
    cols=st.integers(1, 5),
    spacing=st.integers(0, 4),
    scale=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_png_decodes_to_the_documented_size(
    rows: int, cols: int, spacing: int, scale: int, seed: int
) -> None:
    images = np.random.default_rng(seed).uniform(-1, 1, (rows * cols, 28, 28, 1))
    png = sheet_png(images.astype(np.float32), rows, cols, spacing, scale)
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.mode == "L"
    assert img.size == sheet_size(rows, cols, spacing, scale)
    # the first tile's top-left pixel survives the round trip exactly
    assert np.asarray(img)[0, 0] == to_uint8(images[:1])[0, 0, 0]


def test_slerp_ends_on_its_inputs_and_keeps_to_the_sphere() -> None:
    from fashion_core.latents import latents_for, slerp

    a, b = latents_for(1, 2, 100)
    b = b * (np.linalg.norm(a) / np.linalg.norm(b))  # same length: the walk keeps it
    walk = slerp(a, b, 7)
    assert walk.shape == (7, 100) and walk.dtype == np.float32
    assert np.allclose(walk[0], a, atol=1e-5) and np.allclose(walk[-1], b, atol=1e-5)
    assert np.allclose(np.linalg.norm(walk, axis=1), np.linalg.norm(a), rtol=1e-5)
    # a straight line would dip towards the origin in the middle
    assert np.linalg.norm((a + b) / 2) < 0.9 * np.linalg.norm(walk[3])
    same = slerp(a, a, 3)  # parallel: a line (here a point), never a division by zero
    assert np.isfinite(same).all() and np.allclose(same, a)
