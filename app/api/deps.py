"""Typed dependencies: handlers declare what they need; the app's lifespan provides it.

All are `async def`: FastAPI runs plain `def` dependencies in a thread pool, a needless thread hop
per dependency per request.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from app import idempotency
from app.auth import ApiKeys, Permission, roles_allowing
from app.config import Settings
from app.decode_pool import DecodePool
from app.errors import Forbidden, InvalidInput, Unauthorized, quoted
from app.metrics import ServiceMetrics
from app.registry import ModelRegistry
from app.report_links import check_access
from app.results import ResultStore
from app.schemas import Ref, SourceName
from app.scoring import Scorer, ThresholdOverride


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


async def _store(request: Request) -> ResultStore:
    return request.app.state.store


async def _scorer(request: Request) -> Scorer:
    return request.app.state.scorer


async def _decode_pool(request: Request) -> DecodePool:
    return request.app.state.decode_pool


async def _metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


def url_root(request: Request) -> str:
    """The path prefix a reverse proxy serves the API under (VAE_ROOT_PATH, uvicorn's root_path): links in
    responses start with it, so that a client following them reaches the service through the proxy."""
    return request.scope.get("root_path", "").rstrip("/")


async def _url_root(request: Request) -> str:  # async: FastAPI runs a plain def dependency on a thread
    return url_root(request)


# Declared through FastAPI's security scheme so that the OpenAPI docs offer an "Authorize" button.
_bearer = HTTPBearer(auto_error=False, scheme_name="API key",
                     description="one of the keys in VAE_API_KEYS or VAE_API_KEYS_FILE")


# Where other APIs take a key: a client that sends it there hears that it is not read there, not only that
# it is missing.
_OTHER_KEY_HEADERS = ("x-api-key", "api-key", "x-auth-token", "apikey")
_OTHER_KEY_PARAMETERS = ("api_key", "apikey", "key", "token", "access_token")
_OTHER_SCHEMES = ("basic", "token", "digest", "apikey", "api-key", "key", "jwt", "negotiate", "oauth")


def _elsewhere(request: Request) -> str:
    header = next((name for name in _OTHER_KEY_HEADERS if name in request.headers), None)
    if header is not None:
        return f"; the key is not read from the header {header!r}"
    parameter = next((name for name in _OTHER_KEY_PARAMETERS if name in request.query_params), None)
    if parameter is not None:
        return (f"; the key is not read from the query (?{parameter}=), where proxies and logs would keep it: "
                "change the key, as it has been sent in clear in a URL")
    return ""


def require_api_key(permission: Permission):
    """A guard that refuses a request without a valid key (401), or with a key whose role does not allow
    `permission` (403); the app puts one on each router, only when keys are set."""
    async def guard(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]) -> None:
        api_keys: ApiKeys = request.app.state.api_keys
        if credentials is None:
            if "authorization" in request.headers:
                # Named only if it is a scheme: a bare key sent as the whole header must not be echoed.
                scheme = request.headers["authorization"].split(" ")[0]
                sent = f" (it says {scheme!r})" if scheme.lower() in _OTHER_SCHEMES else ""
                raise Unauthorized(f"the Authorization header must be 'Bearer <API key>'{sent}")
            raise Unauthorized("this endpoint needs an API key: send the header 'Authorization: Bearer <key>'"
                               + _elsewhere(request))
        key = api_keys.identify(credentials.credentials)
        if key is None:
            raise Unauthorized("the API key is not valid")
        if permission not in key.permissions:
            raise Forbidden(f"the API key {key.name!r} has the role {key.role!r}, which does not allow "
                            f"{permission.value}; that needs a key with the role "
                            f"{' or '.join(roles_allowing(permission))}")
        request.state.api_key_name = key.name
        request.state.api_key = key  # for what is made with it: a report link
    return guard


def require_api_key_or_report_link():
    """The guard of a report's files: an API key that may read, as require_api_key, or the `?access=` token of
    a report link to that version (app/report_links.py), which a browser's address bar can carry."""
    by_key = require_api_key(Permission.READ)

    async def guard(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]) -> None:
        access = request.query_params.get("access")
        # The version as the route reads it. Anything but plain digits, which the route refuses with a 422,
        # is left to the key: a link is never checked against another number than the route would serve.
        # A key sent with a link is what counts: a client with a key needs no link, fresh or expired.
        version = request.path_params.get("version", "")
        if access is None or credentials is not None or not (version.isascii() and version.isdigit()):
            return await by_key(request, credentials)
        key = check_access(request.app.state.api_keys, access, request.app.state.settings.model_name, int(version),
                           dt.datetime.now(dt.UTC))
        request.state.api_key_name = key.name
        request.state.report_access = access  # the page passes it on to its plots
    return guard


