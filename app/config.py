"""All service settings, read from `VAE_*` environment variables (see README, "Configuration")."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VAE_", protected_namespaces=())

    model_store: Path = Field(Path("model_store"), description="root of the model store")
    model_name: str = Field("mnist-vae", description="model folder inside the store")
    model_version: int | None = Field(None, ge=1, description="pin a version; default: the latest")
    poll_interval_s: float = Field(10.0, ge=0, description="how often to look for new versions; 0 = never")
    results_db: Path = Field(Path("data/results.db"), description="SQLite inspection log")
    results_max_rows: int = Field(100_000, ge=1, description="retention: the oldest rows beyond are pruned")
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

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case(cls, value):
        return value.lower() if isinstance(value, str) else value

    @property
    def model_dir(self) -> Path:
        return self.model_store / self.model_name
