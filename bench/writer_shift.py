"""Why digits 6 and 7 flag more SD-3 test normals than their target: a diagnosis (docs/quality.md).

Trains the digit-6 and digit-7 models as the quality benchmark does (the training job, default
settings, into a temporary store). For each, it asks whether a simple shape feature (ink, slant,
height, stroke intensity) explains the test halves' FPRs: the held-out training normals that set the
threshold are reweighted to each half's feature distribution, which predicts the FPR that feature
alone would cause. Nothing is fitted. For digit 7 it then counts crossbar "7"s in each set, how often
each style is flagged, and how much each set's order keeps a writer's images together; it estimates,
by a block bootstrap over the test set's order, how much writers clustering in the test set inflate
the variance of digit 7's FPR; and with --figure it draws the flagged SD-3 "7"s above the held-out
"7"s that scored highest (docs/img/digit7-flagged.png).

    python bench/writer_shift.py [--data mnist.npz] [--seed 0] [--figure docs/img/digit7-flagged.png]
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
BOOTSTRAP_BLOCKS = (50, 100, 200, 400)  # consecutive test images per block
BOOTSTRAP_REPLICATES = 4000


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


def shape_features(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image shape statistics that differ between writers."""
    pixels = images.astype(np.float64) / 255.0
    rows, columns = np.mgrid[0:images.shape[1], 0:images.shape[2]]
    mass = pixels.sum(axis=(1, 2)) + 1e-9
    row_mean = (pixels * rows).sum(axis=(1, 2)) / mass
    column_mean = (pixels * columns).sum(axis=(1, 2)) / mass
    d_row = rows - row_mean[:, None, None]
    d_column = columns - column_mean[:, None, None]
    row_variance = (pixels * d_row ** 2).sum(axis=(1, 2)) / mass
    covariance = (pixels * d_row * d_column).sum(axis=(1, 2)) / mass
    stroke = pixels > 0.1
    return {"ink": (images >= INK).sum(axis=(1, 2)).astype(float),  # pixels at or above half intensity
            "slant": covariance / row_variance,  # the shear that deskewing would remove
            "height": np.sqrt(row_variance),
            "stroke intensity": (pixels * stroke).sum(axis=(1, 2)) / np.maximum(stroke.sum(axis=(1, 2)), 1)}


def reweighted_rate(feature: np.ndarray, flagged: np.ndarray, target_feature: np.ndarray, bins: int = 10) -> float:
    """The flag rate of (feature, flagged) reweighted to `target_feature`'s distribution over the
    feature's deciles: the FPR the target would have if only this feature set it apart."""
    edges = np.quantile(feature, np.linspace(0, 1, bins + 1))
    edges[0], edges[-1] = -np.inf, np.inf

    def shares(values):
        return np.histogram(values, edges)[0] / len(values)

    weight = shares(target_feature) / np.maximum(shares(feature), 1e-12)
    per_image = weight[np.clip(np.searchsorted(edges, feature, side="right") - 1, 0, bins - 1)]
    return float((per_image * flagged).sum() / per_image.sum())


def tertile_rates(feature: np.ndarray, flagged: np.ndarray) -> list[float]:
    """Flag rate in the lowest, middle and highest third of the feature."""
    order = np.argsort(feature, kind="mergesort")
    return [float(flagged[part].mean()) for part in np.array_split(order, 3)]


