"""Domain errors, and the one place that turns every error into RFC 9457 problem details."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from app.refusals import RefusalLog

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


def quoted(texts: Iterable[str], most: int = 5) -> str:
    """Names or values a client sent, quoted for an error message: not 1,000 of them, nor one of 10,000
    characters."""
    texts = list(texts)
    shown = ", ".join(repr(text if len(text) <= 40 else text[:40] + "...") for text in texts[:most])
    return shown + (f" and {len(texts) - most} more" if len(texts) > most else "")


class ServiceError(Exception):
    """An error with a client-facing meaning; `status` maps it to HTTP."""
    status = 500
    title = "Internal error"

    headers: Mapping[str, str] = {}  # sent with the problem response: the class's own, or one error's

    def __init__(self, detail: str, headers: Mapping[str, str] | None = None, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        if headers is not None:
            self.headers = headers


class UndecodableImage(ServiceError):
    status, title = 400, "Undecodable image"


class BadRequest(ServiceError):
    status, title = 400, "Bad request"


class Unauthorized(ServiceError):
    status, title = 401, "Unauthorized"
    headers: Mapping[str, str] = {"WWW-Authenticate": 'Bearer realm="vae-anomaly"'}


class Forbidden(ServiceError):
    status, title = 403, "Forbidden"


class NotFound(ServiceError):
    status, title = 404, "Not found"


class PayloadTooLarge(ServiceError):
    status, title = 413, "Payload too large"


class PreconditionFailed(ServiceError):
    """A conditional write (If-Match) whose condition no longer holds: someone changed the resource first."""
    status, title = 412, "Precondition failed"


class ReviewChanged(PreconditionFailed):
    """A review sent with If-Match after the result's review changed: it says the result's tag now."""

    def __init__(self, result_id: str, current_tag: str):
        super().__init__(f"the result {result_id} has been reviewed or its review withdrawn since you read it: its "
                         f'ETag is now "{current_tag}", not the one in If-Match, so nothing was written. Read it '
                         f"again (GET /results/{result_id}) and decide on what it shows now",
                         headers={"ETag": f'"{current_tag}"'})


class UnsupportedMediaType(ServiceError):
    status, title = 415, "Unsupported media type"


class InvalidInput(ServiceError):
    status, title = 422, "Invalid input"


class Unavailable(ServiceError):
    """A 503: the request was not served, and may be sent again. Retry-After (RFC 9110, 10.2.3) says when, as
    retrying HTTP clients (urllib3's Retry, for one) read it: a model loads in a few seconds, and a store may
    recover as soon."""
    status = 503
    headers: Mapping[str, str] = {"Retry-After": "5"}


class NotReady(Unavailable):
    title = "Not ready"


class StoreUnavailable(Unavailable):
    """The inspection log cannot be written or read (disk full, I/O error, damaged file)."""
    title = "Results store unavailable"


class ModelLoadError(Exception):
    """A model version could not be loaded or failed its self-check (never reaches a client)."""


def problem(status: int, title: str, detail: str, instance: str | None = None, request_id: str | None = None,
            **extra) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    if instance:
        body["instance"] = instance
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


HEAD_AS_GET = "vae.head_as_get"  # marks the scope of a HEAD request that middleware.HeadAsGet answers as a GET


def sent_method(scope) -> str:
    """The method the client sent, for logs and metrics: HEAD for a HEAD answered as a GET."""
    return "HEAD" if scope.get(HEAD_AS_GET) else scope["method"]


def request_id(scope) -> str | None:
    """The id `app.middleware.RequestIds` gave the request (None outside it, as in some unit tests)."""
    return scope.get("request_id")


def _describe_validation_error(error: dict) -> str:
    # The full location, "query.limit" or "body.verdict": a field's name alone could be either.
    where = ".".join(str(part) for part in error.get("loc", ()))
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


def client_address(scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"


def _routing_detail(request: Request, status: int, allowed: str | None) -> str | None:
    path = request.url.path
    shown = repr(path if len(path) <= 100 else path[:100] + "...")
    if status == 404:
        return f"there is no endpoint {shown}; the endpoints are listed at {request.scope.get('root_path', '')}/docs"
    if status == 405 and allowed:
        return f"{request.method} is not allowed on {shown}; it takes {allowed}"
    return None


def _allowed_methods(request: Request) -> list[str]:
    # Asked of the routes themselves, method by method: that holds however FastAPI nests included routers.
    routes = request.app.router.routes
    allowed = [method for method in ("GET", "POST", "PUT", "DELETE", "PATCH")
               if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)]
    return [*allowed[:1], "HEAD", *allowed[1:]] if "GET" in allowed else allowed  # HeadAsGet answers HEAD


def install_error_handlers(app: FastAPI, refusals: RefusalLog) -> None:
    def answer(request: Request, status: int, title: str, detail: str, headers=None, **extra) -> JSONResponse:
        identifier = request_id(request.scope)
        if 400 <= status < 500:
            refusals.record(sent_method(request.scope), request.url.path, client_address(request.scope), status,
                            title, detail, identifier)
        response = problem(status, title, detail, request.url.path, identifier, **extra)
        response.headers.update(headers or {})
        return response

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError):
        return answer(request, error.status, error.title, error.detail, error.headers, **error.extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in error.errors()]
        detail = "; ".join(_describe_validation_error(e) for e in error.errors())
        return answer(request, 422, "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        title = HTTPStatus(error.status_code).phrase
        detail = error.detail if isinstance(error.detail, str) else title
        headers = dict(error.headers or {})
        if error.status_code == 405:
            # Starlette names the methods of the first route on the path only: /healthz has one for GET and
            # one for HEAD, and a client should hear of both.
            headers["Allow"] = ", ".join(_allowed_methods(request)) or headers.get("Allow", "")
        if detail == title:  # Starlette's routing says no more than the status: say what was wrong
            detail = _routing_detail(request, error.status_code, headers.get("Allow")) or detail
        return answer(request, error.status_code, title, detail, headers)

    @app.exception_handler(ClientDisconnect)
    async def client_disconnected(request: Request, error: ClientDisconnect):
        # The client hung up mid-upload; nobody will read this answer, and it is not a server fault.
        log.debug("client disconnected during %s %s", request.method, request.url.path)
        return problem(400, "Client disconnected", "the request body ended early", request.url.path,
                       request_id(request.scope))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception):
        identifier = request_id(request.scope)
        log.exception("unhandled error on %s %s (request %s)", request.method, request.url.path, identifier,
                      extra={"request_id": identifier, "status": 500})
        return problem(500, "Internal error", f"an unexpected error occurred; it has been logged with the request "
                       f"id {identifier}", request.url.path, identifier)
