"""Decoding benchmark: what one upload costs the decode pool, by kind of image.

Each kind is decoded and prepared exactly as the service does it (`app.imaging.decode_image`, with
`?resize=true` where the image is not 28x28, framed with --framing: the default model's is `mnist`). A photo-sized JPEG is also decoded at full scale, as it
was before the decoder was asked to reduce it, and the two results are compared pixel by pixel.
Figures are medians of --repeats runs, all in one process.

    python bench/decode.py [--repeats 7] [--mnist PATH] [--framing mnist|pad]
"""

from __future__ import annotations

import argparse
import functools
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.imaging import decode_image  # noqa: E402
from training.framing import FRAMINGS  # noqa: E402
from training.preprocessing import prepare_image  # noqa: E402

MAX_PIXELS = 40_000_000  # the service's default VAE_MAX_IMAGE_PIXELS
PHOTO_SIZE = (4032, 3024)  # a 12-megapixel phone camera


def a_digit(mnist: str | None) -> np.ndarray:
    if mnist and Path(mnist).is_file():
        with np.load(mnist) as data:
            return data["x_test"][data["y_test"] == 1][0]
    from tests.synthetic import make_images  # a stand-in when MNIST is not at hand

    return make_images(np.ones(1, int), seed=0)[0]


def encode(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def uploads(digit: np.ndarray) -> dict[str, tuple[bytes, bool]]:
    """Encoded images by kind, each with the `invert` flag a client would send."""
    # Dark ink on white paper, photographed: colour, sensor noise, JPEG at a camera's quality.
    paper = Image.fromarray(255 - digit).resize(PHOTO_SIZE, Image.BICUBIC).convert("RGB")
    noise = np.random.default_rng(0).normal(0, 6, (PHOTO_SIZE[1], PHOTO_SIZE[0], 3))
    photo = Image.fromarray((np.asarray(paper, np.float32) + noise).clip(0, 255).astype(np.uint8))
    sparse = np.zeros((6000, 6000), np.uint8)
    sparse[1500:4500, 2800:3200] = 255
    return {
        "28x28 PNG (an MNIST digit)": (encode(Image.fromarray(digit), "PNG"), False),
        "6000x6000 PNG, 1-bit-like drawing": (encode(Image.fromarray(sparse), "PNG"), False),
        "4032x3024 JPEG photo, dark on light": (encode(photo, "JPEG", quality=92), True),
    }


def full_scale_decode(data: bytes, invert: bool, framing: str) -> np.ndarray:
    """The path before reduced-scale decoding: the whole JPEG decoded, then framed."""
    image = Image.open(io.BytesIO(data))
    image.load()  # once loaded, the decoder can no longer reduce the image
    return prepare_image(image, invert=invert, framing=framing)


def median_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--mnist", default=None, help="mnist.npz for a real digit (default: a synthetic one)")
    parser.add_argument("--framing", choices=sorted(FRAMINGS), default="mnist")
    args = parser.parse_args(argv)

    print(f"framing: {args.framing}\n")
    print(f"| upload | bytes | decode + prepare, median of {args.repeats} (ms) |")
    print("| --- | --- | --- |")
    photo = None
    for kind, (data, invert) in uploads(a_digit(args.mnist)).items():
        resize = "28x28" not in kind
        decode = functools.partial(decode_image, data, resize=resize, invert=invert, framing=args.framing,
                                   max_pixels=MAX_PIXELS)
        cost = median_ms(decode, args.repeats)
        print(f"| {kind} | {len(data):,} | {cost:.1f} |")
        if "JPEG" in kind:
            photo = kind, data, invert, cost
    kind, data, invert, reduced_cost = photo
    full_cost = median_ms(lambda: full_scale_decode(data, invert, args.framing), args.repeats)
    print(f"| {kind}, decoded at full scale (before) | {len(data):,} | {full_cost:.1f} |")
    reduced = decode_image(data, resize=True, invert=invert, framing=args.framing, max_pixels=MAX_PIXELS)
    difference = np.abs(reduced.astype(int) - full_scale_decode(data, invert, args.framing).astype(int))
    print(f"\nreduced-scale JPEG decoding: {full_cost / reduced_cost:.1f}x faster; the 28x28 result differs "
          f"by at most {difference.max()} of 255 (mean {difference.mean():.3f})")


if __name__ == "__main__":
    main()