def block_bootstrap_ratio(flagged: np.ndarray, positions: np.ndarray, n_total: int, block: int,
                          replicates: int, rng: np.random.Generator) -> float:
    """Variance of the flagged share when whole blocks of `block` consecutive images are resampled,
    over the variance if every image were independent (binomial). `positions`: each flagged-or-not
    image's place in the order of all `n_total` images."""
    n_blocks = -(-n_total // block)
    block_of = positions // block
    flags_in = np.bincount(block_of, weights=flagged.astype(float), minlength=n_blocks)
    count_in = np.bincount(block_of, minlength=n_blocks).astype(float)
    drawn = rng.integers(0, n_blocks, size=(replicates, n_blocks))
    rates = flags_in[drawn].sum(axis=1) / np.maximum(count_in[drawn].sum(axis=1), 1)
    rate = flagged.mean()
    return float(rates.var() / (rate * (1 - rate) / len(flagged)))


def contact_sheet(rows: list[np.ndarray], scale: int = 3, border: int = 3, gap: int = 18):
    """Rows of 28x28 images, enlarged, each framed in grey, rows apart on white: a PIL image."""
    from PIL import Image

    tile = 28 * scale + 2 * border
    width = max(len(row) for row in rows) * tile
    sheet = Image.new("L", (width, len(rows) * tile + (len(rows) - 1) * gap), 255)
    for r, row in enumerate(rows):
        for c, pixels in enumerate(row):
            framed = Image.new("L", (tile, tile), 90)
            framed.paste(Image.fromarray(pixels).resize((28 * scale, 28 * scale), Image.NEAREST), (border, border))
            sheet.paste(framed, (c * tile, r * (tile + gap)))
    return sheet


def _style_line(name: str, crossbar: np.ndarray, flagged: np.ndarray) -> str:
    def rate(mask):
        return f"{flagged[mask].mean():.2%} ({flagged[mask].sum()} of {mask.sum()})" if mask.any() else "–"
    return (f"| {name} | {crossbar.mean():.1%} ({len(crossbar)}) | {rate(crossbar)} | {rate(~crossbar)} | "
            f"{flagged.mean():.2%} |")


def flagged_sets(digit: int, args, mnist, store: Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Train the digit's model; its held-out training normals and each test half's: images, flags, scores."""
    from training.evaluate import saved_model_outputs
    from training.train import TrainConfig, prepare_data, train_and_publish

    config = TrainConfig(normal=[digit], data=args.data, seed=args.seed, store=store, name=f"digit-{digit}",
                         verbose=0)
    published = train_and_publish(config)
    data = prepare_data(config)  # the same seed, so the same split as the job's
    sets = {"held-out": np.concatenate([data.validation, data.calibration])}
    for name, part in TEST_POPULATIONS:
        x, y = mnist.x_test[part], mnist.y_test[part]
        sets[name] = x[y == digit]
    threshold = published.metadata["threshold"]
    scores = {name: saved_model_outputs(published.path, images, progress=False)["score"] for name, images in sets.items()}
    return {name: (images, scores[name] > threshold, scores[name]) for name, images in sets.items()}


def print_reweighting(digit: int, sets: dict) -> None:
    held_images, held_flagged, _ = sets["held-out"]
    held = shape_features(held_images)
    tests = {name: (shape_features(images), flagged) for name, (images, flagged, _) in sets.items()
             if name != "held-out"}
    print(f"\ndigit {digit}: held-out training normals flagged {held_flagged.mean():.2%}; by ink tertile "
          + ", ".join(f"{rate:.2%}" for rate in tertile_rates(held["ink"], held_flagged)))
    print("| test half | observed FPR | " + " | ".join(f"predicted from {f}" for f in held) + " |")
    print("|" + " --- |" * (2 + len(held)))
    for name, (features, flagged) in tests.items():
        print(f"| {name} | {flagged.mean():.2%} | "
              + " | ".join(f"{reweighted_rate(held[f], held_flagged, features[f]):.2%}" for f in held) + " |")
    for name, (features, _) in tests.items():
        print(f"- {name}: mean ink {features['ink'].mean():.0f} pixels, against {held['ink'].mean():.0f} held out "
              f"(whose standard deviation is {held['ink'].std() / held['ink'].mean():.0%} of their mean)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("MNIST_PATH"), help="MNIST .npz (default: $MNIST_PATH)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", type=Path, default=None, metavar="PNG",
                        help="write the flagged SD-3 \"7\"s and the highest-scoring held-out \"7\"s here")
    args = parser.parse_args()

    import logging

    from training.data import load_mnist

    logging.basicConfig(level=logging.WARNING)
    mnist = load_mnist(args.data)
    with tempfile.TemporaryDirectory() as store:
        by_digit = {digit: flagged_sets(digit, args, mnist, Path(store)) for digit in (6, DIGIT)}
    ink = {"training": shape_features(mnist.x_train)["ink"].mean()}
    ink.update({name: shape_features(mnist.x_test[part])["ink"].mean() for name, part in TEST_POPULATIONS})
    print("Mean ink (pixels at or above half intensity) per image, all digits: "
          + ", ".join(f"{name} {value:.1f}" for name, value in ink.items()))
    print(f"\nSeed {args.seed}. Shape features reweighted (deciles of the held-out normals):")
    for digit, sets in by_digit.items():
        print_reweighting(digit, sets)

    train_sevens = mnist.x_train[mnist.y_train == DIGIT]
    test_sevens = mnist.x_test[mnist.y_test == DIGIT]
    print(f"\n| \"{DIGIT}\"s | crossbar share (n) | crossbar flagged | plain flagged | all flagged |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| all training \"{DIGIT}\"s | {crossbar_mask(train_sevens).mean():.1%} ({len(train_sevens)}) | | | |")
    labels = {"held-out": f"held-out training \"{DIGIT}\"s (set the threshold)"}
    for name, (images, flagged, _) in by_digit[DIGIT].items():
        print(_style_line(labels.get(name, f"test, {name} half"), crossbar_mask(images), flagged))
    held_images, held_flagged, held_scores = by_digit[DIGIT]["held-out"]
    held_crossbar = crossbar_mask(held_images)
    for name, _ in TEST_POPULATIONS:
        share = crossbar_mask(by_digit[DIGIT][name][0]).mean()
        predicted = share * held_flagged[held_crossbar].mean() + (1 - share) * held_flagged[~held_crossbar].mean()
        print(f"- {name}: predicted from its crossbar share alone, at the held-out rates of each style: {predicted:.2%}")
    print(f"\nA crossbar \"{DIGIT}\" directly followed by another, in each set's own order:")
    for name, sevens in (("training set", train_sevens), ("test set", test_sevens)):
        crossbar = crossbar_mask(sevens)
        print(f"- {name}: {follow_rate(crossbar):.1%}, against {crossbar.mean():.1%} overall")

    test_flagged = np.concatenate([by_digit[DIGIT][name][1] for name, _ in TEST_POPULATIONS])  # in test order
    positions = np.flatnonzero(mnist.y_test == DIGIT)
    rng = np.random.default_rng(args.seed)
    ratios = {block: block_bootstrap_ratio(test_flagged, positions, len(mnist.y_test), block,
                                           BOOTSTRAP_REPLICATES, rng) for block in BOOTSTRAP_BLOCKS}
    print(f"\nDigit {DIGIT}'s test FPR ({test_flagged.mean():.2%}): block-bootstrap variance over the binomial one, "
          f"{BOOTSTRAP_REPLICATES} replicates: " + ", ".join(f"blocks of {b}: {r:.2f}" for b, r in ratios.items()))

    if args.figure:
        sd3_images, sd3_flagged, _ = by_digit[DIGIT]["SD-3"]
        top_held = held_images[np.argsort(-held_scores)[:int(sd3_flagged.sum())]]
        contact_sheet([sd3_images[sd3_flagged], top_held]).save(args.figure)
        print(f"\nwrote {args.figure}: the {int(sd3_flagged.sum())} flagged SD-3 \"{DIGIT}\"s in test order (top), "
              f"the as many highest-scoring held-out \"{DIGIT}\"s (bottom)")


if __name__ == "__main__":
    main()
