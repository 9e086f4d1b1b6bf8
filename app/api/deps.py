"""Typed dependencies: handlers declare what they need; the app's lifespan provides it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from app.config import Settings
from app.errors import InvalidInput
from app.metrics import ServiceMetrics
from app.registry import ModelRegistry
from app.results import ResultStore
from app.scoring import Scorer, ThresholdOverride


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


def _store(request: Request) -> ResultStore:
    return request.app.state.store


def _scorer(request: Request) -> Scorer:
    return request.app.state.scorer


def _metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


def _threshold_override(
    threshold: Annotated[float | None, Query(allow_inf_nan=False,
                                             description="use this threshold instead of the model's")] = None,
    fpr: Annotated[float | None, Query(gt=0, lt=1, description="use the threshold calibrated for this "
                                                              "false-positive rate instead")] = None,
) -> ThresholdOverride:
    return ThresholdOverride(threshold=threshold, fpr=fpr)


def _result_id(result_id: str) -> str:
    if not (len(result_id) == 32 and all(c in "0123456789abcdef" for c in result_id)):
        raise InvalidInput(f"{result_id!r} is not a result id (32 lowercase hex characters)")
    return result_id


SettingsDep = Annotated[Settings, Depends(_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(_registry)]
StoreDep = Annotated[ResultStore, Depends(_store)]
ScorerDep = Annotated[Scorer, Depends(_scorer)]
MetricsDep = Annotated[ServiceMetrics, Depends(_metrics)]
ThresholdDep = Annotated[ThresholdOverride, Depends(_threshold_override)]
ResultIdDep = Annotated[str, Depends(_result_id)]
ResizeDep = Annotated[bool, Query(description="resize any image size to 28x28 (aspect kept, padded)")]
