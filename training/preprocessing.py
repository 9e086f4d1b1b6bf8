"""The model's input contract: 28x28 grayscale, float32 in [0, 1], light strokes on a dark background.

Pure numpy/Pillow (no TensorFlow), so the service can share it without importing the training stack.
"""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image, ImageOps

from training.framing import FRAMINGS, PolarityError, frame

SIDE = 28
INPUT_CONTRACT = {
    "shape": [SIDE, SIDE, 1],
    "dtype": "float32",
    "range": [0.0, 1.0],
    "polarity": "light foreground on dark background (white digit on black, as MNIST)",
}


def framing_of_version(metadata: dict) -> str:
    """The framing a published version was trained with; versions that predate the field were `pad`.

    Raises ValueError for a framing this code does not know (a version from newer code, or a damaged
    one), so it is refused when loaded rather than failing every upload it would frame.
    """
    framing = metadata.get("input", {}).get("framing", "pad")
    if framing not in FRAMINGS:
        raise ValueError(f"its input framing {framing!r} is unknown (known: {', '.join(FRAMINGS)})")
    return framing


def input_contract(framing: str) -> dict:
    """A version's input contract: the fixed part, and how it frames images of other sizes."""
    return {**INPUT_CONTRACT, "framing": framing, "framing_means": FRAMINGS[framing]}


SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class PixelRangeError(ValueError):
    """Pixel values that do not map onto 0-255 without guessing their range."""


class SeveralImagesError(ValueError):
    """A file that holds several images (a multi-page TIFF, an animated GIF or WebP): which one to read
    would be a guess."""


# Images that decode, but are not one image the model reads: the service answers them 422, and an image
# folder's job names the file.
NOT_ONE_MODEL_IMAGE = (PixelRangeError, PolarityError, SeveralImagesError)


class CorruptImageData(ValueError):
    """Image data that Pillow fails on with an error it does not mean for corrupt data."""


# How to turn an image upright for each EXIF orientation (2-8; 1 is upright), as viewers do.
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
            7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
_EXIF_ORIENTATION = 0x0112


def to_grayscale(image: Image.Image, blank: int = 0) -> Image.Image:
    """8-bit grayscale (mode L) view of any Pillow image, upright as its EXIF orientation says.

    Upright, so a camera's rotated JPEG is scored, and trained on, as a viewer shows it.
    Pillow's own conversion clips wider pixels at 255, which turns a 16-bit image into a solid blob.
    So 16-bit images keep their high byte (65535 -> 255, v * 257 -> v). 32-bit integer and float
    images have no fixed range: like JSON pixels, their values must already lie in 0-255.
    Transparent pixels take the level of the image's background (`transparent_level`); `blank` is the
    level of an image with nothing opaque in it (black by default, the model's background).
    """
    gray = _eight_bit_gray(image, blank)
    turn = _UPRIGHT.get(_exif_orientation(image))
    return gray.transpose(turn) if turn is not None else gray


def _eight_bit_gray(image: Image.Image, blank: int) -> Image.Image:
    if _is_sixteen_bit(image):
        return Image.fromarray((np.asarray(image) >> 8).astype(np.uint8))
    if image.mode in ("I", "F"):
        return Image.fromarray(_levels_within_0_255(np.asarray(image), image.mode))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        level = transparent_level(rgba, blank)
        canvas = Image.new("RGBA", rgba.size, (level, level, level, 255))
        image = Image.alpha_composite(canvas, rgba)
    return image if image.mode == "L" else image.convert("L")


