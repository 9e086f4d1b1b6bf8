"""Health, readiness, model metadata, Prometheus metrics, and the root, which leads to the API docs.

The probes and the root stay open when API keys are set (`probes`): orchestrators and load balancers
call them without credentials. Model metadata and metrics describe the deployment, so they are guarded.
"""

from __future__ import annotations

import asyncio
import math

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST

from app.api.deps import (
    MetricsDep,
    RegistryDep,
    SettingsDep,
    StoreDep,
    UrlRootDep,
    reject_unknown_or_repeated_query_parameters,
)
from app.api.routes.reports import report_url
from app.errors import StoreUnavailable
from app.schemas import Health, ModelRef, Readiness, VersionList, problem_responses
from training.catalog import read_catalog, report_files

probes = APIRouter(tags=["operations"])
router = APIRouter(tags=["operations"], dependencies=[Depends(reject_unknown_or_repeated_query_parameters)])


@probes.get("/", include_in_schema=False)
async def root(request: Request) -> RedirectResponse:
    """A person who opens the service's address in a browser lands on the API docs, not on a 404."""
    return RedirectResponse(f"{request.scope.get('root_path', '')}/docs")


@probes.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health()


@probes.get("/readyz", response_model=Readiness, responses=problem_responses(503),
            summary="A model is loaded and passed its self-check")
async def readyz(registry: RegistryDep) -> Readiness:
    detector = registry.current  # raises NotReady (503) with the reason
    return Readiness(model=ModelRef(name=detector.name, version=detector.version))


@router.get("/model", responses=problem_responses(503),
            summary="Metadata of the served model version (without the calibration scores)")
async def model(registry: RegistryDep, settings: SettingsDep, root: UrlRootDep) -> dict:
    detector = registry.current
    files = await asyncio.to_thread(report_files, settings.model_dir / str(detector.version))
    return {**detector.public_metadata(), "report_url": report_url(root, detector.version) if files else None}


@router.get("/model/versions", response_model=VersionList, summary="The published versions of the model",
            description="Newest first: how each was made, its threshold and test AUROC, and which one this "
                        "service serves. Publish, roll back and prune with `python -m training` "
                        "(`recalibrate`, `rollback`, `prune`).")
async def model_versions(registry: RegistryDep, settings: SettingsDep, root: UrlRootDep) -> VersionList:
    catalog = await asyncio.to_thread(read_catalog, settings.model_dir)
    listing = catalog.as_json()
    versions = [{**entry, "report_url": report_url(root, entry["version"]) if entry["report_files"] else None}
                for entry in listing["versions"]]
    return VersionList(model_name=settings.model_name, served=registry.current.version if registry.ready else None,
                       pinned=settings.model_version, newest=listing["newest"], versions=versions,
                       not_served=listing["not_served"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(service_metrics: MetricsDep, store: StoreDep) -> Response:
    try:
        backlog = await asyncio.to_thread(store.unreviewed_flags)
    except StoreUnavailable:  # logged by the store; every other metric must still reach Prometheus
        backlog = math.nan
    service_metrics.unreviewed_flags.set(backlog)
    service_metrics.store_writable.set(store.storing)
    return Response(await asyncio.to_thread(service_metrics.exposition), media_type=CONTENT_TYPE_LATEST)
