"""In a real browser (headless Chromium): the API docs render without internet access, and a web page on an
allowed origin can call the API across origins, which TestClient cannot show, since it enforces no CORS."""

from __future__ import annotations

import functools
import html
import json
import os
import re
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.service import free_port, start_service

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
KEY = "browser-test-key-0123456789"
PAGES = Path(__file__).parent / "browser"

# CI installs Chromium and sets VAE_TEST_REQUIRE_BROWSER, so that there a missing browser fails the tests
# instead of skipping them.
pytestmark = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("VAE_TEST_REQUIRE_BROWSER"),
                                reason="needs Chromium (apt-get install chromium)")


def rendered(url: str, tmp_path: Path) -> str:
    """The page's DOM once its scripts have run (up to 10 s of page time)."""
    assert CHROMIUM, "Chromium is required here (VAE_TEST_REQUIRE_BROWSER): apt-get install chromium"
    completed = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                                f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
                                "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    page_port = free_port()
    process, base, _ = start_service(tmp_path_factory.mktemp("db") / "results.db", VAE_API_KEYS=KEY,
                                     VAE_CORS_ORIGINS=f"http://127.0.0.1:{page_port}")
    try:
        yield base, page_port
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def page_server():
    """Serves tests/browser/ on the given port: the web page's own origin."""
    servers = []

    def serve(port: int) -> str:
        handler = functools.partial(SimpleHTTPRequestHandler, directory=str(PAGES))
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _page_result(dom: str) -> dict:
    return json.loads(html.unescape(re.search(r'<pre id="out">(.*?)</pre>', dom, re.S).group(1)))


def test_the_api_docs_render_from_the_services_own_assets(service, tmp_path):
    base, _ = service
    swagger = rendered(f"{base}/docs", tmp_path)
    paths = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', swagger))
    assert {"/score", "/score/batch", "/results/export", "/panel/{result_id}", "/results/{result_id}/review",
            "/healthz"} <= paths, paths
    assert "Score one image" in rendered(f"{base}/redoc", tmp_path)


def test_a_page_on_an_allowed_origin_scores_and_reads_the_exposed_headers(service, page_server, tmp_path):
    base, page_port = service
    page = page_server(page_port)
    result = _page_result(rendered(f"{page}/cors_page.html?api={base}&key={KEY}", tmp_path))
    assert result == {"status": 200, "is_anomaly": result["is_anomaly"], "request_id": "dashboard-1",
                      "replayed": None, "retry_replayed": "true", "refused": 401, "refused_title": "Unauthorized",
                      "panel": 200, "panel_type": "image/png", "review": 200, "reviewer": "page"}, result


def test_a_page_on_another_origin_cannot_read_the_answers(service, page_server, tmp_path):
    base, _ = service
    page = page_server(free_port())
    result = _page_result(rendered(f"{page}/cors_page.html?api={base}&key={KEY}", tmp_path))
    assert result == {"error": "TypeError: Failed to fetch"}
