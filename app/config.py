"""All service settings, read from `VAE_*` environment variables (see README, "Configuration")."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.auth import ApiKey, check_distinct, keys_from_file, keys_from_list
from training.store import MODEL_NAME_RULE, is_model_name

# Segments of letters, digits and ._~-, each after a slash, and no slash at the end: /inspection, /a/b.
ROOT_PATH_PATTERN = r"^(/[A-Za-z0-9._~-]+)*$"


class Settings(BaseSettings):
    # hide_input_in_errors: a rejected API key must not be echoed into logs and tracebacks.
    model_config = SettingsConfigDict(env_prefix="VAE_", protected_namespaces=(), hide_input_in_errors=True)

    model_store: Path = Field(Path("model_store"), description="root of the model store")
    model_name: str = Field("mnist-vae", description="model folder inside the store")
    model_version: int | None = Field(None, ge=1, description="pin a version; default: the latest")
    poll_interval_s: float = Field(10.0, ge=0, description="how often to look for new versions, and for a "
                                                           "change of the API key file; 0 = never")
    results_db: Path = Field(Path("data/results.db"), description="SQLite inspection log")
    results_max_rows: int = Field(100_000, ge=1, description="retention: the oldest rows beyond are pruned")
    results_max_age_days: float | None = Field(None, gt=0, le=36_500, description="retention: results older "
                                               "than this are pruned too (within a minute); default: no limit")
    max_upload_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="largest request body accepted")
    max_batch: int = Field(256, ge=1, description="most images in one /score/batch request")
    max_image_pixels: int = Field(40_000_000, ge=784, description="decoded-size guard (decompression bombs)")
    batching_max_size: int = Field(128, ge=1, description="dynamic batching: most images per model call")
    batching_max_wait_ms: float = Field(0.0, ge=0, description="dynamic batching: wait for more requests")
    decode_threads: int = Field(1, ge=1, description="threads that decode large uploads and batches")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["text", "json"] = Field("text", description="log lines as text, or as one JSON object each "
                                                                   "(for Loki, Elasticsearch and the like)")
    root_path: str = Field("", description="the path prefix under which a reverse proxy serves the API, e.g. "
                                       "/inspection (the proxy strips it); the URLs in responses carry it")
    api_keys: SecretStr | None = Field(None, description="comma-separated API keys, each optionally after a name "
                                                         "and a space ('anna <key>'), then a role ('anna <key> "
                                                         "review'); when set (or api_keys_file is), every "
                                                         "endpoint but the health probes and the docs needs "
                                                         "`Authorization: Bearer <key>`")
    api_keys_file: Path | None = Field(None, description="file with one API key per line, optionally after a name "
                                                         "and before a role, as in api_keys (e.g. a Docker or "
                                                         "Kubernetes secret)")
    # NoDecode: a comma-separated list, not the JSON pydantic-settings expects for lists by default.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        [], description="comma-separated origins whose web pages may call the API (e.g. "
                        "https://dashboard.example.com), or *; default: none")

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_case(cls, value):
        return value.lower() if isinstance(value, str) else value

    @field_validator("port", mode="before")
    @classmethod
    def _not_a_service_link(cls, value):
        # Kubernetes sets <SERVICE>_PORT=tcp://<address>:<port> in every pod of the namespace, so a Service
        # named "vae" sets VAE_PORT; pydantic's "not a valid integer" would not say where it came from.
        if isinstance(value, str) and value.startswith("tcp://"):
            raise ValueError("looks like Kubernetes' service link of a Service named 'vae': set "
                             "enableServiceLinks: false in the pod's spec, or name the Service otherwise")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value):
        return [origin.strip() for origin in value.split(",") if origin.strip()] if isinstance(value, str) else value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin != "*" and not _is_origin(origin):
                # A browser sends the origin as scheme://host[:port]; anything else would never match.
                raise ValueError(f"{origin!r} is not an origin: write scheme://host[:port] in lower case, "
                                 "without a path or a trailing slash, e.g. https://dashboard.example.com, or *")
        return origins

    @field_validator("model_name")
    @classmethod
    def _check_model_name(cls, value: str) -> str:
        if not is_model_name(value):  # '../x' would serve a folder outside the store, '' the store itself
            raise ValueError(f"a model is named by {MODEL_NAME_RULE}")
        return value

    @field_validator("root_path")
    @classmethod
    def _check_root_path(cls, value: str) -> str:
        if not re.fullmatch(ROOT_PATH_PATTERN, value):
            raise ValueError("must be empty or a path prefix such as /inspection: segments of letters, digits "
                             "and ._~-, each after a slash, and no slash at the end")
        return value

    @field_validator("api_keys", "api_keys_file", "results_max_age_days", "model_version", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        # docker-compose passes an unset variable on as "" (VAE_API_KEYS: ${VAE_API_KEYS:-}).
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_keys")
    @classmethod
    def _check_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_distinct(keys_from_list(value.get_secret_value().split(","), "the list"))
        return value

    @field_validator("api_keys_file")
    @classmethod
    def _check_key_file(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is not None:
            listed = info.data.get("api_keys")  # validated first: declared first
            check_distinct((keys_from_list(listed.get_secret_value().split(","), "the list") if listed else [])
                           + keys_from_file(path))
        return path

    def api_key_values(self) -> list[ApiKey]:
        """Every configured API key, with its name; empty when the API is open."""
        keys = keys_from_list(self.api_keys.get_secret_value().split(","), "the list") if self.api_keys else []
        return check_distinct(keys + (keys_from_file(self.api_keys_file) if self.api_keys_file else []))

    @property
    def results_max_age(self) -> dt.timedelta | None:
        return None if self.results_max_age_days is None else dt.timedelta(days=self.results_max_age_days)

    @property
    def model_dir(self) -> Path:
        return self.model_store / self.model_name


def _is_origin(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return False
    return (parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.path and not parts.query
            and not parts.fragment and not parts.username and text == f"{parts.scheme}://{parts.netloc}")


# VAE_* variables read by docker-compose.yml and the tests, not by the service: not typos.
NOT_SETTINGS = ("VAE_IMAGE", "VAE_JOBS_IMAGE", "VAE_PUBLISH_ADDRESS", "VAE_PUBLISH_PORT", "VAE_TEST_")


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """The VAE_* variables that no setting reads, each with the setting it likely meant. A typo leaves the
    default in force without a word: VAE_API_KEY for VAE_API_KEYS leaves every endpoint open."""
    settings = {f"VAE_{name.upper()}" for name in Settings.model_fields}
    unknown = []
    for name in sorted(environ):
        upper = name.upper()  # as pydantic-settings reads them: vae_port is VAE_PORT
        if not upper.startswith("VAE_") or upper in settings or upper.startswith(NOT_SETTINGS):
            continue
        meant = difflib.get_close_matches(upper, settings, n=1, cutoff=0.75)
        unknown.append(f"{name} (did you mean {meant[0]}?)" if meant else name)
    return unknown
