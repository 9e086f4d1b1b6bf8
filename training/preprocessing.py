"""The model's input contract: 28x28 grayscale, float32 in [0, 1], light strokes on a dark background.

Pure numpy/Pillow (no TensorFlow), so the service can share it without importing the training stack.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIDE = 28
INPUT_CONTRACT = {
    "shape": [SIDE, SIDE, 1],
    "dtype": "float32",
    "range": [0.0, 1.0],
    "polarity": "light foreground on dark background (white digit on black, as MNIST)",
}


def to_grayscale(image: Image.Image, background: int = 0) -> Image.Image:
    """Grayscale view of any Pillow image; transparent pixels take the `background` level (black)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (background, background, background, 255))
        image = Image.alpha_composite(canvas, rgba)
    return image if image.mode == "L" else image.convert("L")


def fit_to_square(image: Image.Image, side: int = SIDE) -> Image.Image:
    """Resize a grayscale image to side x side, keeping its aspect ratio and padding with black."""
    width, height = image.size
    scale = side / max(width, height)
    resized = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.LANCZOS)
    canvas = Image.new("L", (side, side), 0)
    canvas.paste(resized, ((side - resized.width) // 2, (side - resized.height) // 2))
    return canvas


def to_model_input(pixels: np.ndarray) -> np.ndarray:
    """uint8 (or 0-255 float) images [N, 28, 28] -> float32 [N, 28, 28, 1] in [0, 1]."""
    return (np.asarray(pixels, dtype=np.float32) / 255.0).reshape(-1, SIDE, SIDE, 1)
