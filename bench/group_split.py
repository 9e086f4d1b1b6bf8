"""Does holding out whole writers (`train --split-by folder`) calibrate better for new writers?

MNIST has no writer labels, so writers are simulated: MNIST's training "7"s are dealt at random to 60
writers, and each writer gets a handwriting of its own, one random shear, scale, rotation and stroke
width applied to all of its images. Three quarters of the writers (0-44) form an `--images` folder with
a subfolder per writer; the others (45-59) are new writers, never seen. The training job trains on the folder twice, with the same
seed: `--split-by image` (held-out images share their writers with training images) and
`--split-by folder` (held-out images are whole writers). Each threshold is judged by the rate at which
it flags the new writers' images, all normal: the target is 1 %.

The hypothesis, written before the first run: a threshold calibrated on images of writers the model
was trained on flags new writers above the target, and one calibrated on held-out writers does not.

    python bench/group_split.py [--data mnist.npz] [--seeds 0 1 2] [--epochs 80]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DIGIT = 7
WRITERS, SEEN_SHARE = 60, 0.75  # writers, and the share of them in the training folder
STROKES = {"thin": ImageFilter.MinFilter(3), "regular": None, "thick": ImageFilter.MaxFilter(3)}


def handwriting(rng: np.random.Generator) -> dict:
    """One writer's style: how every image of theirs is drawn differently from MNIST's."""
    return {"shear": rng.uniform(-0.35, 0.35), "scale": rng.uniform(0.8, 1.1),
            "rotation": math.radians(rng.uniform(-12, 12)), "stroke": rng.choice(list(STROKES))}


def write_like(image: np.ndarray, style: dict) -> np.ndarray:
    """`image` (28x28 uint8) redrawn in `style`: an affine map about the centre, then a stroke filter."""
    cos, sin, scale = math.cos(style["rotation"]), math.sin(style["rotation"]), style["scale"]
    forward = np.array([[scale * cos, scale * (style["shear"] * cos - sin)],
                        [scale * sin, scale * (style["shear"] * sin + cos)]])
    inverse = np.linalg.inv(forward)  # PIL maps each output pixel back to the input
    centre = np.array([13.5, 13.5])
    offset = centre - inverse @ centre
    drawn = Image.fromarray(image).transform(
        (28, 28), Image.Transform.AFFINE, (*inverse[0], offset[0], *inverse[1], offset[1]),
        resample=Image.Resampling.BILINEAR)
    if STROKES[style["stroke"]] is not None:  # half-way to the eroded or dilated stroke: a full step erases 7s
        drawn = Image.blend(drawn, drawn.filter(STROKES[style["stroke"]]), 0.5)
    return np.asarray(drawn)


def simulated_writers(images: np.ndarray, seed: int, writers: int = WRITERS) -> tuple[list[np.ndarray], list[dict]]:
    rng = np.random.default_rng(seed)
    writer_of = rng.integers(0, writers, len(images))
    styles = [handwriting(rng) for _ in range(writers)]
    return ([np.stack([write_like(image, styles[w]) for image in images[writer_of == w]]) for w in range(writers)],
            styles)


def run(data: str | None, seeds: list[int], epochs: int, writers: int = WRITERS) -> list[dict]:
    from training.data import load_mnist
    from training.evaluate import saved_model_outputs
    from training.train import TrainConfig, train_and_publish

    mnist = load_mnist(data)
    sevens = mnist.x_train[mnist.y_train == DIGIT]
    rows = []
    for seed in seeds:
        drawn, _ = simulated_writers(sevens, seed, writers)
        seen = int(round(SEEN_SHARE * writers))
        new_writers = np.concatenate(drawn[seen:])
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / "images"
            for w, images in enumerate(drawn[:seen]):
                (folder / f"writer-{w:03d}").mkdir(parents=True)
                for i, image in enumerate(images):
                    Image.fromarray(image).save(folder / f"writer-{w:03d}" / f"{i:04d}.png")
            for split_by in ("image", "folder"):
                config = TrainConfig(images=str(folder), split_by=split_by, seed=seed, epochs=epochs,
                                     store=Path(scratch) / "store", name=f"by-{split_by}", verbose=0)
                started = time.monotonic()
                published = train_and_publish(config)
                seconds = time.monotonic() - started
                metadata = published.metadata
                scores = saved_model_outputs(published.path, new_writers, progress=False)[metadata["score_method"]]
                flagged = int(np.sum(scores > metadata["threshold"]))
                rows.append({"seed": seed, "split_by": split_by, "threshold": metadata["threshold"],
                             "n_calibration": metadata["calibration"]["n_images"],
                             "n_new": len(new_writers), "flagged": flagged, "fpr": flagged / len(new_writers),
                             "seconds": seconds})
                print(f"seed {seed}, --split-by {split_by}: threshold {metadata['threshold']:.3f}, new writers "
                      f"flagged {flagged}/{len(new_writers)} = {100 * flagged / len(new_writers):.2f} %", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| seed | --split-by | calibration images | threshold | new writers' normals flagged (target 1 %) | train s |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['seed']} | {r['split_by']} | {r['n_calibration']} | {r['threshold']:.3f} | "
              f"{100 * r['fpr']:.2f} % ({r['flagged']} of {r['n_new']}) | {r['seconds']:.0f} |" for r in rows]
    for split_by in ("image", "folder"):
        mine = [r for r in rows if r["split_by"] == split_by]
        flagged, total = sum(r["flagged"] for r in mine), sum(r["n_new"] for r in mine)
        lines.append(f"| **all** | **{split_by}** | | | **{100 * flagged / total:.2f} %** ({flagged} of {total}) | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="MNIST .npz (default: $MNIST_PATH, else Keras' cache)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--writers", type=int, default=WRITERS, help="simulated writers; 3/4 of them in the folder")
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows = run(args.data, args.seeds, args.epochs, args.writers)
    print()
    print(table(rows))
    print(f"\nTotal time {(time.monotonic() - started) / 60:.1f} min.")


if __name__ == "__main__":
    main()
