"""Loading images: MNIST in Keras' .npz layout, or folders of the user's own images."""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from training.preprocessing import NOT_ONE_MODEL_IMAGE, SIDE, prepare_image
from training.progress import Progress

log = logging.getLogger(__name__)

MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")
# The formats the service decodes (app/imaging.py).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Half the 0-255 range: a gap this wide between typical pixels is a polarity flip, not a lighting change.
BACKGROUND_GAP = 128


class DataError(Exception):
    """Training data is missing or malformed; the message says what to fix."""


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def fingerprint(self) -> str:
        return fingerprint(self.x_train, self.y_train, self.x_test, self.y_test)


def fingerprint(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def resolve_mnist_path(path: str | os.PathLike | None) -> Path | None:
    """The explicit path, else $MNIST_PATH, else None (meaning: Keras' cache/download)."""
    chosen = path or os.environ.get("MNIST_PATH")
    return Path(chosen) if chosen else None


def load_mnist(path: str | os.PathLike | None = None) -> Mnist:
    resolved = resolve_mnist_path(path)
    if resolved is None:
        return _load_mnist_from_keras()
    if resolved.is_dir():
        archives = sorted(entry.name for entry in resolved.glob("*.npz"))
        there = f" (it holds {', '.join(archives[:5])})" if archives else ""
        raise DataError(f"{resolved} is a folder; --data and MNIST_PATH take the .npz file itself{there}")
    if not resolved.is_file():
        raise DataError(f"MNIST file not found: {resolved} (pass --data PATH or set MNIST_PATH)")
    # Opened here rather than by np.load, which leaves its file open when the archive is corrupt.
    with open(resolved, "rb") as file:
        if file.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):  # NumPy would try it as a pickle, and say so
            raise DataError(f"{resolved} is not a .npz archive (a zip of .npy arrays, as numpy.savez writes); "
                            "expected Keras' MNIST layout")
        file.seek(0)
        try:
            with np.load(file, allow_pickle=False) as archive:
                missing = [key for key in MNIST_KEYS if key not in archive.files]
                if missing:
                    raise DataError(f"{resolved} lacks {', '.join(missing)}; expected Keras' MNIST layout "
                                    f"with arrays {', '.join(MNIST_KEYS)}")
                arrays = {key: archive[key] for key in MNIST_KEYS}
        except DataError:
            raise
        except Exception as error:  # zip/npy parsing errors come in many types
            raise DataError(f"cannot read {resolved} as a .npz archive: {error}") from error
    return _validated(Mnist(**arrays), str(resolved))


def _load_mnist_from_keras() -> Mnist:
    from keras.datasets import mnist  # deferred: importing Keras is slow and needs TensorFlow

    try:
        (x_train, y_train), (x_test, y_test) = mnist.load_data()
    except Exception as error:
        raise DataError("MNIST is not in Keras' cache and could not be downloaded "
                        f"({error}); pass --data PATH or set MNIST_PATH to a local mnist.npz") from error
    return _validated(Mnist(x_train, y_train, x_test, y_test), "keras cache")


def _validated(data: Mnist, source: str) -> Mnist:
    for split in ("train", "test"):
        images, labels = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if images.ndim != 3 or images.shape[1:] != (SIDE, SIDE):
            raise DataError(f"{source}: x_{split} has shape {images.shape}, expected (N, {SIDE}, {SIDE})")
        if images.dtype != np.uint8:
            raise DataError(f"{source}: x_{split} has dtype {images.dtype}, expected uint8")
        if labels.shape != (images.shape[0],):
            raise DataError(f"{source}: y_{split} has shape {labels.shape}, expected ({images.shape[0]},)")
    return data


def load_image_folder(directory: str | os.PathLike, invert: bool = False, framing: str = "pad") -> np.ndarray:
    """All images under `directory` as uint8 [N, 28, 28], prepared as the service prepares uploads
    (grayscale, upright, framed; `invert` for dark-on-light images)."""
    root = Path(directory)
    files = image_files(root)
    folders = Counter(str(file.parent.relative_to(root)) for file in files)
    if len(folders) > 1:  # a dataset's root (good/, broken/, test/...) would take its defects for normal images
        shown = sorted(folders.items(), key=lambda folder: (-folder[1], folder[0]))[:10]
        log.info("%s: %d images from %d folders, every one taken as normal: %s%s", root, len(files), len(folders),
                 ", ".join(f"{name} {n}" for name, n in shown), " ..." if len(folders) > len(shown) else "")
    return read_images(files, invert, framing)


