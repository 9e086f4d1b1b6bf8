"""The training job: fit on normal images, choose the score method, calibrate, export and publish."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import data as datasets
from training.calibration import (
    CalibrationError,
    conformal_threshold,
    minimum_calibration_size,
    pixel_threshold,
    smallest_target_fpr,
)
from training.config import SCORE_METHODS, TrainConfig
from training.metrics import auroc, no_anomaly_among, test_set_metrics
from training.preprocessing import input_contract, to_model_input
from training.stopping import raise_if_stopped
from training.store import REPORT_PATH, PublishedModel, publish, staging_directory
from training.test_sets import LabelledImages, check_apart, check_both_given, folder_test_set, mnist_test_set

log = logging.getLogger(__name__)
FALLBACK_SCORE_METHOD = "dssim_knn"  # without labelled anomalies to choose by: the benchmark's best (docs/quality.md)
REFERENCE_IMAGES_PER_KIND = 4


@dataclass
class TrainingData:
    """Normal images split three ways, plus labelled anomalies where the source has them."""
    train: np.ndarray
    validation: np.ndarray
    calibration: np.ndarray
    validation_anomalies: np.ndarray | None
    test_set: LabelledImages | None  # the version's report is computed on it; None: no report
    source: str
    fingerprint: str


class TrainingDiverged(Exception):
    """The loss stopped being a number: the weights are garbage and must not be published."""


def _split_normals(normals: np.ndarray, config: TrainConfig, rng: np.random.Generator):
    shuffled = normals[rng.permutation(len(normals))]
    n_calibration = int(round(len(shuffled) * config.calibration_fraction))
    n_validation = int(round(len(shuffled) * config.validation_fraction))
    n_train = len(shuffled) - n_calibration - n_validation
    if n_train < 1 or n_calibration < 1:
        raise datasets.DataError(f"{len(normals)} normal images are too few to train and calibrate")
    return (shuffled[:n_train], shuffled[n_train:n_train + n_validation],
            shuffled[n_train + n_validation:])


def prepare_data(config: TrainConfig) -> TrainingData:
    rng = np.random.default_rng(config.seed)
    if config.invert and not config.images:
        raise datasets.DataError("--invert applies to an --images folder; MNIST is already light on dark")
    if config.framing and not config.images:
        raise datasets.DataError("--framing applies to an --images folder; MNIST's images are framed as MNIST")
    if config.images:
        return _prepare_folder(config, rng)
    if config.test_normals or config.test_anomalies:
        raise datasets.DataError("--test-normals and --test-anomalies apply to an --images folder; an MNIST model's "
                                 "report is on MNIST's test set (evaluate it on your own images with evaluate)")
    mnist = datasets.load_mnist(config.data)
    is_normal = np.isin(mnist.y_train, config.normal)
    if not is_normal.any():
        raise datasets.DataError(f"no training images of class {config.normal} in the data")
    train, validation, calibration = _split_normals(mnist.x_train[is_normal], config, rng)
    anomalies = mnist.x_train[~is_normal]
    anomalies = anomalies[rng.permutation(len(anomalies))[:2000]] if len(anomalies) else None
    test_set = mnist_test_set(mnist, config.normal)
    if reason := no_anomaly_among(mnist.y_test, config.normal):
        log.warning("no evaluation report: %s", reason)
        test_set = None
    return TrainingData(train, validation, calibration, anomalies, test_set,
                        source=str(datasets.resolve_mnist_path(config.data) or "keras cache"),
                        fingerprint=mnist.fingerprint())


def _prepare_folder(config: TrainConfig, rng: np.random.Generator) -> TrainingData:
    """A folder of normal images, and with --test-normals and --test-anomalies, the test images of its report."""
    test_folders = {"--test-normals": config.test_normals, "--test-anomalies": config.test_anomalies}
    test_set = None
    if check_both_given(*test_folders.items()):  # read first: a mistyped folder is said before minutes of training
        for option, folder in test_folders.items():  # testing on training images would flatter the model
            check_apart({"--images": Path(config.images), option: Path(folder)})
        test_set = folder_test_set(Path(config.test_normals), Path(config.test_anomalies), config.invert,
                                   framing_of(config), tuple(test_folders))
    normals = datasets.load_image_folder(config.images, invert=config.invert, framing=framing_of(config))
    if test_set is not None:
        datasets.check_background(test_set.images[~test_set.is_anomaly], normals, "the --images")
    train, validation, calibration = _split_normals(normals, config, rng)
    return TrainingData(train, validation, calibration, None, test_set, source=f"folder {config.images}",
                        fingerprint=datasets.fingerprint(normals))


def framing_of(config: TrainConfig) -> str:
    """How the model's training images were framed, so the service frames uploads the same way."""
    return (config.framing or "pad") if config.images else "mnist"


