"""Framing benchmark: MNIST test digits sent as scans and photos, scored with each framing.

Each test digit is cropped to its ink and drawn, dark on light, onto a page of a few fixed kinds
(below; chosen before any run, not tuned). The page is JPEG-encoded and scored exactly as the service
scores an upload with `?resize=true&invert=true` (`app.imaging.decode_image`, then the published
SavedModel), once with each framing (training/framing.py). The 28x28 originals are the reference.
First, why framing must set levels: the same 28x28 digits with their black background lifted a little.

    python bench/framing.py [--mnist PATH] [--model VERSION_DIR] [--anomalies 2000]
                            [--split test|train] [--without-lighting-correction]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from app.errors import InvalidInput  # noqa: E402
from app.imaging import decode_image  # noqa: E402
from decode import full_scale_decode  # noqa: E402
from training.framing import FRAMINGS  # noqa: E402
from training.metrics import auroc  # noqa: E402


@dataclass(frozen=True)
class Page:
    """How a digit is put on paper and photographed."""
    name: str
    paper: int = 255  # paper level, 0-255
    ink: int = 0
    noise: float = 0.0  # sensor noise, standard deviation in levels
    shadow: int = 0  # the paper darkens by this many levels from the left edge to the right
    vignette: int = 0  # ... by this many from the middle to the corners
    hand_shadow: int = 0  # ... by this many under a soft round shadow over the lower left
    crop_to_ink: bool = False  # the page is only as wide as the ink: no margin left or right
    digit_height: float = 0.4  # share of the page's height the ink fills
    size: tuple[int, int] = (600, 800)  # width, height


PAGES = (
    Page("scan: white paper, black ink, wide margins"),
    Page("photo: grey paper (235), ink 40, noise 4", paper=235, ink=40, noise=4),
    Page("dim photo, landscape: paper 200, ink 60, noise 8, tight crop", paper=200, ink=60, noise=8,
         digit_height=0.8, size=(800, 600)),
    # Limits, added after the three above: a shadow across the page, then a deep one; then, with the
    # lighting correction, a vignette and a shadow that is not smooth across the page.
    Page("shadowed photo: paper 250 on the left to 170 on the right, ink 40, noise 4", paper=250, ink=40,
         noise=4, shadow=80),
    Page("deep shadow: paper 250 to 120", paper=250, ink=40, noise=4, shadow=130),
    Page("vignette: paper 250 in the middle, 150 in the corners", paper=250, ink=40, noise=4, vignette=100),
    Page("shadow of a hand: paper 250, down to 140 under a soft round shadow at the lower left", paper=250,
         ink=40, noise=4, hand_shadow=110),
    Page("digit cropped to its ink, no margin: paper 235, ink 40, noise 4", paper=235, ink=40, noise=4,
         digit_height=1.0, crop_to_ink=True),
)


def photograph(digit: np.ndarray, page: Page, rng: np.random.Generator) -> bytes:
    """A 28x28 light-on-dark digit -> JPEG bytes of it drawn dark on light on `page`."""
    rows, columns = np.flatnonzero(digit.max(axis=1)), np.flatnonzero(digit.max(axis=0))
    ink = digit[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    width, height = page.size
    ink_height = int(height * page.digit_height)
    ink_width = min(width, max(1, round(ink_height * ink.shape[1] / ink.shape[0])))
    width = ink_width if page.crop_to_ink else width
    drawn = np.asarray(Image.fromarray(ink).resize((ink_width, ink_height), Image.BICUBIC), np.float32) / 255
    coverage = np.zeros((height, width), np.float32)
    top, left = (height - ink_height) // 2, (width - ink_width) // 2
    coverage[top:top + ink_height, left:left + ink_width] = drawn
    rows, columns = np.indices((height, width), dtype=np.float32)
    rows, columns = rows / height, columns / width
    paper = (page.paper - np.linspace(0, page.shadow, width, dtype=np.float32)[None, :]
             - page.vignette * ((2 * rows - 1) ** 2 + (2 * columns - 1) ** 2) / 2
             - page.hand_shadow * np.exp(-((rows - 0.8) / 0.35) ** 2 - ((columns - 0.15) / 0.35) ** 2))
    levels = paper - (paper - page.ink) * coverage + rng.normal(0, page.noise, coverage.shape)
    buffer = io.BytesIO()
    Image.fromarray(levels.clip(0, 255).astype(np.uint8)).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def figures(scores: np.ndarray, is_anomaly: np.ndarray, threshold: float) -> dict[str, float]:
    return {"auroc": auroc(is_anomaly, scores),
            "normals_flagged": float(np.mean(scores[~is_anomaly] > threshold)),
            "anomalies_flagged": float(np.mean(scores[is_anomaly] > threshold)),
            "median_normal_score": float(np.median(scores[~is_anomaly]))}


BACKGROUND_LEVELS = (0, 1, 2, 3, 5, 8, 12, 20)


def background_table(score, threshold: float, digits: np.ndarray, is_anomaly: np.ndarray,
                     levels=BACKGROUND_LEVELS) -> list[tuple[int, dict[str, float]]]:
    """(level, figures) rows: every pixel darker than `level` raised to it, as a grey background is."""
    return [(level, figures(score(np.maximum(digits, level).astype(np.uint8)), is_anomaly, threshold))
            for level in levels]


def framing_table(score, threshold: float, digits: np.ndarray, is_anomaly: np.ndarray,
                  pages=PAGES, seed: int = 0) -> list[tuple[str, str, dict[str, float]]]:
    """(page, framing, figures) rows; `score` maps uint8 [N, 28, 28] to scores.

    An upload the service would refuse with a 422 (a background it takes for light) gets no verdict:
    the figures cover the accepted uploads, and `refused` is the share refused.
    """
    rows = [("the 28x28 originals", "-", {**figures(score(digits), is_anomaly, threshold), "refused": 0.0})]
    for page in pages:
        rng = np.random.default_rng(seed)
        uploads = [photograph(digit, page, rng) for digit in digits]
        for framing in FRAMINGS:
            framed = [_framed_or_none(data, framing) for data in uploads]
            accepted = np.array([image is not None for image in framed])
            result = figures(score(np.stack([image for image in framed if image is not None])),
                             is_anomaly[accepted], threshold)
            rows.append((page.name, framing, {**result, "refused": float(1 - accepted.mean())}))
    return rows


def _framed_or_none(data: bytes, framing: str) -> np.ndarray | None:
    try:
        return decode_image(data, resize=True, invert=True, framing=framing, max_pixels=10**8)
    except InvalidInput:  # the service's 422
        return None


def decoding_stability(score, threshold: float, digits: np.ndarray, page: Page = PAGES[0],
                       seed: int = 0) -> dict[str, float]:
    """Scores of `page` uploads decoded at a reduced scale (as served) against at full scale, `mnist` framing."""
    rng = np.random.default_rng(seed)
    uploads = [photograph(digit, page, rng) for digit in digits]
    reduced = score(np.stack([decode_image(data, resize=True, invert=True, framing="mnist", max_pixels=10**8)
                              for data in uploads]))
    full = score(np.stack([full_scale_decode(data, invert=True, framing="mnist") for data in uploads]))
    moved = np.abs(reduced - full)
    return {"median": float(np.median(moved)), "p99": float(np.percentile(moved, 99)), "max": float(moved.max()),
            "verdicts_changed": int(((reduced > threshold) != (full > threshold)).sum()), "n": len(digits)}


def bench_digits(mnist: str | None, normal: list[int], anomalies: int, seed: int, split: str = "test"):
    """All test normals and `anomalies` random test anomalies; or, with split="train", as many random
    training normals and anomalies (to set framing parameters without looking at the test digits)."""
    from training.data import load_mnist

    data = load_mnist(mnist)
    images, labels = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
    is_normal = np.isin(labels, normal)
    rng = np.random.default_rng(seed)
    normals = np.flatnonzero(is_normal)
    if split != "test":
        normals = rng.permutation(normals)[:int(np.isin(data.y_test, normal).sum())]
    index = np.r_[normals, rng.permutation(np.flatnonzero(~is_normal))[:anomalies]]
    return images[index], ~is_normal[index]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=os.environ.get("MNIST_PATH"), help="mnist.npz (default: $MNIST_PATH)")
    parser.add_argument("--model", type=Path, default=None,
                        help="a version folder (default: the latest in model_store/mnist-vae)")
    parser.add_argument("--anomalies", type=int, default=2000, help="test anomalies to sample (all normals are used)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=("test", "train"), default="test",
                        help="which MNIST digits to photograph (train: for setting framing parameters)")
    parser.add_argument("--without-lighting-correction", action="store_true",
                        help="frame as before uneven lighting was evened out, for comparison")
    args = parser.parse_args(argv)
    if args.without_lighting_correction:
        import training.framing

        training.framing.MIN_SHADOW = np.inf  # the correction's gate never opens

    from app.detector import Detector
    from training.store import list_versions

    model = args.model or ROOT / "model_store" / "mnist-vae" / str(list_versions(ROOT / "model_store" / "mnist-vae")[-1])
    detector = Detector.load(model)
    digits, is_anomaly = bench_digits(args.mnist, detector.metadata["normal_classes"], args.anomalies, args.seed,
                                      args.split)
    print(f"model {model} (threshold {detector.threshold:.3f}); {int((~is_anomaly).sum())} normal and "
          f"{int(is_anomaly.sum())} anomalous MNIST {args.split} digits, each sent as a JPEG with "
          f"?resize=true&invert=true{'; no lighting correction' if args.without_lighting_correction else ''}\n")
    def score(images):
        return detector.predict(images).score

    print("| 28x28 digits, background raised to | AUROC | normals flagged | anomalies flagged | median normal score |")
    print("| --- | --- | --- | --- | --- |")
    for level, result in background_table(score, detector.threshold, digits, is_anomaly):
        print(f"| {level} | {result['auroc']:.4f} | {result['normals_flagged']:.1%} | "
              f"{result['anomalies_flagged']:.1%} | {result['median_normal_score']:.2f} |")
    print()
    print("| upload | framing | AUROC | normals flagged | anomalies flagged | median normal score | refused (422) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for page, framing, result in framing_table(score, detector.threshold, digits, is_anomaly, seed=args.seed):
        print(f"| {page} | {framing} | {result['auroc']:.4f} | {result['normals_flagged']:.1%} | "
              f"{result['anomalies_flagged']:.1%} | {result['median_normal_score']:.2f} | {result['refused']:.1%} |")
    moved = decoding_stability(score, detector.threshold, digits, seed=args.seed)
    print(f"\n{PAGES[0].name}, mnist framing, JPEG decoded at a reduced scale (as served) against full scale: "
          f"scores move by {moved['median']:.3f} (median), {moved['p99']:.3f} (99th percentile), at most "
          f"{moved['max']:.3f}; verdicts changed: {moved['verdicts_changed']} of {moved['n']}")


if __name__ == "__main__":
    main()
