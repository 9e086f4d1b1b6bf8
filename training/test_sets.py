"""The labelled images an evaluation scores: MNIST's test set, or folders of the user's own normal and
anomalous images. No TensorFlow here, so the training job reads and checks them before it imports it."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.data import DataError, Mnist, fingerprint, image_files, kinds_of, read_images_or_refusals

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledImages:
    images: np.ndarray            # uint8 [N, 28, 28], as the model sees them
    labels: np.ndarray            # each image's class: a digit (MNIST), or "normal" or the kind of anomaly (folders)
    is_anomaly: np.ndarray        # bool [N]
    description: str              # what the images are, for the report
    label_kind: str = "digit"     # what a label is: "digit" or "kind"
    names: list[str] | None = None  # each image's file; None for MNIST, whose images are named x_test[i]
    refused: dict[str, str] = field(default_factory=dict)  # files the service would refuse (422), with why
    # Where a test set of folders was read ({"normals", "anomalies", "invert"}, absolute), so that a version
    # recalibrated from this one is tested on the same folders, and what was read there ("fingerprint"), so
    # that it can say whether they still hold the same images; None for MNIST's.
    folders: dict | None = None


def digit_test_set(images: np.ndarray, labels: np.ndarray, normal_classes: list[int]) -> LabelledImages:
    """MNIST-style test images: an image is anomalous when its digit is not among the normal ones."""
    return LabelledImages(images, labels, ~np.isin(labels, normal_classes), "MNIST test set")


def mnist_test_set(mnist: Mnist, normal_classes: list[int]) -> LabelledImages:
    return digit_test_set(mnist.x_test, mnist.y_test, normal_classes)


def folder_test_set(normals: Path, anomalies: Path, invert: bool, framing: str,
                    options: tuple[str, str] = ("--normals", "--anomalies")) -> LabelledImages:
    """Folders of normal and anomalous images, prepared as the service prepares uploads (`framing`; `invert`
    as ?invert=true). Each top-level subfolder of `anomalies` is a kind of anomaly, reported on its own.
    `options` name the folders in errors, as the command line names them.

    The normals may lie inside the anomalies' folder, as in a dataset laid out like MVTec AD (`test/good/`
    beside `test/scratch/`, `test/dent/`...): they are then left out of the anomalies. Any other overlap is
    refused, since its images would count as both.
    """
    normals, anomalies = Path(normals), Path(anomalies)
    normal_root, anomaly_root = normals.resolve(), anomalies.resolve()
    if anomaly_root.is_relative_to(normal_root):
        what = ("are the same folder" if anomaly_root == normal_root
                else f"lie the wrong way round ({anomalies} is inside {normals})")
        raise DataError(f"{options[0]} {normals} and {options[1]} {anomalies} {what}, so images would count as "
                        "both normal and anomalous; give separate folders, or the normals' inside the anomalies'")
    normal_files = image_files(normals)
    anomalous_files = [file for file in image_files(anomalies) if not file.resolve().is_relative_to(normal_root)]
    if not anomalous_files:
        raise DataError(f"no images in {anomalies} besides the normal ones in {normals}")
    if normal_root.is_relative_to(anomaly_root):
        log.info("%s is inside %s: its %d images are taken as normal, the other %d as anomalous", normals,
                 anomalies, len(normal_files), len(anomalous_files))
    _refuse_kinds_named_normal(anomalies, anomalous_files, options)
    # An image the service would refuse (a 422) gets no verdict there, so it is neither caught nor missed:
    # it is listed apart, and the evaluation goes on without it.
    normal_images, normal_files, refused = _read_all_or_say_why(normal_files, invert, framing, normals)
    anomalous_images, anomalous_files, refused_anomalies = _read_all_or_say_why(anomalous_files, invert, framing,
                                                                                anomalies)
    refused.update(refused_anomalies)
    if refused:
        log.warning("%d test images are refused, as the service would refuse them (with a 422); the report lists "
                    "them, unscored. The first: %s", len(refused), next(iter(refused.values())))
    images = np.concatenate([normal_images, anomalous_images])
    labels = np.array(["normal"] * len(normal_files) + kinds_of(anomalies, anomalous_files))
    return LabelledImages(
        images=images, labels=labels,
        is_anomaly=np.r_[np.zeros(len(normal_files), bool), np.ones(len(anomalous_files), bool)],
        description=f"folders {normals} (normal) and {anomalies} (anomalous)" + (", inverted" if invert else ""),
        label_kind="kind", names=[str(file) for file in normal_files + anomalous_files],
        refused={str(file): why for file, why in refused.items()},
        folders={"normals": str(normal_root), "anomalies": str(anomaly_root), "invert": invert,
                 "fingerprint": fingerprint(images, labels)})


def change_since(recorded: dict, metrics: dict | None, now: LabelledImages) -> str | None:
    """How the test folders `recorded` by a version (with its `metrics` on them) differ from what they hold
    `now`, in words; None when they hold the same images. A version recorded before the fingerprint is
    compared by its counts of images."""
    n_normal, n_anomalous = int((~now.is_anomaly).sum()), int(now.is_anomaly.sum())
    counts_then = (metrics.get("n_normal"), metrics.get("n_anomalous")) if metrics else None
    same_counts = counts_then in (None, (n_normal, n_anomalous))
    if "fingerprint" in recorded:
        same = recorded["fingerprint"] == now.folders["fingerprint"]
    else:
        same = same_counts
    if same:
        return None
    if same_counts:
        return f"other images, {n_normal} normal and {n_anomalous} anomalous as before"
    return f"{counts_then[0]} normal and {counts_then[1]} anomalous images then, {n_normal} and {n_anomalous} now"


# Names datasets give their normal images (MVTec AD's `good`): a kind of anomaly so named is a mistake.
NORMAL_FOLDER_NAMES = ("good", "normal", "ok", "nominal")


def _refuse_kinds_named_normal(anomalies: Path, files: list[Path], options: tuple[str, str]) -> None:
    """A subfolder of the anomalies named as normal images are (`test/good` when the normals were given from
    elsewhere) would count its images as anomalies, and the report would read as if the model missed them."""
    if anomalies.resolve().name.lower() in NORMAL_FOLDER_NAMES:
        raise DataError(f"{options[1]} {anomalies} is named as normal images are: were {options[0]} and "
                        f"{options[1]} swapped? Give the anomalous images as {options[1]}")
    counts = Counter(kinds_of(anomalies, files))
    named = sorted(kind for kind in counts if kind.lower() in NORMAL_FOLDER_NAMES)
    if named:
        listed = ", ".join(f"{anomalies / kind} ({counts[kind]} images)" for kind in named)
        raise DataError(f"{options[1]} {anomalies} holds {listed}, named as normal images are: they would count as "
                        f"anomalies. Give that folder as {options[0]}, or move it out of {anomalies}")


def _read_all_or_say_why(files: list[Path], invert: bool, framing: str, folder: Path):
    images, kept, refused = read_images_or_refusals(files, invert, framing)
    if not kept:  # nothing left to evaluate: the reason is likely the same for all (a missing --invert)
        raise DataError(f"every image in {folder} is refused, as the service would refuse it; the first: "
                        f"{next(iter(refused.values()))}")
    return images, kept, refused


def check_both_given(normals: tuple[str, object], anomalies: tuple[str, object]) -> bool:
    """Whether a pair of test-folder options is given: both (True) or neither (False); one alone is refused."""
    (normal_option, normal), (anomaly_option, anomaly) = normals, anomalies
    if (normal is None) != (anomaly is None):
        given, missing = (normal_option, anomaly_option) if anomaly is None else (anomaly_option, normal_option)
        raise DataError(f"{given} needs {missing} too: an evaluation compares normal images with anomalous ones")
    return normal is not None


def check_apart(folders: dict[str, Path]) -> None:
    """No folder may hold another: training on images that then test the model would flatter it."""
    named = [(option, Path(folder), Path(folder).resolve()) for option, folder in folders.items()]
    for i, (option, folder, root) in enumerate(named):
        for other_option, other, other_root in named[i + 1:]:
            if root == other_root:
                what = "are the same folder"
            elif root.is_relative_to(other_root):
                what = f"lie one inside the other ({folder} is inside {other})"
            elif other_root.is_relative_to(root):
                what = f"lie one inside the other ({other} is inside {folder})"
            else:
                continue
            raise DataError(f"{option} {folder} and {other_option} {other} {what}; give separate folders")