async def _api_key_name(request: Request) -> str | None:  # async: a plain def would cost a thread hop
    return getattr(request.state, "api_key_name", None)


# The name of the API key the request was sent with (None when the service has no keys): who did it, for
# the audit trail, as far as the service can vouch for it.
ApiKeyNameDep = Annotated[str | None, Depends(_api_key_name)]


class ScoreQuery(BaseModel):
    """Query parameters of the scoring endpoints."""
    # Unknown names are refused in _score_query: a typo such as ?invert=ture is a 422, but ?inverted=true
    # would otherwise be silently ignored and the image scored without the inversion the client asked for.
    model_config = ConfigDict(extra="ignore")

    threshold: float | None = Field(None, allow_inf_nan=False,
                                    description="use this threshold instead of the model's")
    fpr: float | None = Field(None, gt=0, lt=1, allow_inf_nan=False,
                              description="use the threshold calibrated for this false-positive rate instead "
                                          "(a fraction: 0.05 is 5 %)")
    resize: bool = Field(False, description="bring an image of any other size to 28x28, framed as the model's "
                                            "training images were (GET /model: input.framing; MNIST models "
                                            "crop, fit and centre the ink as MNIST did)")
    invert: bool = Field(False, description="the image is dark on light (e.g. a scan): invert it to the "
                                            "model's light-on-dark before scoring")
    source: SourceName | None = Field(None, description="which line, camera or client sent the image (letters, "
                                                        "digits and ._:/@-, at most 64); stored with the result, "
                                                        "and GET /results can filter by it")
    ref: Ref | None = Field(
        None, description="your reference for the image, e.g. the part's serial number; stored with the result, "
                          "and GET /results can filter by it. Default: the uploaded file's name")

    @field_validator("threshold", "fpr", mode="before")
    @classmethod
    def _decimal_point(cls, value: object) -> object:
        # pydantic says only "unable to parse string as a number" to a client whose locale writes 0,05.
        if isinstance(value, str) and "," in value and _is_number(meant := value.replace(",", ".")):
            raise PydanticCustomError("decimal_comma", f"{value!r} has a decimal comma; write {meant}")
        return value

    @field_validator("fpr", mode="before")
    @classmethod
    def _a_fraction(cls, value: object) -> object:
        # ?fpr=5 or ?fpr=5% meant 5 %: "Input should be less than 1" does not say how to write it.
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.endswith("%") and _is_number(text[:-1]) and 0 < float(text[:-1]) < 100:
            raise PydanticCustomError("fpr_fraction", f"the rate is a fraction, not a percentage: for {text} "
                                                      f"write {float(text[:-1]) / 100:g}")
        if _is_number(text) and 1 <= float(text) < 100:
            raise PydanticCustomError("fpr_fraction", "the rate is a fraction between 0 and 1, not a percentage: "
                                                      f"for {float(text):g} % write {float(text) / 100:g}")
        return value

    @property
    def override(self) -> ThresholdOverride:
        return ThresholdOverride(threshold=self.threshold, fpr=self.fpr)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def query_parameters_openapi(model: type[BaseModel]) -> list[dict]:
    """OpenAPI `parameters` generated from a query model, so the docs cannot drift from the parser."""
    schema = model.model_json_schema()
    return [{"name": name, "in": "query", "required": False, "description": spec.get("description", ""),
             "schema": {k: v for k, v in spec.items() if k != "description"}}
            for name, spec in schema["properties"].items()]


