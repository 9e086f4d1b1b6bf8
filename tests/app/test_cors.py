"""Cross-origin calls from web pages: only the origins in VAE_CORS_ORIGINS may read the API's answers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings
from tests.app.conftest import png_bytes

DASHBOARD = "https://dashboard.example.com"
KEY = "cors-test-key-0123456789"
PREFLIGHT = {"Origin": DASHBOARD, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"}


def test_a_listed_origin_may_score_with_a_key_and_its_preflight_needs_none(start_client, normal_pixels):
    client = start_client(cors_origins=f"{DASHBOARD}, http://localhost:3000", api_keys=KEY)
    preflight = client.options("/score", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == DASHBOARD
    assert {"authorization", "idempotency-key"} <= set(preflight.headers["access-control-allow-headers"].lower()
                                                       .replace(" ", "").split(","))
    scored = client.post("/score", files={"file": ("x.png", png_bytes(normal_pixels), "image/png")},
                         headers={"Origin": DASHBOARD, "Authorization": f"Bearer {KEY}", "Idempotency-Key": "k-1"})
    assert scored.status_code == 200 and scored.headers["access-control-allow-origin"] == DASHBOARD
    # The page may read whether an answer was replayed, and the request's id.
    assert scored.headers["access-control-expose-headers"] == "Idempotent-Replayed, X-Request-ID, ETag"
    # A browser must be able to read a refusal too, or the page sees only a network error.
    refused = client.get("/results", headers={"Origin": DASHBOARD})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == DASHBOARD


def test_a_listed_origin_may_review_a_result(start_client, anomalous_pixels):
    # A PUT with a JSON body is not a "simple" request: the browser asks first, and must be allowed.
    client = start_client(cors_origins=DASHBOARD, api_keys=KEY)
    headers = {"Origin": DASHBOARD, "Authorization": f"Bearer {KEY}"}
    scored = client.post("/score", files={"file": ("x.png", png_bytes(anomalous_pixels), "image/png")},
                         headers=headers).json()
    for method in ("PUT", "DELETE"):
        preflight = client.options(f"/results/{scored['id']}/review", headers={
            **PREFLIGHT, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, if-match"})
        assert preflight.status_code == 200 and method in preflight.headers["access-control-allow-methods"]
    # The page reads the result's ETag and reviews on condition that nobody has meanwhile.
    read = client.get(f"/results/{scored['id']}", headers=headers)
    assert "ETag" in read.headers["access-control-expose-headers"].split(", ")
    reviewed = client.put(f"/results/{scored['id']}/review", json={"verdict": "normal"},
                          headers={**headers, "If-Match": read.headers["etag"]})
    assert reviewed.status_code == 200 and reviewed.headers["access-control-allow-origin"] == DASHBOARD
    assert reviewed.json()["review"]["verdict"] == "normal"


def test_other_origins_and_the_default_get_no_cors_headers(start_client, client):
    listed = start_client(cors_origins=DASHBOARD)
    other = {**PREFLIGHT, "Origin": "https://evil.example.com"}
    assert listed.options("/score", headers=other).status_code == 400
    assert "access-control-allow-origin" not in listed.get("/model", headers={"Origin": other["Origin"]}).headers
    assert "access-control-allow-origin" not in client.get("/model", headers={"Origin": DASHBOARD}).headers


@pytest.mark.parametrize("origin", ["https://dashboard.example.com/", "dashboard.example.com",
                                    "https://dashboard.example.com/app", "HTTPS://DASHBOARD.EXAMPLE.COM"])
def test_a_value_that_no_browser_sends_as_its_origin_is_refused(origin):
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(cors_origins=origin)


def test_the_variable_is_a_comma_separated_list(monkeypatch):
    monkeypatch.setenv("VAE_CORS_ORIGINS", f" {DASHBOARD} ,*")
    assert Settings().cors_origins == [DASHBOARD, "*"]
    monkeypatch.setenv("VAE_CORS_ORIGINS", "")
    assert Settings().cors_origins == []