def _library_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for package in ("tensorflow-cpu", "tensorflow", "keras", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _stop_check(keras):
    """A stop before each training step (training.stopping says why). A begin hook: an end hook would make Keras
    wait for each step's results."""
    return keras.callbacks.LambdaCallback(on_train_batch_begin=lambda batch, logs: raise_if_stopped())


def _score_batches(scorer, images: np.ndarray, batch_size: int = 2048) -> dict[str, np.ndarray]:
    import tensorflow as tf

    chunks = []
    for i in range(0, len(images), batch_size):
        raise_if_stopped()
        chunks.append(scorer(tf.constant(to_model_input(images[i:i + batch_size]))))
    return {key: np.concatenate([c[key].numpy() for c in chunks]) for key in (*SCORE_METHODS, "score")}


def choose_score_method(config: TrainConfig, validation: dict, anomalies: dict | None) -> tuple[str, dict]:
    """The requested method, else the one with the best validation AUROC (normals vs anomalies)."""
    if anomalies is None:
        return (FALLBACK_SCORE_METHOD if config.score_method == "auto" else config.score_method), {}
    labels = np.r_[np.zeros(len(validation["mse"])), np.ones(len(anomalies["mse"]))]
    aurocs = {m: auroc(labels, np.r_[validation[m], anomalies[m]]) for m in SCORE_METHODS}
    if config.score_method != "auto":
        return config.score_method, aurocs
    return max(aurocs, key=aurocs.get), aurocs


def _reference_images(data: TrainingData, scores_of) -> list[dict]:
    """A few images with their exact outputs, so a loaded model can prove it reproduces them."""
    picks = [("normal", data.calibration[:REFERENCE_IMAGES_PER_KIND])]
    if data.validation_anomalies is not None:
        picks.append(("anomalous", data.validation_anomalies[:REFERENCE_IMAGES_PER_KIND]))
    references = []
    for kind, images in picks:
        scored = scores_of(images)
        for i, image in enumerate(images):
            references.append({"kind": kind, "pixels": image.astype(int).tolist(),
                               "scores": {m: float(scored[m][i]) for m in (*SCORE_METHODS, "score")}})
    return references


def _check_calibration_size(data: TrainingData, config: TrainConfig) -> None:
    """Before training, not after it: the held-out normals must be enough for the target FPR's threshold."""
    held_out, needed = len(data.validation) + len(data.calibration), minimum_calibration_size(config.target_fpr)
    if held_out < needed:
        raise CalibrationError(
            f"--target-fpr {config.target_fpr:g} needs at least {needed} held-out normal images to calibrate, "
            f"but {held_out} are held out ({config.validation_fraction:g} + {config.calibration_fraction:g} of "
            f"{held_out + len(data.train)}); use a higher --target-fpr (these support "
            f"{smallest_target_fpr(held_out):g} and up), more normal images or a larger --calibration-fraction. "
            "Nothing was trained")


def _refuse_diverged(history, config: TrainConfig) -> None:
    final = {name: float(values[-1]) for name, values in history.history.items()}
    if not all(np.isfinite(value) for value in final.values()):
        raise TrainingDiverged(
            f"training diverged in epoch {len(history.epoch)} of {config.epochs} (final losses {final}); "
            f"try a lower --learning-rate (now {config.learning_rate}) or --beta (now {config.beta}). "
            "Nothing was published")


def train_and_publish(config: TrainConfig) -> PublishedModel:
    started = time.monotonic()
    # The data first: a mistyped path or too few images is said at once, not after TensorFlow's import (5 s).
    data = prepare_data(config)
    log.info("data: %s; %d train, %d validation, %d calibration normal images", data.source,
             len(data.train), len(data.validation), len(data.calibration))
    _check_calibration_size(data, config)

    importing = time.monotonic()
    import keras
    import tensorflow as tf

    from training.export import export_saved_model, serving_function
    from training.model import VAE
    from training.scores import SCORE_DESCRIPTIONS, AnomalyScorer, reference_codes

    started += time.monotonic() - importing  # the recorded training time leaves the import out, as it always did
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()

    vae = VAE(config.architecture, config.latent_dim, config.hidden_units, config.beta, seed=config.seed)
    vae.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    history = vae.fit(to_model_input(data.train), epochs=config.epochs, batch_size=config.batch_size,
                      shuffle=True, verbose=config.verbose if config.verbose is not None
                      else (1 if sys.stdout.isatty() else 2),
                      callbacks=[keras.callbacks.TerminateOnNaN(), _stop_check(keras)])
    _refuse_diverged(history, config)

    anomaly_scorer = AnomalyScorer(vae, reference_codes(vae, to_model_input(data.train), config.seed))
    # Score with the very function that gets exported, so calibration matches serving exactly.
    scorer = tf.function(serving_function(anomaly_scorer, FALLBACK_SCORE_METHOD), input_signature=[
        tf.TensorSpec((None, 28, 28, 1), tf.float32)])
    scores_of = lambda images: _score_batches(scorer, images)  # noqa: E731
    # The validation normals fix the scale of the combined score before anything is scored with it.
    standardising = scores_of(data.validation if len(data.validation) > 1 else data.calibration)
    anomaly_scorer.standardise(standardising["dssim"], standardising["latent_knn"])
    validation_anomalies = None if data.validation_anomalies is None else scores_of(data.validation_anomalies)
    validation_scores = scores_of(data.validation)
    method, validation_aurocs = choose_score_method(config, validation_scores, validation_anomalies)
    # Every held-out normal calibrates: the validation images only chose among a few methods by AUROC,
    # which barely biases their scores, while 50 % more calibration images cut the threshold's sampling
    # error by a fifth (docs/quality.md).
    held_out_scores = scores_of(data.calibration)
    calibration_scores = {m: np.r_[validation_scores[m], held_out_scores[m]] for m in SCORE_METHODS}
    thresholds = {m: conformal_threshold(calibration_scores[m], config.target_fpr) for m in SCORE_METHODS}
    if validation_aurocs:
        log.info("score method %s (validation AUROC %s); threshold %.6g", method,
                 {m: round(a, 5) for m, a in validation_aurocs.items()}, thresholds[method])
    else:
        log.info("score method %s (%s); threshold %.6g", method, "as --score-method says"
                 if config.score_method != "auto" else "no labelled anomalies to choose by: the benchmark's best",
                 thresholds[method])

    test_metrics = None
    if data.test_set is not None:
        test_metrics = test_set_metrics(data.test_set.is_anomaly, scores_of(data.test_set.images), thresholds, method)

    metadata = {
        "name": config.name,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "origin": {"made_by": "train"},
        "score_method": method,
        "score_methods": SCORE_DESCRIPTIONS,
        "threshold": thresholds[method],
        "thresholds_by_method": thresholds,
        "target_fpr": config.target_fpr,
        "dssim_knn": anomaly_scorer.settings(),
        "calibration_scores": np.sort(calibration_scores[method]).tolist(),
        "calibration": {"source": "normal images held out from training (validation and calibration shares)",
                        "n_images": len(data.validation) + len(data.calibration)},
        "heatmap_scale": _heatmap_scale(scorer, data.calibration, config.target_fpr),
        "normal_classes": config.normal if not config.images else ["folder"],
        "input": input_contract(framing_of(config)),
        "training": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()},
                     "final_losses": {k: float(v[-1]) for k, v in history.history.items()},
                     "n_train": len(data.train), "n_validation": len(data.validation),
                     "n_calibration": len(data.validation) + len(data.calibration)},
        "validation_auroc_by_method": validation_aurocs,
        "data": {"source": data.source, "sha256": data.fingerprint},
        "test_metrics": test_metrics,
        "test_folders": data.test_set.folders if test_metrics is not None else None,
        "reference_images": _reference_images(data, lambda images: _with_primary(scores_of(images), method)),
        "library_versions": _library_versions(),
    }
    model_dir = Path(config.store) / config.name
    with staging_directory(model_dir) as staging:
        export_saved_model(anomaly_scorer, method, staging)
        metadata["training"]["seconds"] = round(time.monotonic() - started, 1)
        version = publish(model_dir, staging, metadata, before_rename=_report_writer(data))
    path = model_dir / str(version)
    log.info("published %s version %d in %.1f s", config.name, version, time.monotonic() - started)
    return PublishedModel(version, path, {**metadata, "version": version})


def _report_writer(data: TrainingData):
    """Every version with labelled test data ships its evaluation, computed through its own SavedModel."""
    if data.test_set is None:
        return None

    def write(staging: Path, metadata: dict) -> None:
        from training.evaluate import write_report

        write_report(staging, metadata, data.test_set, staging / REPORT_PATH, progress=False)
    return write


def _with_primary(scores: dict, method: str) -> dict:
    return {**scores, "score": scores[method]}


def _heatmap_scale(scorer, calibration: np.ndarray, target_fpr: float) -> float:
    import tensorflow as tf

    return pixel_threshold(scorer(tf.constant(to_model_input(calibration)))["difference"].numpy(), target_fpr)
