"""The scoring use case: images in, verdicts out, every result stored. Handlers stay thin around it."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from dataclasses import dataclass

import numpy as np

from app.batching import DynamicBatcher
from app.detector import Calibration, Detector, Predictions
from app.errors import InvalidInput, StoreUnavailable
from app.idempotency import HEADER, IdempotentRequest, item_key
from app.metrics import ServiceMetrics
from app.registry import ModelRegistry
from app.results import ResultStore, StoredResult
from app.results_schema import stored_time
from training.calibration import CalibrationError, conformal_threshold


@dataclass(frozen=True)
class ThresholdOverride:
    threshold: float | None = None
    fpr: float | None = None

    def __post_init__(self):
        if self.threshold is not None and self.fpr is not None:
            raise InvalidInput("give either ?threshold= or ?fpr=, not both")

    def resolve(self, calibration: Calibration) -> tuple[float, str, float | None]:
        """(threshold, where it came from, target FPR) for this request, given the calibration that applies
        to its images (the model version's, or their source's own)."""
        if self.threshold is not None:
            return self.threshold, "threshold", None
        if self.fpr is not None:
            try:
                return conformal_threshold(calibration.scores, self.fpr), "fpr", self.fpr
            except CalibrationError as error:
                whose = "" if calibration.source is None else f" with the calibration of source {calibration.source}"
                raise InvalidInput(f"fpr={self.fpr}{whose}: {error}") from error
        return calibration.threshold, "model" if calibration.source is None else "source", calibration.target_fpr


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
        results, _ = await self._score_and_store(images, override, source, refs or [None] * len(images))
        return results

    async def score_once(self, images: np.ndarray, override: ThresholdOverride, source: str | None,
                         ref: str | None, request: IdempotentRequest) -> tuple[StoredResult, bool]:
        """One image, stored once per idempotency key: (result, True) when an earlier request with the key
        was stored first, and this is its result again."""
        # Scored before the key is looked up: the lookup would cost every first request a thread hop, to
        # spare the rare retry a model call. The store keeps the first result and reports the retry's as
        # not stored, also when two with the same key arrive at once.
        (result,), skipped = await self._score_and_store(images, override, source, [ref], [request.stored_key],
                                                         request.digest)
        if not skipped:
            return result, False
        stored = await self._stored_for(request, request.stored_key)
        self._metrics.replays.inc()
        return stored, True

    async def score_batch_once(self, images: np.ndarray, positions: list[int], override: ThresholdOverride,
                               source: str | None, refs: list[str | None], request: IdempotentRequest,
                               ) -> tuple[list[StoredResult], bool]:
        """A batch's decodable images (at `positions` in the request), each stored once per idempotency key:
        (results in order, True) when an earlier request with the key had stored any of them."""
        # Looked up first, unlike a single image's key: a batch reusing a key for other images must be
        # refused before any of them is stored, and one thread hop is little beside a batch's work.
        earlier = await asyncio.to_thread(self._store.get_batch_items, request.stored_key)
        for stored in earlier.values():
            _check_same_request(stored, request)
        new = [i for i, position in enumerate(positions) if position not in earlier]
        found, raced = dict(earlier), False
        if new:
            scored, skipped = await self._score_and_store(
                images[new], override, source, [refs[i] for i in new],
                [item_key(request.stored_key, positions[i]) for i in new], request.digest)
            raced = bool(skipped)  # a concurrent request with the key stored some of these images first
            for i, result in zip(new, scored, strict=True):
                found[positions[i]] = (await self._stored_for(request, result.idempotency_key)
                                       if result.id in skipped else result)
        replayed = bool(earlier) or raced
        if replayed:
            self._metrics.replays.inc()
        return [found[position] for position in positions], replayed

    async def _stored_for(self, request: IdempotentRequest, stored_key: str) -> StoredResult:
        """The result stored first under `stored_key` (the request's stored key, or one of its batch item keys)."""
        stored = await asyncio.to_thread(self._store.get_by_idempotency_key, stored_key)
        if stored is None:  # pruned in between by retention: only if the log holds a handful of rows
            raise StoreUnavailable(f"the result for {HEADER} {request.key!r} was pruned as it was stored; "
                                   "try again")
        _check_same_request(stored, request)
        return stored

    async def _score_and_store(self, images: np.ndarray, override: ThresholdOverride, source: str | None,
                               refs: list[str | None], keys: list[str] | None = None, digest: str | None = None,
                               ) -> tuple[list[StoredResult], frozenset[str]]:
        """The results, and the ids of those not stored because their idempotency key already was."""
        # fail fast (503, 422) before spending a model call
        override.resolve(self._registry.current.calibration_for(source))
        detector, predictions = await self.batcher.submit(images)
        calibration = detector.calibration_for(source)
        threshold, threshold_source, target_fpr = override.resolve(calibration)
        n = len(images)
        created_at = stored_time(dt.datetime.now(dt.UTC))
        # Whole-batch conversions (tolist, astype) rather than per-image ones: this runs per request.
        ids = os.urandom(16 * n).hex()
        scores = predictions.score.tolist()
        p_values = calibration.p_values(predictions.score).tolist()
        method_scores = {name: values.tolist() for name, values in predictions.scores.items()}
        reconstruction, difference = predictions.reconstruction, predictions.difference  # the storage types
        results = [
            StoredResult(
                id=ids[32 * i:32 * (i + 1)], created_at=created_at, model_name=detector.name,
                model_version=detector.version, score_method=detector.score_method,
                score=scores[i], threshold=float(threshold), threshold_source=threshold_source,
                target_fpr=target_fpr, p_value=p_values[i], is_anomaly=scores[i] > threshold,
                scores={name: values[i] for name, values in method_scores.items()},
                image=images[i], reconstruction=reconstruction[i], difference=difference[i],
                heatmap_scale=detector.heatmap_scale, source=source, ref=refs[i],
                idempotency_key=keys[i] if keys else None, request_digest=digest)
            for i in range(n)
        ]
        skipped = await self._store.save(results)
        self._record([r for r in results if r.id not in skipped])
        return results, skipped

    def _record(self, results: list[StoredResult]) -> None:
        self._metrics.scored.inc(len(results))
        anomalies = sum(r.is_anomaly for r in results)
        if anomalies:
            self._metrics.anomalies.inc(anomalies)
        for result in results:
            self._metrics.p_value.observe(result.p_value)


def _check_same_request(stored: StoredResult, request: IdempotentRequest) -> None:
    if stored.request_digest != request.digest:
        raise InvalidInput(f"{HEADER} {request.key!r} was already used, at {stored.created_at}, for a request "
                           "with another image or other parameters. Use a new key for each new request")
