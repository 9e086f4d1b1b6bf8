"""Why digit 7's test FPR misses its target: crossbar "7"s and unseen writers (docs/quality.md).

Trains the digit-7 model as the quality benchmark does (the training job, default settings, into a
temporary store). Then it counts crossbar "7"s among the held-out training "7"s that set the threshold
and in the test set's two writer populations, and how often each style is flagged. It also measures
how much the order of each set keeps a writer's images together.

    python bench/digit7_styles.py [--data mnist.npz] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DIGIT = 7
INK = 128  # a pixel at or above this is ink
# A crossbar is a row in the middle of the digit whose ink run is this many times the stem's usual width.
CROSSBAR_RATIO, CROSSBAR_MIN_RUN = 2.2, 6
MIDDLE = (0.35, 0.8)  # the rows searched for a crossbar, as fractions of the digit's height from its top
LOWER = 0.3  # the stem's usual width: median run over the rows below this fraction of the height
TEST_POPULATIONS = (("SD-3", slice(0, 5000)), ("SD-1", slice(5000, None)))  # as in bench/quality.py


def longest_runs(images: np.ndarray) -> np.ndarray:
    """[N, 28, 28] images -> [N, 28]: the longest horizontal run of ink in each row."""
    ink = images >= INK
    run = np.zeros(ink.shape[:2], int)
    longest = np.zeros(ink.shape[:2], int)
    for column in range(ink.shape[2]):
        run = (run + 1) * ink[:, :, column]
        longest = np.maximum(longest, run)
    return longest


def crossbar_mask(images: np.ndarray) -> np.ndarray:
    """Which "7"s have a crossbar: a middle row whose ink run is far wider than the stem."""
    runs = longest_runs(images)
    result = np.zeros(len(images), bool)
    for i, row_runs in enumerate(runs):
        rows = np.flatnonzero(row_runs)
        if len(rows) < 5:
            continue
        top, height = rows[0], rows[-1] - rows[0] + 1
        stem = np.median(row_runs[top + int(LOWER * height):rows[-1] + 1])
        middle = row_runs[top + int(MIDDLE[0] * height):top + int(MIDDLE[1] * height)]
        result[i] = middle.size > 0 and middle.max() >= max(CROSSBAR_MIN_RUN, CROSSBAR_RATIO * stem)
    return result


def follow_rate(flags: np.ndarray) -> float:
    """How often a flagged item is directly followed by another: the base rate if the order is random."""
    flags = np.asarray(flags, bool)
    return float(flags[1:][flags[:-1]].mean())


def _style_line(name: str, crossbar: np.ndarray, flagged: np.ndarray) -> str:
    def rate(mask):
        return f"{flagged[mask].mean():.2%} ({flagged[mask].sum()} of {mask.sum()})" if mask.any() else "–"
    return (f"| {name} | {crossbar.mean():.1%} ({len(crossbar)}) | {rate(crossbar)} | {rate(~crossbar)} | "
            f"{flagged.mean():.2%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("MNIST_PATH"), help="MNIST .npz (default: $MNIST_PATH)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import logging

    from training.data import load_mnist
    from training.evaluate import saved_model_outputs
    from training.train import TrainConfig, prepare_data, train_and_publish

    logging.basicConfig(level=logging.WARNING)
    mnist = load_mnist(args.data)
    with tempfile.TemporaryDirectory() as store:
        config = TrainConfig(normal=[DIGIT], data=args.data, seed=args.seed, store=Path(store), verbose=0)
        published = train_and_publish(config)
        threshold = published.metadata["threshold"]
        data = prepare_data(config)  # the same seed, so the same split as the job's
        held_out = np.concatenate([data.validation, data.calibration])
        sets = [("held-out training \"7\"s (set the threshold)", held_out)]
        for name, part in TEST_POPULATIONS:
            x, y = mnist.x_test[part], mnist.y_test[part]
            sets.append((f"test, {name} half", x[y == DIGIT]))
        flagged = {name: saved_model_outputs(published.path, images, progress=False)["score"] > threshold
                   for name, images in sets}

    train_sevens = mnist.x_train[mnist.y_train == DIGIT]
    test_sevens = mnist.x_test[mnist.y_test == DIGIT]
    print(f"digit-{DIGIT} model, seed {args.seed}: threshold {threshold:.4g}\n")
    print(f"| \"{DIGIT}\"s | crossbar share (n) | crossbar flagged | plain flagged | all flagged |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| all training \"{DIGIT}\"s | {crossbar_mask(train_sevens).mean():.1%} ({len(train_sevens)}) | | | |")
    for name, images in sets:
        print(_style_line(name, crossbar_mask(images), flagged[name]))
    print("\nA crossbar \"7\" directly followed by another, in each set's own order:")
    for name, sevens in (("training set", train_sevens), ("test set", test_sevens)):
        crossbar = crossbar_mask(sevens)
        print(f"- {name}: {follow_rate(crossbar):.1%}, against {crossbar.mean():.1%} overall")


if __name__ == "__main__":
    main()