def transparent_level(rgba: Image.Image, blank: int = 0) -> int:
    """The gray level an RGBA image's transparent pixels take: that of the image's background.

    A drawing on a transparent canvas, as drawing apps and HTML canvases save one, is ink of one colour whose
    shape is in the alpha channel. Its canvas takes black or white, whichever the ink stands out against: black
    ink is a dark-on-light drawing (as a browser shows it), not the blank image that a black canvas would make
    of it. A page with transparent margins or holes (a scan rotated in an editor) is mostly opaque and holds
    both paper and ink: its transparent pixels take the paper's level. `blank` is the level of an image with
    nothing opaque in it.
    """
    alpha = np.asarray(rgba.getchannel("A"))
    if alpha.min() == 255:
        return blank  # nothing is transparent: the level is never used
    levels = np.asarray(rgba.convert("L"))  # the colour of each pixel, whatever its alpha
    # Each level's weight (its pixels' opacity), summed in slices of a quarter million pixels: a 40-megapixel
    # upload would otherwise take a gigabyte in float copies, beside the image itself.
    rows = max(1, 250_000 // alpha.shape[1])
    weight_of_level = np.zeros(256)
    for top in range(0, alpha.shape[0], rows):
        weight_of_level += np.bincount(levels[top:top + rows].ravel(), minlength=256,
                                       weights=alpha[top:top + rows].ravel().astype(np.float32) / 255)
    opacity = weight_of_level.sum()
    if opacity == 0:
        return blank
    median = int(np.searchsorted(np.cumsum(weight_of_level), opacity / 2))
    far_from_median = weight_of_level[np.abs(np.arange(256) - median) > 64].sum() / opacity
    # A drawing's opaque pixels are one colour (its edges are in alpha); a photographed digit darkens about 1 %
    # of its page, so a tenth of that tells a page.
    if opacity >= alpha.size / 2 and far_from_median >= 0.001:
        return median  # a page: its paper, the opaque pixels' median
    return 255 if median < 128 else 0


def _exif_orientation(image: Image.Image) -> int | None:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a corrupt EXIF block costs the orientation, never the image;
        return None    # Pillow's EXIF parser raises TypeError, struct.error, ValueError and more


def _is_sixteen_bit(image: Image.Image) -> bool:
    # Older Pillow versions open 16-bit grayscale PNGs as 32-bit "I"; a PNG holds at most 16 bits.
    return image.mode in SIXTEEN_BIT_MODES or (image.mode == "I" and image.format == "PNG")


def _levels_within_0_255(values: np.ndarray, mode: str) -> np.ndarray:
    kind = "32-bit integer" if mode == "I" else "floating-point"
    if mode == "F" and not np.isfinite(values).all():
        raise PixelRangeError(f"{kind} image holds NaN or infinite pixel values")
    low, high = values.min(), values.max()
    if low < 0 or high > 255:
        raise PixelRangeError(f"{kind} pixel values must lie in 0-255, found {low:g} to {high:g}; "
                              "send an 8- or 16-bit image")
    refuse_unit_range(float(high), f"{kind} pixel values")
    return np.rint(values).astype(np.uint8)


def refuse_unit_range(high: float, what: str) -> None:
    """Values of 0-1 are an image scaled for a network, not one of 0-255: read as 0-255 they are black (or,
    rounded, a mask of 0 and 1), and every such image would be flagged. No image worth scoring has its
    brightest pixel at 1/255. 8-bit images are not checked: a viewer shows them black, and framing them as
    MNIST did stretches their levels anyway."""
    if 0 < high <= 1:
        raise PixelRangeError(f"{what} lie in 0-1 (the highest is {high:g}); they are read on a scale of 0-255, "
                              "where they are all but black: multiply them by 255")


# A JPEG decoder can scale by 1/2, 1/4 or 1/8 as it decodes, for a fraction of the work: a 12-megapixel
# photo takes 2.6-6 times less time (bench/decode.py). Keeping at least four times the model's side
# leaves the framing its detail (docs/performance.md).
DECODE_AT_LEAST = 4 * SIDE


def prepare_image(image: Image.Image, *, invert: bool = False, framing: str = "pad") -> np.ndarray:
    """Any Pillow image -> uint8 [28, 28] grayscale, light strokes on dark: what the service scores
    and what the training job and `recalibrate` read from folders, so both see the same pixels.

    `invert` is for dark-on-light images (a scan, a drawing on white): transparent pixels become the
    image's own background (`transparent_level`) and then, with everything else, are inverted.
    Inverting comes before framing, so the padding is background too. `framing` is the model's
    (training/framing.py); an image already 28x28 is taken as it is.
    Pass the image before it is loaded, so a large JPEG is decoded at a reduced scale.
    """
    _refuse_several_images(image)
    if image.size != (SIDE, SIDE):
        image.draft(None, (DECODE_AT_LEAST, DECODE_AT_LEAST))  # a no-op for other formats, or once loaded
    try:
        image.load()
    # A TIFF whose strip offsets have the wrong type, or are too large, reaches Pillow's seek() with them.
    except (TypeError, OverflowError) as error:
        raise CorruptImageData(f"corrupt {image.format or 'image'} data ({error})") from error
    gray = to_grayscale(image, blank=255 if invert else 0)
    if invert:
        gray = ImageOps.invert(gray)
    return frame(gray, framing, SIDE)


def _refuse_several_images(image: Image.Image) -> None:
    # Pillow reads the first frame and says nothing of the rest: the second page of a scan, or a "9" in
    # frame 2 of a GIF whose frame 1 is a "1", would go unseen. A phone's JPEG with a preview (MPO) is one
    # image: its first frame is the photo, by the format's definition.
    if image.format == "MPO":
        return
    try:
        frames = image.n_frames if getattr(image, "is_animated", False) else 1
    # Counting frames parses each frame's header, with errors Image.open() would have taken for "not this
    # format" (and KeyError, OverflowError for a TIFF's unknown compression or huge offsets): corrupt data.
    except (IndexError, KeyError, TypeError, OverflowError, struct.error) as error:
        raise CorruptImageData(f"corrupt {image.format} data after its first image ({error})") from error
    if frames > 1:
        raise SeveralImagesError(f"the {image.format} file holds {frames} images (pages or animation frames), "
                                 "and which one to read would be a guess: save each as its own file")


def to_model_input(pixels: np.ndarray) -> np.ndarray:
    """uint8 (or 0-255 float) images [N, 28, 28] -> float32 [N, 28, 28, 1] in [0, 1]."""
    return (np.asarray(pixels, dtype=np.float32) / 255.0).reshape(-1, SIDE, SIDE, 1)
