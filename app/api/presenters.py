"""Stored results -> response bodies."""

from __future__ import annotations

from app.results import StoredResult
from app.schemas import ModelRef, ScoreResult


def score_result(result: StoredResult) -> ScoreResult:
    return ScoreResult(
        id=result.id, created_at=result.created_at, score=result.score, threshold=result.threshold,
        threshold_source=result.threshold_source, target_fpr=result.target_fpr, p_value=result.p_value,
        is_anomaly=result.is_anomaly, score_method=result.score_method, scores=result.scores,
        model=ModelRef(name=result.model_name, version=result.model_version),
        result_url=f"/results/{result.id}", reconstruction_url=f"/reconstruction/{result.id}",
        difference_url=f"/difference/{result.id}")
