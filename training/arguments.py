"""The command line's options: `python -m training train|evaluate|recalibrate|versions|rollback|prune ...`.

Each option's type checks its value as argparse reads it, so a mistyped one is refused with the option's
name before any work; what the commands then do is in training/cli.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from pathlib import Path

from training.config import ARCHITECTURES, SCORE_METHODS, TrainConfig
from training.framing import FRAMINGS
from training.sources import SOURCE_RULE, is_source_name
from training.store import MODEL_NAME_RULE, is_model_name

DEFAULTS = TrainConfig()
DESCRIPTION = ("Train, evaluate and recalibrate the anomaly detector, and manage its published versions (also "
               "installed as vae-train).")


def _digits(text: str) -> list[int]:
    try:
        digits = [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected digits 0-9, got {text!r}") from None
    if not digits or any(not 0 <= d <= 9 for d in digits):
        raise argparse.ArgumentTypeError(f"expected digits 0-9, got {text!r}")
    return digits


def _whole_number(text: str) -> int:
    # argparse would otherwise say "invalid _positive_int value", naming this module's function
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _hidden_units(text: str) -> int:
    value = _whole_number(text)
    if value < 2:  # the dense architecture's second hidden layer has half as many, and a layer needs one
        raise argparse.ArgumentTypeError(f"must be 2 or more, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _number(text)
    if not 0.0 < value < 1.0:
        percent = " (a fraction: 0.01 is 1 %)" if 1.0 <= value < 100.0 else ""
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}{percent}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _seed(text: str) -> int:
    value = _whole_number(text)
    if not 0 <= value < 2**32:  # NumPy's and Keras' seeding accept no more
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 2**32 - 1, got {text}")
    return value


def _source_name(text: str) -> str:
    if not is_source_name(text):
        raise argparse.ArgumentTypeError(f"a source is named by {SOURCE_RULE}, as the service's ?source=; "
                                         f"got {text!r}")
    return text


def _model_name(text: str) -> str:
    if not is_model_name(text):
        raise argparse.ArgumentTypeError(f"a model is named by {MODEL_NAME_RULE}; got {text!r}")
    return text


def _aware_time(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add one, e.g. {text}+00:00 for UTC")
    return moment


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, default=DEFAULTS.store,
                        help=f"model store root (default: {DEFAULTS.store})")
    parser.add_argument("--name", type=_model_name, default=DEFAULTS.name,
                        help=f"model name, its folder in the store (default: {DEFAULTS.name})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train, calibrate and publish a new model version")
    train.add_argument("--normal", type=_digits, nargs="+", default=None, metavar="DIGIT",
                       help="digit(s) treated as normal (default: 1)")
    train.add_argument("--epochs", type=_positive_int, default=DEFAULTS.epochs,
                       help="passes over the training images (default: %(default)s)")
    train.add_argument("--batch-size", type=_positive_int, default=DEFAULTS.batch_size,
                       help="images per training step (default: %(default)s)")
    train.add_argument("--latent-dim", type=_positive_int, default=DEFAULTS.latent_dim,
                       help="size of the VAE's latent code (default: %(default)s)")
    train.add_argument("--hidden-units", type=_hidden_units, default=DEFAULTS.hidden_units,
                       help="units of the widest dense layer; dense has a second with half as many "
                            "(default: %(default)s)")
    train.add_argument("--architecture", choices=ARCHITECTURES, default=DEFAULTS.architecture,
                       help="dense or convolutional encoder and decoder (default: %(default)s)")
    train.add_argument("--beta", type=_non_negative_float, default=DEFAULTS.beta,
                       help="weight of the KL term (default: %(default)s)")
    train.add_argument("--learning-rate", type=_positive_float, default=DEFAULTS.learning_rate,
                       help="the optimiser's step size (default: %(default)s)")
    train.add_argument("--seed", type=_seed, default=DEFAULTS.seed,
                       help="seed of the split into training, validation and calibration images and of "
                            "the training (default: %(default)s)")
    train.add_argument("--target-fpr", type=_fraction, default=DEFAULTS.target_fpr,
                       help="share of normal images the threshold is to flag, e.g. 0.01 for 1 %% "
                            "(default: %(default)s)")
    train.add_argument("--calibration-fraction", type=_fraction, default=DEFAULTS.calibration_fraction,
                       help="share of the normal images held out to calibrate the threshold "
                            "(default: %(default)s)")
    train.add_argument("--validation-fraction", type=_fraction, default=DEFAULTS.validation_fraction,
                       help="share held out to choose the score method (with --score-method auto), then to "
                            "calibrate as well (default: %(default)s)")
    train.add_argument("--score-method", choices=("auto", *SCORE_METHODS), default="auto",
                       help="primary score; auto = best validation AUROC (dssim_knn without labelled anomalies) "
                            "(default: %(default)s)")
    _add_store_options(train)
    source = train.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="PATH", help="MNIST .npz (default: $MNIST_PATH, else Keras' cache)")
    source.add_argument("--images", metavar="DIR", help="folder of your own normal images")
    train.add_argument("--invert", action="store_true",
                       help="the --images are dark on light (scans, drawings on white): invert them")
    train.add_argument("--framing", choices=sorted(FRAMINGS), default=None,
                       help="how --images of another size than 28x28 become 28x28, in training and when "
                            "the service scores: pad (default; aspect kept, padded with black) or mnist "
                            "(ink cropped, fitted to 20x20, centred by mass, as MNIST's digits)")
    train.add_argument("--test-normals", metavar="DIR",
                       help="with --images and --test-anomalies: normal test images (not in --images), on which "
                            "the version's evaluation report is computed, as `evaluate --normals` computes it")
    train.add_argument("--test-anomalies", metavar="DIR",
                       help="with --test-normals: anomalous test images, a subfolder per kind of anomaly")
    evaluate = commands.add_parser(
        "evaluate", help="evaluate a published version on the MNIST test set, or on folders of your own "
                         "normal and anomalous images")
    evaluate.add_argument("--model", type=Path, default=None, metavar="VERSION_DIR",
                          help="a version folder, e.g. model_store/mnist-vae/1 (default: the latest of --name)")
    _add_store_options(evaluate)
    evaluate.add_argument("--data", metavar="PATH", help="MNIST .npz (default: $MNIST_PATH, else Keras' cache)")
    evaluate.add_argument("--normals", type=Path, metavar="DIR",
                          help="with --anomalies: evaluate on your own images instead of MNIST's test set; this "
                               "folder holds normal ones (never trained on)")
    evaluate.add_argument("--anomalies", type=Path, metavar="DIR",
                          help="with --normals: a folder of anomalous images; each of its subfolders is a kind "
                               "of anomaly, reported on its own")
    evaluate.add_argument("--invert", action="store_true",
                          help="the --normals and --anomalies are dark on light (scans, drawings on white): "
                               "invert them, as ?invert=true does when scoring")
    evaluate.add_argument("--report", type=Path, default=Path("reports"), metavar="DIR",
                          help="where to write metrics.json, report.md, the plots and report.html (default: "
                               "reports/)")
    recalibrate = commands.add_parser(
        "recalibrate", help="publish a version's model again, with its threshold calibrated on new normal images")
    normals = recalibrate.add_mutually_exclusive_group(required=True)
    normals.add_argument("--images", metavar="DIR",
                         help="folder of normal images from where the model is used (never trained on)")
    normals.add_argument("--results", type=Path, metavar="DB",
                         help="the service's results store (VAE_RESULTS_DB): calibrate on the images it scored "
                              "with this model, all flags reviewed, those reviewed as anomalous left out")
    recalibrate.add_argument("--source", help="with --results: only the results of this ?source= (a line)")
    recalibrate.add_argument("--for-source", type=_source_name, metavar="SOURCE",
                             help="calibrate a threshold for this ?source= only (a line, a camera), applied to "
                                  "the images sent with it; the model's threshold, and other sources', stay "
                                  "as they were. With --results, the window is this source's results")
    recalibrate.add_argument("--every-source", action="store_true",
                             help="with --results: calibrate a threshold for each source in the window with enough "
                                  "normal images for its target FPR, in one new version (after retraining, for "
                                  "example); the others keep the threshold they have")
    recalibrate.add_argument("--since", type=_aware_time, metavar="TIME",
                             help="with --results: only results scored at or after this time (ISO 8601 with a "
                                  "time zone, e.g. 2026-11-01T00:00:00+01:00)")
    recalibrate.add_argument("--until", type=_aware_time, metavar="TIME",
                             help="with --results: only results scored before this time")
    recalibrate.add_argument("--even-if-flagged", action="store_true",
                             help="with --images: publish even if over half of them score above the current "
                                  "threshold, which otherwise means they are not the normal images they should be")
    recalibrate.add_argument("--invert", action="store_true",
                             help="the images (--images, and the test folders) are dark on light (scans, drawings "
                                  "on white): invert them, as ?invert=true does when scoring")
    recalibrate.add_argument("--model", type=Path, default=None, metavar="VERSION_DIR",
                             help="the version to recalibrate (default: the latest of --name); "
                                  "the new version is published beside it")
    _add_store_options(recalibrate)
    recalibrate.add_argument("--target-fpr", type=_fraction, default=None,
                             help="false-positive rate to calibrate for (default: the version's, or with "
                                  "--for-source, the source's if it has a threshold already)")
    recalibrate.add_argument("--data", metavar="PATH",
                             help="MNIST .npz for the new version's report, if the model's normal class is a "
                                  "digit (default: $MNIST_PATH, else Keras' cache)")
    recalibrate.add_argument("--no-report", action="store_true",
                             help="publish without an evaluation report (no MNIST, nor test folders, needed)")
    recalibrate.add_argument("--test-normals", metavar="DIR",
                             help="with --test-anomalies: the new version's report is computed on these normal "
                                  "test images (not among the images calibrated on) instead of MNIST's test set; "
                                  "without them, on the folders the base version was tested on, if it was and they "
                                  "can still be read (else a model trained on a folder ships no report)")
    recalibrate.add_argument("--test-anomalies", metavar="DIR",
                             help="with --test-normals: anomalous test images, a subfolder per kind of anomaly")
    versions = commands.add_parser("versions", help="list the published versions: how each was made, its "
                                                    "thresholds, its test AUROC")
    _add_store_options(versions)
    versions.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rollback = commands.add_parser(
        "rollback", help="publish an earlier version again, unchanged, as the newest: services that are not "
                         "pinned swap it in at their next poll")
    rollback.add_argument("--to", type=_positive_int, required=True, metavar="VERSION",
                          help="the version to serve again (see `versions`)")
    _add_store_options(rollback)
    prune = commands.add_parser("prune", help="remove all but the newest published versions, to bound the "
                                              "store's size")
    prune.add_argument("--keep", type=_positive_int, required=True, metavar="N",
                       help="how many of the newest versions to keep (at least 1)")
    prune.add_argument("--keep-version", type=_positive_int, action="append", default=[], metavar="VERSION",
                       help="keep this version too (one a service is pinned to, VAE_MODEL_VERSION); repeatable")
    prune.add_argument("--dry-run", action="store_true", help="say what would be removed, and remove nothing")
    _add_store_options(prune)
    return parser
