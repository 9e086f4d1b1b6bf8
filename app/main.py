"""The FastAPI application: `create_app()` wires settings, model registry, batcher and result store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from app import idempotency
from app.api.deps import require_api_key, require_api_key_or_report_link
from app.api.routes import images, operations, pages, reports, results, reviews, score
from app.auth import ApiKeys, Permission
from app.config import Settings, unknown_variables
from app.decode_pool import DecodePool
from app.detector import Detector
from app.errors import install_error_handlers
from app.key_file import KeyFileWatcher
from app.metrics import ServiceMetrics
from app.middleware import REQUEST_ID_HEADER, HeadAsGet, RequestBodyGuard, RequestIds, RequestMetrics
from app.refusals import RefusalLog
from app.registry import ModelRegistry
from app.results import ResultStore
from app.schemas import problem_responses
from app.scoring import Scorer
from app.workers import stop_with_supervisor

log = logging.getLogger(__name__)
DESCRIPTION = """Scores images for anomalies with a variational autoencoder trained on normal images only.

`POST /score` returns a score, the threshold, a verdict and a conformal p-value; every result is stored
and its reconstruction and difference heatmap are served as PNGs. Errors are RFC 9457 problem details.
If the service has API keys (`VAE_API_KEYS`), send one as `Authorization: Bearer <key>` ("Authorize" below).
A key's role decides what it may do: `score` (and read), `review` (and read), `read`, or `all`.
A version's evaluation report opens in a browser through its `browser_link`, which carries its own access.
"""


def create_app(settings: Settings | None = None,
               detector_loader: Callable[..., Detector] = Detector.load) -> FastAPI:
    settings = settings or Settings()
    metrics = ServiceMetrics()
    # Before the keys are read, so that an edit in between is seen as a change.
    key_file = (KeyFileWatcher(settings, lambda keys: setattr(app.state, "api_keys", keys))
                if settings.api_keys_file and settings.poll_interval_s > 0 else None)
    api_keys = ApiKeys(settings.api_key_values())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        store = ResultStore(settings.results_db, settings.results_max_rows, settings.results_max_age)
        await asyncio.to_thread(store.open)
        registry = ModelRegistry(settings, loader=detector_loader,
                                 on_swap=lambda detector: metrics.record_swap(detector.name, detector.version))
        scorer = Scorer(registry, store, metrics, settings.batching_max_size,
                        settings.batching_max_wait_ms / 1000)
        app.state.store, app.state.registry, app.state.scorer = store, registry, scorer
        app.state.decode_pool = decode_pool = DecodePool(settings.decode_threads)
        scorer.batcher.start()
        if unknown := unknown_variables(os.environ):
            log.warning("ignored, as no setting has their name: %s; the settings are in the README, "
                        "\"Configuration\"", ", ".join(unknown))
        if not api_keys.required:
            log.info("no API keys configured (VAE_API_KEYS): every endpoint is open to anyone who can reach it")
        if settings.workers > 1:
            stop_with_supervisor()
            # Workers share one listening socket, and uvicorn lets a worker accept connections only once its
            # startup is over. So a worker that loads first leaves requests to the workers that are ready
            # (the others, when it was restarted after a crash) instead of answering them 503.
            await registry.try_refresh()
        # One worker loads in the background: /healthz answers at once, /readyz says 503 until the model is in.
        tasks = [asyncio.create_task(registry.poll_forever(), name="model-poller")]
        if key_file:
            tasks.append(asyncio.create_task(key_file.watch_forever(settings.poll_interval_s), name="key-file"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await scorer.batcher.stop()
            decode_pool.close()
            await asyncio.to_thread(store.close)

    # /docs and /redoc from assets served by the service itself: FastAPI's default pages load them from a
    # CDN, so on an inspection line without internet access they would stay blank.
    app = FastAPIOffline(title="VAE anomaly detection", version="0.1.0", description=DESCRIPTION,
                         lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.api_keys = api_keys
    refusals = RefusalLog(logging.getLogger("app.refused"))
    install_error_handlers(app, refusals)

    def guarded(permission: Permission) -> dict:
        # Guarded only when keys are set, so the OpenAPI docs show a lock exactly where one is needed.
        return ({"dependencies": [Depends(require_api_key(permission))], "responses": problem_responses(401, 403)}
                if api_keys.required else {})

    app.include_router(operations.probes)
    app.include_router(pages.router)  # the page is open; the API calls it makes need the key
    app.include_router(score.router, **guarded(Permission.SCORE))
    app.include_router(reviews.router, **guarded(Permission.REVIEW))
    for router in (results.router, reviews.history, images.router, operations.router, reports.router):
        app.include_router(router, **guarded(Permission.READ))
    app.include_router(reports.files, **({"dependencies": [Depends(require_api_key_or_report_link())],
                                          "responses": problem_responses(401, 403)} if api_keys.required else {}))
    app.add_middleware(RequestBodyGuard, max_bytes=settings.max_upload_bytes, refusals=refusals)
    app.add_middleware(RequestIds)  # outside the body guard, so that its 413 and 415 have an id too
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(HeadAsGet, router=app.router)  # outside the rest, which see the GET it is answered as
    if settings.cors_origins:
        # Outermost, so that a browser can also read the 413 and 401 problems, and a preflight needs no key.
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", idempotency.HEADER, REQUEST_ID_HEADER,
                                          "If-Match", "If-None-Match"],
                           expose_headers=[idempotency.REPLAYED_HEADER, REQUEST_ID_HEADER, "ETag"], max_age=600)
    return app

