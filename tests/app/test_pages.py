"""GET /review-queue: the page and its files, served from the package with a strict content policy."""

import pytest

from tests.app.test_score import assert_problem


@pytest.mark.parametrize(("path", "media_type", "marker"), [
    ("/review-queue", "text/html; charset=utf-8", b'<script src="/review-queue/app.js">'),  # no prefix
    ("/review-queue/app.js", "text/javascript; charset=utf-8", b'review: "none"'),
    ("/review-queue/style.css", "text/css; charset=utf-8", b".card"),
    ("/review-queue/icon.svg", "image/svg+xml", b"<svg"),
])
def test_the_page_and_its_files_are_served_with_a_strict_content_policy(client, path, media_type, marker):
    response = client.get(path)
    assert response.status_code == 200 and response.headers["content-type"] == media_type
    assert marker in response.content
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_no_other_file_is_served(client):
    assert_problem(client.get("/review-queue/..%2Fmain.py"), 404, "there is no endpoint '/review-queue/../main.py'")  # no route takes a slash
    assert_problem(client.get("/review-queue/secret.txt"), 404, "no file '")
    assert "/review-queue" not in client.get("/openapi.json").json()["paths"]  # a page, not an API endpoint


def test_behind_a_proxy_path_prefix_the_page_links_and_calls_under_it(make_settings):
    from fastapi.testclient import TestClient

    from app.main import create_app

    # What uvicorn passes on with VAE_ROOT_PATH=/inspection (the proxy strips the prefix).
    with TestClient(create_app(make_settings()), root_path="/inspection") as client:
        page = client.get("/review-queue")
    assert page.status_code == 200, page.text
    assert b'<meta name="api-root" content="/inspection">' in page.content
    assert b'<script src="/inspection/review-queue/app.js">' in page.content
    assert b'href="/inspection/review-queue/style.css"' in page.content
    assert b"{root}" not in page.content
