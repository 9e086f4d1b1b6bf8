"""One PNG with the whole evidence of a result: the input, the reconstruction and the difference heatmap side
by side, under a line with the verdict, as the original tutorial showed them. For an operator's screen or a
defect report, where three separate images and a JSON body are awkward."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.imaging import heatmap_rgb
from training.preprocessing import SIDE

BACKGROUND, TEXT = (32, 32, 32), (235, 235, 235)
VERDICT_COLOURS = {True: (255, 96, 96), False: (110, 220, 110)}  # anomalous red, normal green
LABELS = ("input", "reconstruction", "difference")


@dataclass(frozen=True)
class PanelLayout:
    width: int
    height: int
    side: int                        # of each picture, in pixels
    corners: tuple[tuple[int, int], ...]  # top left of the input, reconstruction and difference
    font_size: int
    margin: int


def layout(scale: int) -> PanelLayout:
    side, margin = SIDE * scale, 2 * scale
    font_size = max(11, round(side / 13))
    line = round(font_size * 1.5)  # the verdict above the pictures, the labels below them
    corners = tuple((margin + index * (side + margin), margin + line) for index in range(len(LABELS)))
    return PanelLayout(width=3 * side + 4 * margin, height=margin + line + side + line + margin // 2, side=side,
                       corners=corners, font_size=font_size, margin=margin)


def panel_png(image: np.ndarray, reconstruction: np.ndarray, difference: np.ndarray, heatmap_scale: float,
              headline: str, is_anomaly: bool, scale: int) -> bytes:
    """uint8 [28, 28] input and reconstruction, the signed difference, and the verdict's line -> PNG bytes.
    Each picture is 28 x `scale` pixels square, upscaled by nearest neighbour."""
    tiles = [np.repeat(np.asarray(image, np.uint8).reshape(SIDE, SIDE, 1), 3, axis=2),
             np.repeat(np.asarray(reconstruction, np.uint8).reshape(SIDE, SIDE, 1), 3, axis=2),
             heatmap_rgb(difference, heatmap_scale)]
    shape = layout(scale)
    font = ImageFont.load_default(size=shape.font_size)
    canvas = Image.new("RGB", (shape.width, shape.height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((shape.margin, shape.margin), headline, fill=VERDICT_COLOURS[is_anomaly], font=font)
    for tile, label, (left, top) in zip(tiles, LABELS, shape.corners, strict=True):
        canvas.paste(Image.fromarray(tile).resize((shape.side, shape.side), Image.NEAREST), (left, top))
        label_middle = top + shape.side + (shape.corners[0][1] - shape.margin) / 2
        draw.text((left + shape.side / 2, label_middle), label, fill=TEXT, font=font, anchor="mm")
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()
