"""One loaded model version behind a small interface: `load` it, `predict` images, `self_check` it.

TensorFlow errors are translated here, once, into `ModelLoadError`; nothing else in the service
touches TensorFlow.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.errors import ModelLoadError
from training.calibration import p_values
from training.preprocessing import framing_of_version, to_model_input
from training.store import read_metadata

log = logging.getLogger(__name__)
SELF_CHECK_RTOL = 1e-4
SIGNATURE = "serving_default"


@dataclass(frozen=True)
class Predictions:
    """Model outputs for a batch of N images."""
    score: np.ndarray                     # [N] the primary score
    scores: dict[str, np.ndarray]         # method -> [N]
    reconstruction: np.ndarray            # [N, 28, 28] in [0, 1]
    difference: np.ndarray                # [N, 28, 28] input - reconstruction

    def __len__(self) -> int:
        return len(self.score)


class Detector:
    def __init__(self, path: Path, metadata: dict, signature):
        self.path = path
        self.metadata = metadata
        self.name: str = metadata["name"]
        self.version: int = int(metadata["version"])
        self.threshold: float = float(metadata["threshold"])
        self.score_method: str = metadata["score_method"]
        self.framing: str = framing_of_version(metadata)  # how uploads of other sizes become 28x28
        self.heatmap_scale: float = float(metadata.get("heatmap_scale", 0.25))
        # Sorted here, not trusted to be: p-values are counted by binary search over them.
        self.calibration_scores = np.sort(np.asarray(metadata["calibration_scores"], dtype=np.float64))
        self._signature = signature
        self._method_names = tuple(metadata["score_methods"])

    @classmethod
    def load(cls, path: Path) -> Detector:
        """Blocking: read metadata and the SavedModel. Raises ModelLoadError with the reason."""
        try:
            metadata = read_metadata(path)
            for field in ("name", "version", "threshold", "target_fpr", "score_method", "score_methods",
                          "calibration_scores"):
                if field not in metadata:
                    raise ModelLoadError(f"{path}: metadata lacks {field!r}")
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"{path}: unreadable metadata: {error}") from error
        try:
            framing_of_version(metadata)
        except ValueError as error:
            raise ModelLoadError(f"{path}: {error}") from error
        if not (isinstance(metadata["threshold"], (int, float)) and math.isfinite(metadata["threshold"])):
            # json reads NaN; with a NaN threshold no image would ever be flagged
            raise ModelLoadError(f"{path}: threshold {metadata['threshold']!r} is not a finite number")
        _check_values(path, metadata)
        try:
            import tensorflow as tf  # deferred: the web app starts answering before TF is imported

            signature = tf.saved_model.load(str(path)).signatures[SIGNATURE]
        except Exception as error:  # TensorFlow raises many types for a bad SavedModel
            raise ModelLoadError(f"{path}: cannot load the SavedModel: {error}") from error
        try:
            return cls(path, metadata, signature)
        except (TypeError, ValueError, KeyError) as error:  # a value of a kind no check above foresaw
            raise ModelLoadError(f"{path}: malformed metadata: {error!r}") from error

    def predict(self, images: np.ndarray) -> Predictions:
        """Blocking: uint8 [N, 28, 28] -> predictions. Never call on the event loop."""
        import tensorflow as tf

        outputs = self._signature(images=tf.constant(to_model_input(images)))
        return Predictions(
            score=outputs["score"].numpy(),
            scores={name: outputs[name].numpy() for name in self._method_names},
            reconstruction=outputs["reconstruction"].numpy().reshape(-1, 28, 28),
            difference=outputs["difference"].numpy().reshape(-1, 28, 28),
        )

    def p_values(self, scores: np.ndarray) -> np.ndarray:
        return p_values(self.calibration_scores, scores)

    def self_check(self) -> None:
        """Blocking: the stored reference images must reproduce their recorded scores."""
        references = self.metadata.get("reference_images") or []
        if not references:
            raise ModelLoadError(f"{self.path}: no reference images to self-check against")
        try:
            images = np.array([r["pixels"] for r in references], dtype=np.uint8)
            expected = np.array([r["scores"]["score"] for r in references], dtype=np.float64)
            got = self.predict(images).score
        except ModelLoadError:
            raise
        except Exception as error:
            raise ModelLoadError(f"{self.path}: self-check could not run: {error}") from error
        if not np.allclose(got, expected, rtol=SELF_CHECK_RTOL, atol=1e-6):
            worst = int(np.argmax(np.abs(got - expected)))
            raise ModelLoadError(f"{self.path}: self-check failed: reference image {worst} scored "
                                 f"{got[worst]:.6g}, recorded {expected[worst]:.6g}")

    def public_metadata(self) -> dict:
        """Metadata without the bulky arrays (calibration scores, reference pixels)."""
        hidden = {"calibration_scores", "reference_images"}
        public = {k: v for k, v in self.metadata.items() if k not in hidden}
        public["n_calibration_scores"] = len(self.calibration_scores)
        public["n_reference_images"] = len(self.metadata.get("reference_images") or [])
        return public


def _check_values(path: Path, metadata: dict) -> None:
    """The metadata values the service computes with: refused here, rather than failing per request."""
    scores = metadata["calibration_scores"]
    if not (isinstance(scores, list) and scores and all(_is_finite_number(v) for v in scores)):
        raise ModelLoadError(f"{path}: calibration_scores must be a non-empty list of finite numbers "
                             "(p-values and ?fpr= are computed from them)")
    scale = metadata.get("heatmap_scale", 0.25)
    if not (_is_finite_number(scale) and scale > 0):
        raise ModelLoadError(f"{path}: heatmap_scale {scale!r} is not a positive number")
    methods = metadata["score_methods"]
    if not (isinstance(methods, dict | list) and methods and all(isinstance(m, str) for m in methods)):
        raise ModelLoadError(f"{path}: score_methods must name the score methods, not {methods!r}")


def _is_finite_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
