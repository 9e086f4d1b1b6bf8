"""Acceptance: `vae-serve` (what `make serve` runs) serves the committed default model over real HTTP."""

import io
import os
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO_ROOT
from training.store import list_versions

pytestmark = pytest.mark.mnist
LATEST_COMMITTED_VERSION = max(list_versions(REPO_ROOT / "model_store" / "mnist-vae"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    env = {**os.environ, "VAE_RESULTS_DB": str(tmp_path_factory.mktemp("db") / "results.db")}
    process = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port)], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:
        while time.monotonic() - started < 60:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read().decode()
            time.sleep(0.1)
        else:
            raise AssertionError("service not ready within 60 s")
        yield base, time.monotonic() - started
    finally:
        process.terminate()
        process.wait(timeout=30)


def _mnist_png(mnist_path, digit: int) -> bytes:
    with np.load(mnist_path) as data:
        image = data["x_test"][data["y_test"] == digit][0]
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_real_digits_get_the_right_verdicts(server, mnist_path):
    base, _ = server
    verdicts = {}
    for digit in (1, 9):
        response = httpx.post(f"{base}/score", files={"file": (f"{digit}.png", _mnist_png(mnist_path, digit))})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model"] == {"name": "mnist-vae", "version": LATEST_COMMITTED_VERSION}
        verdicts[digit] = body["is_anomaly"]
        for url in (body["reconstruction_url"], body["difference_url"] + "?scale=4"):
            png = httpx.get(base + url)
            side = 112 if "scale" in url else 28
            assert Image.open(io.BytesIO(png.content)).size == (side, side)
    assert verdicts == {1: False, 9: True}


def _photo_of(image: np.ndarray) -> bytes:
    """A digit written dark on grey paper, off-centre on a 600x800 page, photographed (JPEG, noise)."""
    rows, columns = np.flatnonzero(image.max(axis=1)), np.flatnonzero(image.max(axis=0))
    ink = Image.fromarray(image[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1])
    ink = np.asarray(ink.resize((ink.width * 12, ink.height * 12), Image.BICUBIC), np.float32) / 255
    page = np.full((800, 600), 230.0)
    page[150:150 + ink.shape[0], 100:100 + ink.shape[1]] -= 190 * ink
    page += np.random.default_rng(0).normal(0, 4, page.shape)
    buffer = io.BytesIO()
    Image.fromarray(page.clip(0, 255).astype(np.uint8)).convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_photos_of_real_digits_get_the_right_verdicts(server, mnist_path):
    base, _ = server
    with np.load(mnist_path) as data:
        digits = {digit: data["x_test"][data["y_test"] == digit][0] for digit in (1, 9)}
    verdicts = {}
    for digit, image in digits.items():
        response = httpx.post(f"{base}/score?resize=true&invert=true",
                              files={"file": (f"{digit}.jpg", _photo_of(image), "image/jpeg")})
        assert response.status_code == 200, response.text
        verdicts[digit] = response.json()["is_anomaly"]
    assert verdicts == {1: False, 9: True}
    refused = httpx.post(f"{base}/score?resize=true", files={"file": ("1.jpg", _photo_of(digits[1]), "image/jpeg")})
    assert refused.status_code == 422 and "?invert=true" in refused.json()["detail"]


def test_ready_quickly(server):
    _, seconds_to_ready = server
    print(f"ready after {seconds_to_ready:.1f} s")
    assert seconds_to_ready < 30  # generous for CI; the 6 s target is measured by bench/serve.py
