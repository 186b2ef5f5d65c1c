"""Tanh outputs -> uint8 -> a tiled grid -> PNG bytes, all in memory with Pillow.

The seed drew its 3x3 sheet with pyplot and saved it into a BytesIO; this does the same job
without matplotlib (no figure, no font cache, no disk) and in a few hundred microseconds.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28[, 1]) floats in [-1, 1] -> (N, 28, 28) uint8; out-of-range values are clipped."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4:
        x = x[..., 0]
    # round half up so that -1 -> 0 and 1 -> 255 exactly
    out: np.ndarray = np.clip(np.floor((x + 1.0) * 127.5 + 0.5), 0, 255).astype(np.uint8)
    return out


def tile(tiles: np.ndarray, rows: int, cols: int, spacing: int = 0, scale: int = 1) -> np.ndarray:
    """(rows*cols, h, w) uint8 -> one (H, W) uint8 grid with ``spacing`` black pixels between tiles,
    then upscaled by the integer ``scale`` (nearest neighbour keeps the pixels crisp)."""
    n, h, w = tiles.shape
    if n != rows * cols:
        raise ValueError(f"need {rows * cols} tiles for a {rows}x{cols} grid, got {n}")
    if spacing:
        tiles = np.pad(tiles, ((0, 0), (0, spacing), (0, spacing)))
        h, w = h + spacing, w + spacing
    grid = tiles.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)
    if spacing:
        grid = grid[:-spacing, :-spacing]  # no border after the last row and column
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    return np.ascontiguousarray(grid)


def encode_png(grid: np.ndarray) -> bytes:
    """(H, W) uint8 -> greyscale PNG bytes. compress_level 1: small sheets, speed matters more."""
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def sheet_png(
    images: np.ndarray, rows: int = 3, cols: int = 3, spacing: int = 0, scale: int = 1
) -> bytes:
    """Generator outputs (rows*cols, 28, 28, 1) in [-1, 1] -> PNG bytes of the design sheet."""
    return encode_png(tile(to_uint8(images), rows, cols, spacing, scale))


def sheet_size(
    rows: int, cols: int, spacing: int, scale: int, tile_px: int = 28
) -> tuple[int, int]:
    """(width, height) in pixels of a sheet, for tests and docs."""
    return (
        (cols * tile_px + (cols - 1) * spacing) * scale,
        (rows * tile_px + (rows - 1) * spacing) * scale,
    )


def frames_gif(images: np.ndarray, scale: int = 1, frame_ms: int = 120) -> bytes:
    """Generator outputs (N, 28, 28, 1) -> an animated greyscale GIF, one design per frame,
    looping forever (an interpolation walk played as a film). Pillow merges identical
    consecutive frames into one longer frame, so a walk from a seed to itself is one frame
    shown for the whole length."""
    tiles = to_uint8(images)
    if scale > 1:
        tiles = np.repeat(np.repeat(tiles, scale, axis=1), scale, axis=2)
    frames = [Image.fromarray(t) for t in tiles]
    buf = io.BytesIO()
    frames[0].save(
        buf, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0
    )
    return buf.getvalue()
