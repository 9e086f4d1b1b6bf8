"""API tests run the real app (lifespan, batcher, SQLite) on the tiny real model, in a private store."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.main import create_app
from tests.synthetic import make_images
from training.store import METADATA_PATH


def wait_until_ready(client: TestClient, version: int | None = None, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/readyz")
        if response.status_code == 200 and (version is None or response.json()["model"]["version"] == version):
            return response.json()
        time.sleep(0.05)
    raise AssertionError(f"not ready (version {version}) within {timeout} s: {response.text}")


def publish_copy(store, version: int, tamper=None) -> None:
    """Publishes version 1 of the tiny model again as `version`, as the training job would (`tamper` edits it)."""
    source, target = store / "tiny" / "1", store / "tiny" / f".tmp-{version}"
    shutil.copytree(source, target)
    metadata = json.loads((target / METADATA_PATH).read_text())
    metadata["version"] = version
    if tamper:
        tamper(target, metadata)
    (target / METADATA_PATH).write_text(json.dumps(metadata))
    target.rename(store / "tiny" / str(version))


@pytest.fixture
def store(tmp_path, tiny_model):
    """A model store holding a copy of the tiny model as version 1."""
    root = tmp_path / "store"
    shutil.copytree(tiny_model.path, root / "tiny" / "1")
    return root


@pytest.fixture
def make_settings(store, tmp_path):
    def make(**overrides) -> Settings:
        values = dict(model_store=store, model_name="tiny", results_db=tmp_path / "results.db",
                      poll_interval_s=0.05)
        return Settings(**{**values, **overrides})
    return make


@pytest.fixture
def start_client(make_settings):
    clients = []

    def start(ready: bool = True, **overrides) -> TestClient:
        client = TestClient(create_app(make_settings(**overrides)), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        if ready:
            wait_until_ready(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(start_client) -> TestClient:
    return start_client()


def png_bytes(pixels: np.ndarray, mode: str = "L", fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def normal_pixels() -> np.ndarray:
    return make_images(np.array([1]), seed=99)[0]


@pytest.fixture(scope="session")
def anomalous_pixels() -> np.ndarray:
    return make_images(np.array([0]), seed=99)[0]


def record_threads(monkeypatch, module, name: str) -> list[str]:
    """Wrap `module.name` so that each call notes the name of the thread it ran on."""
    original, threads = getattr(module, name), []

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return threads


def limit_database_pages(monkeypatch, pages: int) -> None:
    """The store's connections see a database that cannot grow past `pages` pages: a full disk, for SQLite."""
    from app import results_schema

    real_connect = results_schema.connect

    def limited(path):
        connection = real_connect(path)
        connection.execute(f"PRAGMA max_page_count = {pages}")
        return connection

    monkeypatch.setattr(results_schema, "connect", limited)