async def _score_query(request: Request) -> ScoreQuery:
    # Parsed by one pydantic model rather than FastAPI's per-parameter machinery, which took ~21 % of
    # the event loop's time per /score request (see docs/performance.md).
    _refuse_unknown_or_repeated_query_parameters(request, ScoreQuery.model_fields)
    try:
        query = ScoreQuery.model_validate(dict(request.query_params))
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("query", *e["loc"])} for e in error.errors(include_url=False)]) from None
    query.override  # noqa: B018 - rejects ?threshold= together with ?fpr=
    return query


async def reject_unknown_or_repeated_query_parameters(request: Request) -> None:
    """The same refusal for routes whose query parameters FastAPI parses: a typo such as
    GET /results?anomolous=true would otherwise list every result, normal ones included."""
    declared, pending = [], [request.scope["route"].dependant]
    while pending:
        dependant = pending.pop()
        declared.extend(field.alias for field in dependant.query_params)
        pending.extend(dependant.dependencies)
    _refuse_unknown_or_repeated_query_parameters(request, declared)


def _refuse_unknown_or_repeated_query_parameters(request: Request, accepted: Iterable[str]) -> None:
    accepted = list(accepted)
    unknown = sorted(set(request.query_params) - set(accepted))
    if unknown:
        takes = f"accepts {', '.join(accepted)}" if accepted else "takes no query parameters"
        raise InvalidInput(f"unknown query parameter{'s' if len(unknown) > 1 else ''} {quoted(unknown)}; "
                           f"{request.url.path} {takes}")
    # Every parameter takes one value. Given twice, only the last would count, so ?resize=true&resize=false
    # would silently score without resizing, and ?source=a&source=b list one line as if it were both.
    params = request.query_params
    if len(params.multi_items()) > len(params):  # some name came more than once: say which
        name = next(name for name in params if len(params.getlist(name)) > 1)
        values = params.getlist(name)
        raise InvalidInput(f"query parameter {name!r} is given {len(values)} times ({quoted(values)}); "
                           f"it takes one value, so give it once")


async def _idempotency_key(request: Request) -> str | None:
    value = request.headers.get(idempotency.HEADER)
    return None if value is None else idempotency.parse_key(value)


# The pattern is documented, not enforced by FastAPI: the check below says in plain words what is wrong.
_RESULT_ID_PATH = Path(description="a result's `id`, as /score returned it: 32 lowercase hex characters",
                       json_schema_extra={"pattern": "^[0-9a-f]{32}$"}, examples=["3f6c0d8e9b1a4c2e8f7d6b5a4c3e2f1d"])


def is_result_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


async def _result_id(result_id: Annotated[str, _RESULT_ID_PATH]) -> str:
    if not is_result_id(result_id):
        raise InvalidInput(f"{result_id!r} is not a result id (32 lowercase hex characters)")
    return result_id


SettingsDep = Annotated[Settings, Depends(_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(_registry)]
StoreDep = Annotated[ResultStore, Depends(_store)]
ScorerDep = Annotated[Scorer, Depends(_scorer)]
MetricsDep = Annotated[ServiceMetrics, Depends(_metrics)]
DecodePoolDep = Annotated[DecodePool, Depends(_decode_pool)]
ScoreQueryDep = Annotated[ScoreQuery, Depends(_score_query)]
ResultIdDep = Annotated[str, Depends(_result_id)]
IdempotencyKeyDep = Annotated[str | None, Depends(_idempotency_key)]
UrlRootDep = Annotated[str, Depends(_url_root)]
