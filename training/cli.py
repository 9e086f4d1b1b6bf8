"""Command line: `python -m training train ...` (also installed as `vae-train`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from training.calibration import CalibrationError
from training.data import DataError
from training.model import ARCHITECTURES
from training.scores import SCORE_METHODS
from training.train import TrainConfig

DEFAULTS = TrainConfig()


def _digits(text: str) -> list[int]:
    try:
        digits = [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected digits 0-9, got {text!r}") from None
    if not digits or any(not 0 <= d <= 9 for d in digits):
        raise argparse.ArgumentTypeError(f"expected digits 0-9, got {text!r}")
    return digits


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train, calibrate and publish a new model version")
    train.add_argument("--normal", type=_digits, nargs="+", default=None, metavar="DIGIT",
                       help="digit(s) treated as normal (default: 1)")
    train.add_argument("--epochs", type=_positive_int, default=DEFAULTS.epochs)
    train.add_argument("--batch-size", type=_positive_int, default=DEFAULTS.batch_size)
    train.add_argument("--latent-dim", type=_positive_int, default=DEFAULTS.latent_dim)
    train.add_argument("--hidden-units", type=_positive_int, default=DEFAULTS.hidden_units)
    train.add_argument("--architecture", choices=ARCHITECTURES, default=DEFAULTS.architecture)
    train.add_argument("--beta", type=float, default=DEFAULTS.beta, help="weight of the KL term")
    train.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate)
    train.add_argument("--seed", type=int, default=DEFAULTS.seed)
    train.add_argument("--target-fpr", type=_fraction, default=DEFAULTS.target_fpr)
    train.add_argument("--calibration-fraction", type=_fraction, default=DEFAULTS.calibration_fraction)
    train.add_argument("--validation-fraction", type=_fraction, default=DEFAULTS.validation_fraction)
    train.add_argument("--score-method", choices=("auto", *SCORE_METHODS), default="auto",
                       help="primary score; auto = best validation AUROC (dssim_knn without labelled anomalies)")
    train.add_argument("--store", type=Path, default=DEFAULTS.store)
    train.add_argument("--name", default=DEFAULTS.name)
    source = train.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="PATH", help="MNIST .npz (default: $MNIST_PATH, else Keras' cache)")
    source.add_argument("--images", metavar="DIR", help="folder of your own normal PNG/JPEG images")
    evaluate = commands.add_parser("evaluate", help="evaluate a published version on the MNIST test set")
    evaluate.add_argument("--model", type=Path, default=None, metavar="VERSION_DIR",
                          help="a version folder, e.g. model_store/mnist-vae/1 (default: the latest of --name)")
    evaluate.add_argument("--store", type=Path, default=DEFAULTS.store)
    evaluate.add_argument("--name", default=DEFAULTS.name)
    evaluate.add_argument("--data", metavar="PATH", help="MNIST .npz (default: $MNIST_PATH, else Keras' cache)")
    evaluate.add_argument("--report", type=Path, default=Path("reports"), metavar="DIR",
                          help="where to write metrics.json, report.md and the plots (default: reports/)")
    return parser


def _evaluate(args) -> int:
    from training.evaluate import evaluate
    from training.store import list_versions

    version_dir = args.model
    if version_dir is None:
        versions = list_versions(args.store / args.name)
        if not versions:
            print(f"error: no published version in {args.store / args.name}", file=sys.stderr)
            return 2
        version_dir = args.store / args.name / str(versions[-1])
    if not (version_dir / "saved_model.pb").is_file():
        print(f"error: {version_dir} is not a model version folder (no saved_model.pb)", file=sys.stderr)
        return 2
    try:
        metrics = evaluate(version_dir, args.data, args.report)
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    primary = metrics["primary"]
    print(json.dumps({"report": str(args.report), "auroc": primary["auroc"], "fpr": primary["fpr"],
                      "tpr": primary["tpr"]}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.command == "evaluate":
        return _evaluate(args)
    from training.train import train_and_publish  # deferred: imports TensorFlow

    normal = sorted({d for group in (args.normal or [[1]]) for d in group})
    config = TrainConfig(normal=normal, **{k: v for k, v in vars(args).items()
                                           if k not in ("command", "normal")})
    try:
        published = train_and_publish(config)
    except (DataError, CalibrationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    summary = {"version": published.version, "path": str(published.path),
               "score_method": published.metadata["score_method"],
               "threshold": published.metadata["threshold"],
               "test_metrics": {k: v for k, v in (published.metadata["test_metrics"] or {}).items()
                                if k != "by_method"},
               "seconds": published.metadata["training"]["seconds"]}
    print(json.dumps(summary, indent=1))
    return 0
