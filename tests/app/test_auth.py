"""API keys: app/auth.py and the guard the app puts on its routers when keys are set."""

from __future__ import annotations

import hashlib
import logging
import os
import time

import pytest
from pydantic import ValidationError

from app.auth import ApiKey, ApiKeys, keys_from_list, unnamed_key_name
from app.config import Settings
from tests.app.conftest import png_bytes

KEY, OTHER_KEY = "first-key-0123456789abcdef", "second-key-0123456789abcdef"
GUARDED = [("GET", "/model"), ("GET", "/model/versions"), ("GET", "/metrics"), ("GET", "/results"), ("GET", "/results/" + "0" * 32),
           ("GET", "/reconstruction/" + "0" * 32), ("GET", "/difference/" + "0" * 32),
           ("GET", "/image/" + "0" * 32), ("POST", "/score"), ("POST", "/score/batch"),
           ("GET", "/panel/" + "0" * 32), ("GET", "/results/export"), ("GET", "/results/summary"),
           ("PUT", "/results/" + "0" * 32 + "/review"), ("DELETE", "/results/" + "0" * 32 + "/review"),
           ("GET", "/results/" + "0" * 32 + "/reviews"), ("GET", "/model/versions/1/report"),
           ("GET", "/model/versions/1/report/report.md")]
OPEN = ["/healthz", "/readyz", "/docs", "/redoc", "/openapi.json", "/review-queue", "/review-queue/app.js"]


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_api_keys_accept_exactly_the_configured_keys_and_name_them():
    anna, line_3 = ApiKey("anna", KEY), ApiKey("line-3", OTHER_KEY, "score")
    keys = ApiKeys([anna, line_3])
    assert keys.required and keys.identify(KEY) == anna and keys.identify(OTHER_KEY) == line_3
    assert keys.identify(KEY[:-1]) is None and keys.identify(KEY + "x") is None and keys.identify("") is None
    assert not ApiKeys([]).required


def test_a_key_is_named_by_the_word_before_it_or_else_by_its_digest():
    keys = keys_from_list([f" anna.k {KEY} ", OTHER_KEY], "the list")
    assert keys == [ApiKey("anna.k", KEY), ApiKey(unnamed_key_name(OTHER_KEY), OTHER_KEY)]
    assert keys[1].name == "key-" + hashlib.sha256(OTHER_KEY.encode()).hexdigest()[:8]
    assert KEY not in repr(keys)  # a key's repr, as in a traceback, leaves the key out


@pytest.fixture
def guarded_client(start_client):
    return start_client(api_keys=f"{KEY}, {OTHER_KEY}")


@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_every_endpoint_that_serves_data_needs_a_key(guarded_client, method, path):
    response = guarded_client.request(method, path)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer <key>" in response.json()["detail"]


@pytest.mark.parametrize("path", OPEN)
def test_probes_and_docs_stay_open(guarded_client, path):
    assert guarded_client.get(path).status_code == 200


def _template(path: str) -> str:
    """A path of GUARDED as the OpenAPI schema writes it."""
    path = path.replace("0" * 32, "{result_id}").replace("/versions/1/", "/versions/{version}/")
    return path.replace("/report/report.md", "/report/{name}")


def test_the_lists_above_name_every_endpoint(guarded_client):
    # A new endpoint must be added to GUARDED (and so be shown to need a key) or to OPEN.
    spec = guarded_client.get("/openapi.json").json()
    documented = {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations}
    listed = {(method, _template(path)) for method, path in GUARDED}
    assert documented - listed <= {("GET", path) for path in OPEN}, documented - listed


def test_a_wrong_key_or_scheme_is_refused_before_the_request_is_parsed(guarded_client, normal_pixels):
    image = {"file": ("x.png", png_bytes(normal_pixels), "image/png")}
    wrong = guarded_client.post("/score?inverted=true", files=image, headers=_bearer("not-the-key-0123456789"))
    assert wrong.status_code == 401 and wrong.json()["detail"] == "the API key is not valid"
    basic = guarded_client.post("/score", files=image, headers={"Authorization": f"Basic {KEY}"})
    assert basic.status_code == 401 and basic.json()["detail"] == ("the Authorization header must be 'Bearer <API "
                                                                   "key>' (it says 'Basic')")
    bare = guarded_client.post("/score", files=image, headers={"Authorization": "abcdefghijklmnopqrstuvwxyz"})
    assert bare.json()["detail"] == "the Authorization header must be 'Bearer <API key>'"  # the key not echoed


