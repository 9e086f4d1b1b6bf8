"""The scoring use case: images in, verdicts out, every result stored. Handlers stay thin around it."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import numpy as np

from app.batching import DynamicBatcher
from app.detector import Detector, Predictions
from app.errors import InvalidInput
from app.metrics import ServiceMetrics
from app.registry import ModelRegistry
from app.results import ResultStore, StoredResult, stored_time
from training.calibration import CalibrationError, conformal_threshold


@dataclass(frozen=True)
class ThresholdOverride:
    threshold: float | None = None
    fpr: float | None = None

    def __post_init__(self):
        if self.threshold is not None and self.fpr is not None:
            raise InvalidInput("give either ?threshold= or ?fpr=, not both")

    def resolve(self, detector: Detector) -> tuple[float, str, float | None]:
        """(threshold, source, target FPR) for this request and model version."""
        if self.threshold is not None:
            return self.threshold, "threshold", None
        if self.fpr is not None:
            try:
                return conformal_threshold(detector.calibration_scores, self.fpr), "fpr", self.fpr
            except CalibrationError as error:
                raise InvalidInput(f"fpr={self.fpr}: {error}") from error
        return detector.threshold, "model", float(detector.metadata["target_fpr"])


def _predict_with_current(registry: ModelRegistry):
    def run(images: np.ndarray) -> tuple[Detector, Predictions]:
        detector = registry.current  # read once per batch: a hot swap never splits a batch
        return detector, detector.predict(images)
    return run


def _rows(result: tuple[Detector, Predictions], start: int, stop: int) -> tuple[Detector, Predictions]:
    detector, p = result
    return detector, Predictions(score=p.score[start:stop],
                                 scores={k: v[start:stop] for k, v in p.scores.items()},
                                 reconstruction=p.reconstruction[start:stop],
                                 difference=p.difference[start:stop])


class Scorer:
    def __init__(self, registry: ModelRegistry, store: ResultStore, metrics: ServiceMetrics,
                 max_batch_size: int, max_wait_s: float):
        self._registry = registry
        self._store = store
        self._metrics = metrics
        self.batcher: DynamicBatcher = DynamicBatcher(
            _predict_with_current(registry), _rows, max_batch_size, max_wait_s,
            on_batch=metrics.batch_size.observe)

    @property
    def framing(self) -> str:
        """How the serving version frames uploads of other sizes (raises ModelUnavailable: 503)."""
        # Read before decoding; a hot swap to a version framed otherwise before the model call is
        # possible but needs a retrained model published mid-request, so it is not guarded against.
        return self._registry.current.framing

    async def score(self, images: np.ndarray, override: ThresholdOverride, source: str | None = None,
                    refs: list[str | None] | None = None) -> list[StoredResult]:
        """uint8 [N, 28, 28] -> one stored result per image, in order, stored with `source` and its ref."""
        override.resolve(self._registry.current)  # fail fast (503, 422) before spending a model call
        detector, predictions = await self.batcher.submit(images)
        threshold, threshold_source, target_fpr = override.resolve(detector)
        n = len(images)
        refs = refs or [None] * n
        created_at = stored_time(dt.datetime.now(dt.UTC))
        # Whole-batch conversions (tolist, astype) rather than per-image ones: this runs per request.
        ids = os.urandom(16 * n).hex()
        scores = predictions.score.tolist()
        p_values = detector.p_values(predictions.score).tolist()
        method_scores = {name: values.tolist() for name, values in predictions.scores.items()}
        reconstruction = np.rint(np.clip(predictions.reconstruction, 0, 1) * 255).astype(np.uint8)
        difference = predictions.difference.astype(np.float16)
        results = [
            StoredResult(
                id=ids[32 * i:32 * (i + 1)], created_at=created_at, model_name=detector.name,
                model_version=detector.version, score_method=detector.score_method,
                score=scores[i], threshold=float(threshold), threshold_source=threshold_source,
                target_fpr=target_fpr, p_value=p_values[i], is_anomaly=scores[i] > threshold,
                scores={name: values[i] for name, values in method_scores.items()},
                image=images[i], reconstruction=reconstruction[i], difference=difference[i],
                heatmap_scale=detector.heatmap_scale, source=source, ref=refs[i])
            for i in range(n)
        ]
        await self._store.save(results)
        self._record(results)
        return results

    def _record(self, results: list[StoredResult]) -> None:
        self._metrics.scored.inc(len(results))
        anomalies = sum(r.is_anomaly for r in results)
        if anomalies:
            self._metrics.anomalies.inc(anomalies)
        for result in results:
            self._metrics.p_value.observe(result.p_value)
