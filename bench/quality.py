"""One-class MNIST benchmark: for each digit, train on that digit only, score the whole test set.

Every model is trained, calibrated and published by the training job itself (into a temporary store),
and its metrics are those of the report it publishes: the MNIST test set scored through the exported
SavedModel. Printed beside the published one-class MNIST anchors (AUROC, test set).

    python bench/quality.py [--data mnist.npz] [--digits 0 1 ...] [--write docs/quality.md] [training options]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ANCHORS = [  # published one-class MNIST AUROC (%), mean over the 10 digits unless noted
    ("Deep SVDD (Ruff et al. 2018)", "94.8", "99.7"),
    ("OCGAN (Perera et al. 2019)", "97.5", "–"),
    ("GEOM (Golan & El-Yaniv 2018, as reprinted)", "98.0", "–"),
]
# MNIST's first 5,000 test images come from NIST SD-3 (Census Bureau staff), the last 5,000 from SD-1
# (high-school students), all by writers absent from the training set (LeCun et al.). A test FPR far
# from the target in one half only is a shift between writer populations, not calibration noise.
TEST_POPULATIONS = (("SD-3", slice(0, 5000)), ("SD-1", slice(5000, None)))
# For the recalibration demonstration, test images in alternating blocks of this many: the test set keeps
# each writer's images together, so the two halves have mostly different writers, from both populations.
RECALIBRATION_BLOCK = 500
FPR_TOLERANCE = 0.005  # the acceptance bound: test-set FPR within ±0.5 percentage points of the target
# --write replaces only the text between these markers, so the prose of docs/quality.md survives.
SECTION_START, SECTION_END = "<!-- bench/quality.py: start -->", "<!-- bench/quality.py: end -->"
TRAINING_OPTIONS = ("epochs", "batch_size", "latent_dim", "hidden_units", "architecture", "beta",
                    "learning_rate", "seed", "target_fpr", "score_method")


def parse_args() -> argparse.Namespace:
    from training.train import TrainConfig

    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("MNIST_PATH"), help="MNIST .npz (default: $MNIST_PATH)")
    parser.add_argument("--digits", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--write", type=Path,
                        help="also write the results into this Markdown file (its generated section only)")
    for option in TRAINING_OPTIONS:
        default = getattr(defaults, option)
        parser.add_argument(f"--{option.replace('_', '-')}", type=type(default), default=default)
    return parser.parse_args()


def run(args: argparse.Namespace) -> list[dict]:
    import logging

    from training.data import load_mnist
    from training.train import TrainConfig, train_and_publish

    logging.basicConfig(level=logging.WARNING)
    mnist = load_mnist(args.data)
    rows = []
    with tempfile.TemporaryDirectory() as store:
        for digit in args.digits:
            started = time.monotonic()
            config = TrainConfig(normal=[digit], data=args.data, store=Path(store), name=f"digit-{digit}", verbose=0,
                                 **{option: getattr(args, option) for option in TRAINING_OPTIONS})
            published = train_and_publish(config)
            metrics = json.loads((published.path / "assets.extra" / "report" / "metrics.json").read_text())
            rows.append({"digit": digit, "method": metrics["model"]["score_method"],
                         "n_test_normal": metrics["n_normal"],
                         "n_calibration": published.metadata["training"]["n_calibration"],
                         "auroc": metrics["primary"]["auroc"], "fpr": metrics["primary"]["fpr"],
                         "tpr": metrics["primary"]["tpr"], "target_fpr": metrics["model"]["target_fpr"],
                         "by_method": {m: v["auroc"] for m, v in metrics["by_method"].items()},
                         "train_seconds": published.metadata["training"]["seconds"],
                         **population_fprs(published.path, published.metadata["threshold"], digit,
                                           mnist.x_test, mnist.y_test),
                         "seconds": time.monotonic() - started})
            print(f"digit {digit}: AUROC {rows[-1]['auroc']:.4f} ({rows[-1]['method']}), "
                  f"FPR {rows[-1]['fpr']:.2%}, trained in {rows[-1]['train_seconds']:.0f} s", flush=True)
    return rows


def population_fprs(version_dir: Path, threshold: float, digit: int, x_test, y_test) -> dict[str, dict]:
    """One digit's test FPR within each test-writer population, at the model's threshold
    (`fpr_by_population`), after recalibrating on other test writers' normals (`recalibrated`), and after
    recalibrating a threshold per population, as per source, on other writers of that population
    (`recalibrated_per_population`)."""
    import numpy as np

    from training.evaluate import saved_model_outputs

    positions = np.flatnonzero(y_test == digit)  # each scored image's index in the test set
    scores = saved_model_outputs(version_dir, x_test[positions], progress=False)["score"]
    normals, n_test = x_test[positions], len(y_test)
    return {"fpr_by_population": _fpr_by_population(scores > threshold, positions, n_test),
            "recalibrated": _fpr_by_population(
                scores > cross_fitted_thresholds(version_dir, normals, positions), positions, n_test),
            "recalibrated_per_population": _fpr_by_population(
                scores > cross_fitted_thresholds(version_dir, normals, positions, population_of(positions, n_test)),
                positions, n_test)}


def population_of(positions, n_test: int):
    """The name of the test-writer population of each test image index."""
    import numpy as np

    names = np.empty(len(positions), dtype=object)
    for name, part in TEST_POPULATIONS:
        names[(positions >= part.start) & (positions < (part.stop or n_test))] = name
    return names


def cross_fitted_thresholds(version_dir: Path, normals, positions, sources=None):
    """Each normal's threshold after `recalibrate` on the normals of the other half of the test blocks: the
    model's threshold, or with `sources` (a name per normal), the threshold `recalibrate --for-source` sets
    for the normal's source from that source's normals only."""
    import numpy as np

    from training.data import fingerprint
    from training.recalibrate import NormalImages, recalibrate_and_publish

    half = (positions // RECALIBRATION_BLOCK) % 2
    sources = np.full(len(positions), None, dtype=object) if sources is None else sources
    thresholds = np.empty(len(positions))
    for calibrating in (0, 1):
        for source in dict.fromkeys(sources):
            images = normals[(half == calibrating) & (sources == source)]
            published = recalibrate_and_publish(version_dir, NormalImages(
                images, f"MNIST test images, blocks of {RECALIBRATION_BLOCK}, half {calibrating}"
                + (f", {source}" if source else ""), fingerprint(images), vouched_for=True),  # labelled normal
                for_source=source)
            calibration = published.metadata if source is None else published.metadata["source_calibrations"][source]
            thresholds[(half != calibrating) & (sources == source)] = calibration["threshold"]
    return thresholds


def _fpr_by_population(flagged, positions, n_test: int) -> dict[str, dict]:
    import numpy as np

    result = {"all": {"fpr": float(np.mean(flagged)), "n": int(len(flagged))}}
    populations = population_of(positions, n_test)
    for name, _ in TEST_POPULATIONS:
        in_part = populations == name
        result[name] = {"fpr": float(np.mean(flagged[in_part])) if in_part.any() else None, "n": int(in_part.sum())}
    return result


def population_lines(rows: list[dict]) -> list[str]:
    names = [name for name, _ in TEST_POPULATIONS]
    lines = ["", "Test FPR within MNIST's two test-writer populations (images 0–4999 from NIST SD-3, "
             "5000–9999 from SD-1), at the same threshold:", "",
             "| digit | FPR | " + " | ".join(f"FPR {n} (normals)" for n in names) + " |",
             "|" + " --- |" * (2 + len(names))]
    for row in rows:
        parts = [row["fpr_by_population"][n] for n in names]
        lines.append(f"| {row['digit']} | {row['fpr']:.2%} | "
                     + " | ".join("–" if p["fpr"] is None else f"{p['fpr']:.2%} ({p['n']})" for p in parts) + " |")
    pooled = [_pooled([row["fpr_by_population"][n] for row in rows]) for n in names]
    overall = _pooled([{"fpr": row["fpr"], "n": row["n_test_normal"]} for row in rows])
    lines.append(f"| **pooled** | **{overall['fpr']:.2%}** | "
                 + " | ".join("–" if p["fpr"] is None else f"**{p['fpr']:.2%}** ({p['n']})" for p in pooled) + " |")
    return lines


def recalibration_lines(rows: list[dict]) -> list[str]:
    names = [name for name, _ in TEST_POPULATIONS]
    lines = ["", "The same models after `python -m training recalibrate` on normals from other test writers: each "
             f"digit's test normals are split into alternating blocks of {RECALIBRATION_BLOCK} test images, and "
             "each half is judged at the thresholds recalibrated on the other half: one threshold for all its "
             "normals (about 500), or one per population (`recalibrate --for-source SD-3`, about 250 each):", "",
             "| digit | FPR, calibrated in training | recalibrated: FPR | "
             + " | ".join(f"recalibrated: {n}" for n in names) + " | per population: FPR | "
             + " | ".join(f"per population: {n}" for n in names) + " |", "|" + " --- |" * (4 + 2 * len(names))]
    keys = ("all", *names)
    for row in rows:
        cells = [row[kind][n]["fpr"] for kind in ("recalibrated", "recalibrated_per_population") for n in keys]
        lines.append(f"| {row['digit']} | {row['fpr']:.2%} | "
                     + " | ".join("–" if fpr is None else f"{fpr:.2%}" for fpr in cells) + " |")
    pooled = [_pooled([row[kind][n] for row in rows])["fpr"]
              for kind in ("recalibrated", "recalibrated_per_population") for n in keys]
    lines.append("| **pooled** | | " + " | ".join("–" if fpr is None else f"**{fpr:.2%}**" for fpr in pooled) + " |")
    within = {kind: sum(abs(row[kind]["all"]["fpr"] - row["target_fpr"]) <= FPR_TOLERANCE + 1e-12 for row in rows)
              for kind in ("recalibrated", "recalibrated_per_population")}
    expected = sum(chance_within_tolerance(row["n_test_normal"], row["n_test_normal"] // 2, row["target_fpr"])
                   for row in rows)
    lines += ["", f"Recalibrated FPR within ±{FPR_TOLERANCE * 100:.1f} pp of the target: **{within['recalibrated']} "
              f"of {len(rows)} digits** with one threshold (sampling alone, with half the normals calibrating, "
              f"leaves {expected:.1f} expected within), **{within['recalibrated_per_population']} of {len(rows)}** "
              "with one per population."]
    return lines


def _pooled(parts: list[dict]) -> dict:
    """The FPR over all the parts' normals together (each part's FPR is its flagged count ÷ n)."""
    counted = [p for p in parts if p["fpr"] is not None]
    n = sum(p["n"] for p in counted)
    return {"fpr": sum(p["fpr"] * p["n"] for p in counted) / n if n else None, "n": n}


def chance_within_tolerance(n_test: int, n_calibration: int | None, target_fpr: float,
                            draws: int = 200_000, seed: int = 0) -> float:
    """Probability that sampling alone keeps a digit's test FPR within the tolerance, if the test normals
    are exchangeable with the calibration normals. The conformal threshold's true FPR is 1 - Beta(k, n+1-k)
    (k the threshold's rank); the test count is then binomial. `n_calibration=None`: a perfect threshold."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if n_calibration is None:
        true_fpr = np.full(draws, target_fpr)
    else:
        rank = math.ceil((n_calibration + 1) * (1.0 - target_fpr))
        true_fpr = 1.0 - rng.beta(rank, n_calibration + 1 - rank, draws)
    observed = rng.binomial(n_test, true_fpr) / n_test
    return float(np.mean(np.abs(observed - target_fpr) <= FPR_TOLERANCE + 1e-12))


def fpr_chance_lines(rows: list[dict]) -> list[str]:
    calibrated = [chance_within_tolerance(r["n_test_normal"], r["n_calibration"], r["target_fpr"])
                  for r in rows]
    perfect = [chance_within_tolerance(r["n_test_normal"], None, r["target_fpr"]) for r in rows]
    within = sum(abs(r["fpr"] - r["target_fpr"]) <= FPR_TOLERANCE + 1e-12 for r in rows)
    return [f"FPR within ±{FPR_TOLERANCE * 100:.1f} pp of the target: **{within} of {len(rows)} digits**. "
            f"Sampling alone (about {statistics.mean(r['n_test_normal'] for r in rows):.0f} test and "
            f"{statistics.mean(r['n_calibration'] for r in rows):.0f} calibration normals per digit) leaves "
            f"{sum(calibrated):.1f} of {len(rows)} expected within, and a {math.prod(calibrated):.0%} chance "
            f"that all are; even a perfect threshold would give all {len(rows)} only a "
            f"{math.prod(perfect):.0%} chance."]


def markdown(rows: list[dict], args: argparse.Namespace, total_seconds: float) -> str:
    methods = list(rows[0]["by_method"])
    options = " ".join(f"--{o.replace('_', '-')} {getattr(args, o)}" for o in TRAINING_OPTIONS)
    lines = [
        "| digit | AUROC (chosen score) | chosen score | " + " | ".join(f"AUROC {m}" for m in methods)
        + " | FPR at threshold (target) | TPR | train s |",
        "|" + " --- |" * (6 + len(methods)),
    ]
    for row in rows:
        lines.append(f"| {row['digit']} | {row['auroc']:.4f} | {row['method']} | "
                     + " | ".join(f"{row['by_method'][m]:.4f}" for m in methods)
                     + f" | {row['fpr']:.2%} ({row['target_fpr']:.0%}) | {row['tpr']:.2%} | {row['train_seconds']:.0f} |")
    mean = statistics.mean(row["auroc"] for row in rows)
    lines.append(f"| **mean** | **{mean:.4f}** | | "
                 + " | ".join(f"{statistics.mean(r['by_method'][m] for r in rows):.4f}" for m in methods)
                 + f" | max deviation {max(abs(r['fpr'] - r['target_fpr']) for r in rows) * 100:.2f} pp | | |")
    anchors = ["", "", "| method | mean AUROC % | digit 1 AUROC % |", "| --- | --- | --- |"]
    anchors += [f"| {name} | {m} | {one} |" for name, m, one in ANCHORS]
    by_digit = {row["digit"]: row["auroc"] for row in rows}
    ours = f"{by_digit[1] * 100:.2f}" if 1 in by_digit else "–"
    anchors.append(f"| **this detector** | **{mean * 100:.2f}** | **{ours}** |")
    anchors += ["", *fpr_chance_lines(rows), *population_lines(rows), *recalibration_lines(rows)]
    header = [f"Command: `python bench/quality.py --digits {' '.join(map(str, args.digits))} {options}`",
              f"Total time {total_seconds / 60:.1f} min. Machine: {machine_description()}.", "", ""]
    return "\n".join(header + lines + anchors) + "\n"


def machine_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU, its widest vector instructions and TensorFlow's version: training is deterministic on one
    machine, but its float rounding depends on which kernels the CPU runs, so figures from another machine
    differ in their last digits (docs/quality.md, "Reproducing the figures")."""
    import tensorflow as tf

    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    vectors = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"))
                    if flag in flags), "no AVX")
    onednn = "off" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0" else "on"
    return f"{model}, {os.cpu_count()} cores, {vectors}; TensorFlow {tf.__version__}, oneDNN {onednn}"


def main() -> None:
    args = parse_args()
    started = time.monotonic()
    rows = run(args)
    text = markdown(rows, args, time.monotonic() - started)
    print("\n" + text)
    if args.write:
        write_section(args.write, text)


def write_section(path: Path, text: str) -> None:
    """Replace the generated section of `path`, keeping the prose around it (or create the file)."""
    section = f"{SECTION_START}\n{text}{SECTION_END}"
    current = path.read_text() if path.exists() else ""
    if SECTION_START in current and SECTION_END in current:
        before, rest = current.split(SECTION_START, 1)
        section = before + section + rest.split(SECTION_END, 1)[1]
    elif current:
        section = current.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(section if section.endswith("\n") else section + "\n")


if __name__ == "__main__":
    main()