@pytest.mark.parametrize("where, detail", [
    ({"headers": {"X-API-Key": KEY}}, "; the key is not read from the header 'x-api-key'"),
    ({"params": {"api_key": KEY}}, ("; the key is not read from the query (?api_key=), where proxies and logs would "
                                    "keep it: change the key, as it has been sent in clear in a URL")),
])
def test_a_key_sent_where_other_apis_take_it_is_told_where_this_one_reads_it(guarded_client, where, detail):
    response = guarded_client.get("/results", **where)
    assert response.status_code == 401
    assert response.json()["detail"] == ("this endpoint needs an API key: send the header 'Authorization: Bearer "
                                         f"<key>'{detail}")
    assert KEY not in response.text


def test_either_key_scores_and_reads_the_stored_result(guarded_client, normal_pixels):
    image = {"file": ("x.png", png_bytes(normal_pixels), "image/png")}
    scored = guarded_client.post("/score", files=image, headers=_bearer(KEY))
    assert scored.status_code == 200, scored.text
    # Rotation: a result scored with one key can be read with the other.
    stored = guarded_client.get(scored.json()["result_url"], headers=_bearer(OTHER_KEY))
    assert stored.status_code == 200 and stored.json()["id"] == scored.json()["id"]
    heatmap = guarded_client.get(scored.json()["difference_url"], headers=_bearer(KEY))
    assert heatmap.status_code == 200
    # Browsers may cache it, shared caches (proxies, CDNs) must not: they would serve it without a key.
    assert heatmap.headers["cache-control"].startswith("private")


ROLE_KEYS = {role: f"{role}-key-0123456789abcdef" for role in ("read", "score", "review", "all")}
NEEDS = {("POST", "/score"): "scoring images", ("POST", "/score/batch"): "scoring images",
         ("PUT", "/results/" + "0" * 32 + "/review"): "reviewing results",
         ("DELETE", "/results/" + "0" * 32 + "/review"): "reviewing results"}  # everything else: reading
ALLOWED = {"read": {"reading"}, "score": {"reading", "scoring"}, "review": {"reading", "reviewing"},
           "all": {"reading", "scoring", "reviewing"}}


@pytest.fixture
def role_client(start_client):
    return start_client(api_keys=",".join(f"{role}-client {key} {role}" for role, key in ROLE_KEYS.items()))


@pytest.mark.parametrize("role", ROLE_KEYS)
@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_a_keys_role_decides_what_it_may_do(role_client, role, method, path):
    action = NEEDS.get((method, path), "reading results")
    response = role_client.request(method, path, headers=_bearer(ROLE_KEYS[role]))
    if action.split()[0] in ALLOWED[role]:
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        detail = response.json()["detail"]
        assert detail.startswith(f"the API key '{role}-client' has the role '{role}', which does not allow {action}")
        assert detail.endswith("that needs a key with the role score or all" if action == "scoring images"
                               else "that needs a key with the role review or all")


def test_a_key_without_the_role_is_refused_before_the_request_is_parsed(role_client, normal_pixels):
    image = {"file": ("x.png", png_bytes(normal_pixels), "image/png")}
    response = role_client.post("/score?inverted=true", files=image, headers=_bearer(ROLE_KEYS["review"]))
    assert response.status_code == 403  # not the 422 of the unknown parameter


def test_a_line_scores_and_an_operator_reviews_each_under_their_own_name(role_client, normal_pixels):
    image = {"file": ("x.png", png_bytes(normal_pixels), "image/png")}
    scored = role_client.post("/score", files=image, headers=_bearer(ROLE_KEYS["score"])).json()
    assert role_client.get(scored["panel_url"], headers=_bearer(ROLE_KEYS["score"])).status_code == 200
    review_url = f"/results/{scored['id']}/review"
    refused = role_client.put(review_url, json={"verdict": "normal"}, headers=_bearer(ROLE_KEYS["score"]))
    assert refused.status_code == 403
    reviewed = role_client.put(review_url, json={"verdict": "normal"}, headers=_bearer(ROLE_KEYS["review"]))
    assert reviewed.status_code == 200 and reviewed.json()["review"]["api_key"] == "review-client"
    history = role_client.get(f"/results/{scored['id']}/reviews", headers=_bearer(ROLE_KEYS["read"])).json()
    assert [entry["api_key"] for entry in history["items"]] == ["review-client"]  # the refused one left no trace


def test_openapi_shows_the_lock_only_where_a_key_is_needed(guarded_client, client):
    spec = guarded_client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["API key"]["scheme"] == "bearer"
    assert spec["paths"]["/score"]["post"]["security"] == [{"API key": []}]
    assert {"401", "403"} <= set(spec["paths"]["/score"]["post"]["responses"])
    assert "security" not in spec["paths"]["/readyz"]["get"]
    open_spec = client.get("/openapi.json").json()
    assert "securitySchemes" not in open_spec.get("components", {})
    assert "401" not in open_spec["paths"]["/score"]["post"]["responses"]


def test_without_keys_every_endpoint_is_open(client):
    assert client.get("/model").status_code == 200
    assert client.get("/results").status_code == 200


