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
from training.sources import SOURCE_RULE, is_source_name
from training.store import read_metadata

log = logging.getLogger(__name__)
SELF_CHECK_RTOL = 1e-4
SIGNATURE = "serving_default"


SMALLEST_NORMAL_FLOAT16 = np.float32(2.0 ** -14)
FLOAT16_SUBNORMAL_STEPS = np.float32(2.0 ** 24)  # float16's subnormals are whole multiples of 2**-24


def to_float16(values: np.ndarray) -> np.ndarray:
    """float32 -> float16, bit for bit as numpy's astype, but fast for float16's subnormals.

    A third or more of a difference map's values are subnormal in float16 (a near-black background), and
    numpy's astype converts those some 50 times slower: 5-12 ms for 256 images. TensorFlow's cast is fast
    but logs an error line ("oneDNN supports DT_HALF only ...") on CPUs without AVX-512 FP16.
    """
    tiny = np.abs(values) < SMALLEST_NORMAL_FLOAT16
    bits = np.where(tiny, np.float32(0), values).astype(np.float16).view(np.uint16)
    # Scaling by a power of two is exact, so rint (ties to even) rounds as the conversion does.
    subnormal = values[tiny]  # selected once: this runs for every model call
    steps = np.rint(np.abs(subnormal) * FLOAT16_SUBNORMAL_STEPS).astype(np.uint16)
    bits[tiny] = steps | (np.signbit(subnormal).astype(np.uint16) << 15)
    return bits.view(np.float16)


@dataclass(frozen=True)
class Predictions:
    """Model outputs for a batch of N images."""
    score: np.ndarray                     # [N] the primary score
    scores: dict[str, np.ndarray]         # method -> [N]
    reconstruction: np.ndarray            # uint8 [N, 28, 28] (0-255, as stored)
    difference: np.ndarray                # float16 [N, 28, 28] input - reconstruction (as stored)

    def __len__(self) -> int:
        return len(self.score)


@dataclass(frozen=True)
class Calibration:
    """A threshold, the false-positive rate it was calibrated for, and the normal images' scores it came from
    (for p-values and ?fpr=): the model's, or one source's own (`source` names it)."""
    threshold: float
    target_fpr: float
    scores: np.ndarray  # sorted
    source: str | None = None

    @classmethod
    def of(cls, fields: dict, source: str | None = None) -> Calibration:
        # Sorted here, not trusted to be: p-values are counted by binary search over them.
        return cls(float(fields["threshold"]), float(fields["target_fpr"]),
                   np.sort(np.asarray(fields["calibration_scores"], dtype=np.float64)), source)

    def p_values(self, scores: np.ndarray) -> np.ndarray:
        return p_values(self.scores, scores)


class Detector:
    def __init__(self, path: Path, metadata: dict, signature):
        self.path = path
        self.metadata = metadata
        self.name: str = metadata["name"]
        self.version: int = int(metadata["version"])
        self.score_method: str = metadata["score_method"]
        self.framing: str = framing_of_version(metadata)  # how uploads of other sizes become 28x28
        self.heatmap_scale: float = float(metadata.get("heatmap_scale", 0.25))
        self.calibration = Calibration.of(metadata)
        self.source_calibrations = {name: Calibration.of(fields, name)
                                    for name, fields in (metadata.get("source_calibrations") or {}).items()}
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
        reconstruction = outputs["reconstruction"].numpy().reshape(-1, 28, 28)
        return Predictions(
            score=outputs["score"].numpy(),
            scores={name: outputs[name].numpy() for name in self._method_names},
            reconstruction=np.rint(np.clip(reconstruction, 0, 1) * 255).astype(np.uint8),
            difference=to_float16(outputs["difference"].numpy().reshape(-1, 28, 28)),
        )

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    def calibration_for(self, source: str | None) -> Calibration:
        """The calibration that applies to images sent with ?source=`source`: its own, if it has one."""
        return self.source_calibrations.get(source, self.calibration) if source is not None else self.calibration

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
        public = _without_scores(self.metadata, also={"reference_images"})
        public["n_reference_images"] = len(self.metadata.get("reference_images") or [])
        if "source_calibrations" in public:
            public["source_calibrations"] = {name: _without_scores(fields)
                                             for name, fields in public["source_calibrations"].items()}
        return public


def _without_scores(fields: dict, also: frozenset[str] | set[str] = frozenset()) -> dict:
    public = {k: v for k, v in fields.items() if k != "calibration_scores" and k not in also}
    public["n_calibration_scores"] = len(fields["calibration_scores"])
    return public


def _check_values(path: Path, metadata: dict) -> None:
    """The metadata values the service computes with: refused here, rather than failing per request."""
    _check_calibration(path, metadata, "")
    sources = metadata.get("source_calibrations") or {}
    if not isinstance(sources, dict):
        raise ModelLoadError(f"{path}: source_calibrations must map sources to their calibrations")
    for name, fields in sources.items():
        if not is_source_name(name):
            raise ModelLoadError(f"{path}: source_calibrations names {name!r}, which is not a source the "
                                 f"service accepts ({SOURCE_RULE})")
        if not isinstance(fields, dict) or not {"threshold", "target_fpr", "calibration_scores"} <= fields.keys():
            raise ModelLoadError(f"{path}: source_calibrations[{name!r}] needs threshold, target_fpr and "
                                 "calibration_scores")
        _check_calibration(path, fields, f"source_calibrations[{name!r}].")
    scale = metadata.get("heatmap_scale", 0.25)
    if not (_is_finite_number(scale) and scale > 0):
        raise ModelLoadError(f"{path}: heatmap_scale {scale!r} is not a positive number")
    methods = metadata["score_methods"]
    if not (isinstance(methods, dict | list) and methods and all(isinstance(m, str) for m in methods)):
        raise ModelLoadError(f"{path}: score_methods must name the score methods, not {methods!r}")


def _check_calibration(path: Path, fields: dict, where: str) -> None:
    threshold, target_fpr, scores = fields["threshold"], fields["target_fpr"], fields["calibration_scores"]
    if not _is_finite_number(threshold):  # json reads NaN; with a NaN threshold no image would ever be flagged
        raise ModelLoadError(f"{path}: {where}threshold {threshold!r} is not a finite number")
    if not (_is_finite_number(target_fpr) and 0 < target_fpr < 1):
        raise ModelLoadError(f"{path}: {where}target_fpr {target_fpr!r} is not a rate between 0 and 1")
    if not (isinstance(scores, list) and scores and all(_is_finite_number(v) for v in scores)):
        raise ModelLoadError(f"{path}: {where}calibration_scores must be a non-empty list of finite numbers "
                             "(p-values and ?fpr= are computed from them)")


def _is_finite_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
