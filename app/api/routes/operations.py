"""Health, readiness, model metadata and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import MetricsDep, RegistryDep
from app.schemas import PROBLEM_RESPONSES, Health, ModelRef, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health()


@router.get("/readyz", response_model=Readiness, responses={503: PROBLEM_RESPONSES[503]},
            summary="A model is loaded and passed its self-check")
async def readyz(registry: RegistryDep) -> Readiness:
    detector = registry.current  # raises NotReady (503) with the reason
    return Readiness(model=ModelRef(name=detector.name, version=detector.version))


@router.get("/model", responses={503: PROBLEM_RESPONSES[503]},
            summary="Metadata of the served model version (without the calibration array)")
async def model(registry: RegistryDep) -> dict:
    return registry.current.public_metadata()


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(service_metrics: MetricsDep) -> Response:
    return Response(generate_latest(service_metrics.registry), media_type=CONTENT_TYPE_LATEST)
