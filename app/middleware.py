"""Pure ASGI middleware (no per-request task overhead): HEAD as GET, request ids, a guard of the body (size,
encoding), metrics."""

from __future__ import annotations

import os
import re
import time

from starlette.routing import Match, Router

from app.errors import (HEAD_AS_GET, PayloadTooLarge, UnsupportedMediaType, client_address, problem, request_id,
                        sent_method)
from app.metrics import ServiceMetrics
from app.refusals import RefusalLog

REQUEST_ID_HEADER = "X-Request-ID"
# A proxy's or client's own id is kept if it is short printable text without spaces: it goes into log lines.
_ACCEPTED_REQUEST_ID = re.compile(rb"[!-~]{1,128}")


class HeadAsGet:
    """Answers HEAD on every path that takes GET with the GET's status and headers, without its body (RFC 9110,
    9.3.2: every general-purpose server supports HEAD). FastAPI, unlike Starlette, adds HEAD to no route, and
    uptime monitors, link checkers and `curl -I` ask with it. Elsewhere HEAD stays a 405."""

    def __init__(self, app, router: Router):
        self.app = app
        self.router = router

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)
        # A copy: the server reads the original's method to send no body. The mark lets a refusal be logged as
        # the HEAD it was.
        as_get = {**scope, "method": "GET", HEAD_AS_GET: True}
        if not any(route.matches(as_get)[0] is Match.FULL for route in self.router.routes):
            return await self.app(scope, receive, send)

        async def send_without_body(message):
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(as_get, receive, send_without_body)


class RequestIds:
    """Gives every request an id, the client's `X-Request-ID` or a new one, and returns it in the response's
    `X-Request-ID`: a client that reports a failed request can quote it, and the refusal log has it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        identifier = next((value for name, value in scope["headers"] if name == b"x-request-id"), None)
        # An id the service cannot log safely is replaced rather than refused: proxies add their own.
        if identifier is None or not _ACCEPTED_REQUEST_ID.fullmatch(identifier):
            identifier = os.urandom(12).hex().encode()
        scope["request_id"] = identifier.decode()

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", identifier)]
            await send(message)

        await self.app(scope, receive, send_with_id)


class RequestBodyGuard:
    """Refuses bodies over `max_bytes`: at once from Content-Length, else while streaming. Refuses compressed
    bodies too, which would otherwise be read as if they were not (a gzipped PNG as an undecodable image)."""

    def __init__(self, app, max_bytes: int, refusals: RefusalLog):
        self.app = app
        self.max_bytes = max_bytes
        self.refusals = refusals

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            detail = f"request body is {int(declared)} bytes; the limit is {self.max_bytes} (VAE_MAX_UPLOAD_BYTES)"
            return await self._refuse(scope, receive, send, 413, PayloadTooLarge.title, detail)
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"identity", b"") and scope["method"] in ("POST", "PUT"):  # the methods with bodies
            # RFC 7694: 415, naming the encodings the server takes. Inflating bodies here would need a guard
            # against compression bombs, for images that PNG, JPEG and WebP already compress.
            detail = (f"Content-Encoding {encoding.decode('latin-1')[:40]!r} is not accepted; send the body "
                      "uncompressed (images are compressed already)")
            return await self._refuse(scope, receive, send, 415, UnsupportedMediaType.title, detail,
                                      {"Accept-Encoding": "identity"})
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

    async def _refuse(self, scope, receive, send, status: int, title: str, detail: str, headers=None):
        self.refusals.record(sent_method(scope), scope["path"], client_address(scope), status, title, detail,
                             request_id(scope))
        response = problem(status, title, detail, scope["path"], request_id(scope))
        response.headers.update(headers or {})
        await response(scope, receive, send)


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
                sent_method(scope), getattr(route, "path", "unmatched"), str(status)
            ).observe(time.perf_counter() - started)