def test_keys_can_come_from_a_file(start_client, tmp_path):
    key_file = tmp_path / "api-keys"
    key_file.write_text(f"# rotated 2026-11\n{OTHER_KEY}\n\n")
    client = start_client(api_keys_file=key_file)
    assert client.get("/model").status_code == 401
    assert client.get("/model", headers=_bearer(OTHER_KEY)).status_code == 200


def _rewrite(path, text: str) -> None:
    """Edit a file so that its change is seen even where timestamps are coarse."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def _eventually(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_changed_key_file_is_read_again_without_a_restart(start_client, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="app.key_file")
    key_file = tmp_path / "api-keys"
    key_file.write_text(f"old-line {KEY} score\n")
    client = start_client(api_keys_file=key_file)  # the file is checked every 0.05 s here
    assert client.get("/model", headers=_bearer(KEY)).status_code == 200

    _rewrite(key_file, f"new-line {OTHER_KEY} read\n")  # rotated: the old key revoked

    assert _eventually(lambda: client.get("/model", headers=_bearer(OTHER_KEY)).status_code == 200)
    assert client.get("/model", headers=_bearer(KEY)).status_code == 401
    assert client.post("/score", headers=_bearer(OTHER_KEY)).status_code == 403  # its new role applies
    assert "API keys read again from" in caplog.text and "new-line (read)" in caplog.text
    assert "cannot be used" not in caplog.text  # not read half-written


@pytest.mark.parametrize("broken", ["a key too short", "no file"])
def test_a_key_file_broken_by_an_edit_leaves_the_keys_in_use(start_client, tmp_path, caplog, broken):
    key_file = tmp_path / "api-keys"
    key_file.write_text(f"line-3 {KEY}\n")
    client = start_client(api_keys_file=key_file)
    if broken == "no file":
        key_file.unlink()
    else:
        _rewrite(key_file, "line-3 short\n")

    assert _eventually(lambda: "cannot be used, so the keys in use stay" in caplog.text)
    assert client.get("/model", headers=_bearer(KEY)).status_code == 200  # neither locked out nor opened
    assert client.get("/model").status_code == 401
    assert "short" not in caplog.text.split("cannot be used")[1].split("\n")[0].replace("too short", "")


@pytest.mark.parametrize(("values", "message"), [
    ({"api_keys": "short"}, "a key of 5 characters"),
    ({"api_keys": f"{KEY},has a space 0123456789"}, "an entry of 4 words; write a key, a name and a key, or"),
    ({"api_keys": f"anna {KEY} admin"}, "gives a key the role 'admin'; write a name, the key and one of the roles "
                                        "read, score, review, all, in that order"),
    ({"api_keys": f"anna review {KEY}"}, "holds a key of 6 characters"),  # the role where the key goes
    ({"api_keys": f"anna {KEY} {OTHER_KEY}"}, "gives a key the role of 27 characters"),  # a key: not quoted
    ({"api_keys": f"anna {KEY} review,anna {KEY} read"}, "the API key 'anna' is listed twice with different roles"),
    ({"api_keys": "anna short"}, "a key of 5 characters"),
    ({"api_keys": f"{KEY},anna? {OTHER_KEY}"}, "names a key 'anna?'; a key's name is letters, digits and ._:/@-"),
    ({"api_keys": f"anna {KEY},ben {KEY}"}, "one API key is listed twice, as 'anna' and as 'ben'"),
    ({"api_keys": " , "}, "holds no key"),
    ({"api_keys_file": "/nonexistent/keys"}, "cannot read the API key file"),
])
def test_keys_that_cannot_protect_anything_are_refused_without_echoing_them(values, message):
    with pytest.raises(ValidationError) as error:
        Settings(**values)
    assert message in str(error.value)
    for secret in ("has space", "short'", KEY, OTHER_KEY):
        assert secret not in str(error.value)


def test_a_key_listed_in_the_variable_and_in_the_file_under_two_names_is_refused(tmp_path):
    key_file = tmp_path / "api-keys"
    key_file.write_text(f"line-3 {KEY}\n")
    assert [k.name for k in Settings(api_keys=f"anna {OTHER_KEY}", api_keys_file=key_file).api_key_values()] == [
        "anna", "line-3"]
    with pytest.raises(ValidationError) as error:
        Settings(api_keys=f"anna {KEY}", api_keys_file=key_file)
    assert "listed twice, as 'anna' and as 'line-3'" in str(error.value) and KEY not in str(error.value)


def test_an_empty_variable_leaves_the_api_open(monkeypatch):
    monkeypatch.setenv("VAE_API_KEYS", "")  # what docker-compose passes on for an unset variable
    monkeypatch.setenv("VAE_API_KEYS_FILE", "")
    assert Settings().api_key_values() == []
