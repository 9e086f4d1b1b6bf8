"""Pure ASGI middleware (no per-request task overhead): body-size limit and request metrics."""

from __future__ import annotations

import time

from app.errors import PayloadTooLarge, client_address, problem
from app.metrics import ServiceMetrics
from app.refusals import RefusalLog


class BodySizeLimit:
    """Refuses bodies over `max_bytes`: at once from Content-Length, else while streaming."""

    def __init__(self, app, max_bytes: int, refusals: RefusalLog):
        self.app = app
        self.max_bytes = max_bytes
        self.refusals = refusals

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            detail = f"request body is {int(declared)} bytes; the limit is {self.max_bytes} (VAE_MAX_UPLOAD_BYTES)"
            self.refusals.record(scope["method"], scope["path"], client_address(scope), 413, PayloadTooLarge.title,
                                 detail)
            response = problem(413, PayloadTooLarge.title, detail, scope["path"])
            return await response(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the handler's body read, so the app's error handler answers 413.
                    raise PayloadTooLarge(f"request body exceeds the limit of {self.max_bytes} bytes "
                                          "(VAE_MAX_UPLOAD_BYTES)")
            return message

        await self.app(scope, limited_receive, send)


class RequestMetrics:
    def __init__(self, app, metrics: ServiceMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_and_record(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            self.metrics.request_latency.labels(
                scope["method"], getattr(route, "path", "unmatched"), str(status)
            ).observe(time.perf_counter() - started)