def kinds_of(root: Path, files: list[Path]) -> list[str]:
    """Each file's kind: the name of its top-level subfolder under `root` (`scratch` for `defects/scratch/1.png`),
    or the folder's own name for a file at its top level. So a dataset's defects, laid out a folder per kind,
    are reported kind by kind."""
    own_name = root.resolve().name
    return [file.relative_to(root).parts[0] if len(file.relative_to(root).parts) > 1 else own_name
            for file in files]


def image_files(root: Path) -> list[Path]:
    """The image files under `root`, sorted; a warning names the files of other kinds that are left out."""
    if root.is_file():  # one image given where its folder was meant
        raise DataError(f"{root} is a file; give the folder that holds the images")
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    # Hidden files and folders are skipped: .DS_Store, and macOS's "._photo.png" companions, which are no images.
    found = [p for p in root.rglob("*")
             if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    files = sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES)
    skipped = Counter(p.suffix.lower() or "no suffix" for p in found if p.suffix.lower() not in IMAGE_SUFFIXES)
    if skipped:  # 500 photos in .heic beside 3 .png would otherwise calibrate on the 3 without a word
        kinds = sorted(skipped.items(), key=lambda kind: (-kind[1], kind[0]))[:5]
        log.warning("%s: skipped %d files of a kind that is not read (%s); images must be %s", root,
                    sum(skipped.values()), ", ".join(f"{n} {suffix}" for suffix, n in kinds),
                    ", ".join(sorted(IMAGE_SUFFIXES)))
    if not files:
        raise DataError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {root}")
    return files


def read_images(files: list[Path], invert: bool, framing: str) -> np.ndarray:
    """The files decoded and prepared as the service prepares uploads, as uint8 [N, 28, 28]; DataError names
    the first that cannot be."""
    shown = Progress(len(files), "images", "read")  # a folder of photos takes minutes
    images = []
    for file in files:
        images.append(read_image(file, invert, framing))
        shown.advance(len(images))
    return np.stack(images)


def read_images_or_refusals(files: list[Path], invert: bool,
                            framing: str) -> tuple[np.ndarray, list[Path], dict[Path, str]]:
    """As `read_images`, but a file the service would refuse is set aside with the reason, not fatal: the
    images, the files they came from, and the refused files with why."""
    images, kept, refused = [], [], {}
    shown = Progress(len(files), "images", "read")
    for done, file in enumerate(files, 1):
        try:
            images.append(read_image(file, invert, framing))
            kept.append(file)
        except DataError as error:
            refused[file] = str(error)
        shown.advance(done)
    return (np.stack(images) if images else np.zeros((0, SIDE, SIDE), np.uint8)), kept, refused


def read_image(file: Path, invert: bool, framing: str) -> np.ndarray:
    try:
        with Image.open(file) as image:
            return prepare_image(image, invert=invert, framing=framing)
    except Image.DecompressionBombError as error:
        raise DataError(f"{file} is too large to decode safely: {error}") from error
    except NOT_ONE_MODEL_IMAGE as error:
        raise DataError(f"{file}: {error}") from error
    # Truncated or corrupt files raise any of these.
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as error:
        raise DataError(f"cannot decode {file}: {error}") from error


def check_background(images: np.ndarray, references: np.ndarray | None,
                     whose: str = "the model's normal images") -> None:
    """Refuse normal images whose background is the opposite of the `references`' (a scan not inverted).

    The model flags nearly all of them. Calibrating on them would set the threshold above every normal score
    and so let real anomalies pass, which is worse than no recalibration; evaluating on them would report that
    failure as the model's. Each image's median pixel is its background.
    """
    if references is None or not len(references):
        return
    reference_background = float(np.median(np.median(np.asarray(references, np.float64), axis=(1, 2))))
    background = float(np.median(np.median(images.astype(np.float64), axis=(1, 2))))
    if abs(background - reference_background) >= BACKGROUND_GAP:
        shade = "light" if background > reference_background else "dark"
        raise DataError(f"these images have a {shade} background (median pixel {background:.0f}), {whose} the "
                        f"opposite ({reference_background:.0f}); invert them (--invert) or check that they are "
                        "the right kind of image")


def normal_references(metadata: dict) -> np.ndarray | None:
    """The normal images a published version carries to check itself with (its reference images)."""
    references = [r["pixels"] for r in metadata.get("reference_images") or [] if r["kind"] == "normal"]
    return np.asarray(references, np.uint8) if references else None
