import re

from tests.app.conftest import png_bytes, publish_copy, wait_until_ready
from tests.app.test_score import assert_problem


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "model": {"name": "tiny", "version": 1}}


def test_every_path_that_takes_get_answers_head_with_its_headers_and_no_body(client, normal_pixels):
    # Uptime monitors, link checkers and curl -I ask with HEAD (RFC 9110, 9.3.2).
    result = client.post("/score", files={"file": ("x.png", png_bytes(normal_pixels), "image/png")}).json()
    paths = ["/", "/healthz", "/readyz", "/model", "/model/versions", "/results", "/results/summary", "/docs",
             "/review-queue", result["result_url"], result["reconstruction_url"], result["panel_url"],
             "/results/" + "0" * 32, "/model/versions/1/report", "/model/versions/1/report/roc.png",
             "/model/versions/1/report/report.md", "/model/versions/1/report/report.html"]
    for path in paths:
        get, head = client.get(path, follow_redirects=False), client.head(path, follow_redirects=False)
        assert (head.status_code, head.content) == (get.status_code, b""), path
        for header in ("content-type", "content-length", "cache-control", "location"):
            assert head.headers.get(header) == get.headers.get(header), (path, header)
    assert client.head("/metrics").headers["content-type"] == client.get("/metrics").headers["content-type"]
    assert client.head("/results/export").headers["content-type"].startswith("text/csv")
    assert {"head"}.isdisjoint(client.get("/openapi.json").json()["paths"]["/healthz"])  # the GET documents it
    refused = client.head("/score")  # no GET there: HEAD is refused as any other method
    assert (refused.status_code, refused.headers["allow"], refused.content) == (405, "POST", b"")
    assert client.put("/model").headers["allow"] == "GET, HEAD"


def test_a_wrong_path_or_method_says_what_exists(client):
    assert_problem(client.get("/scores"), 404, "there is no endpoint '/scores'; the endpoints are listed at /docs")
    response = client.get("/score")
    assert_problem(response, 405, "GET is not allowed on '/score'; it takes POST")
    assert response.headers["allow"] == "POST"
    assert_problem(client.post("/healthz"), 405, "POST is not allowed on '/healthz'; it takes GET, HEAD")
    assert_problem(client.get("/" + "x" * 10_000), 404, f"'/{'x' * 99}...'")


def test_model_metadata_without_bulky_arrays(client, tiny_model):
    metadata = client.get("/model").json()
    assert "calibration_scores" not in metadata and "reference_images" not in metadata
    assert metadata["n_calibration_scores"] == len(tiny_model.metadata["calibration_scores"])
    assert metadata["threshold"] == tiny_model.metadata["threshold"]
    assert metadata["version"] == 1 and metadata["input"]["shape"] == [28, 28, 1]


def test_metrics_count_what_happened(client, normal_pixels):
    for _ in range(3):
        client.post("/score?threshold=0", files={"file": ("x.png", png_bytes(normal_pixels), "image/png")})
    text = client.get("/metrics").text
    assert "vae_images_scored_total 3.0" in text
    assert "vae_anomalies_total 3.0" in text
    assert 'vae_model_version{name="tiny"} 1.0' in text
    assert 'vae_request_duration_seconds_count{method="POST",route="/score",status="200"} 3.0' in text
    client.head("/healthz")  # an uptime monitor's probe: counted as the HEAD it was, not as a GET
    text = client.get("/metrics").text
    assert 'vae_request_duration_seconds_count{method="HEAD",route="/healthz",status="200"} 1.0' in text
    assert 'method="GET",route="/healthz"' not in text
    assert "vae_model_batch_size_count" in text
    assert "vae_p_value_count 3.0" in text and 'vae_p_value_bucket{le="1.0"} 3.0' in text


def test_openapi_documents_every_endpoint_with_schemas_and_examples(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/score", "/score/batch", "/results/{result_id}", "/results", "/results/summary",
                 "/results/export", "/reconstruction/{result_id}", "/difference/{result_id}", "/image/{result_id}",
                 "/panel/{result_id}", "/healthz", "/readyz", "/model", "/model/versions", "/metrics"):
        assert path in paths, path
    score = paths["/score"]["post"]
    assert set(score["requestBody"]["content"]) >= {"multipart/form-data", "image/png", "application/json"}
    for body in (score["requestBody"]["content"]["multipart/form-data"], score["requestBody"]["content"][
            "application/json"], paths["/score/batch"]["post"]["requestBody"]["content"]["multipart/form-data"]):
        assert body["schema"]["additionalProperties"] is False  # a part or field beside the image is a 422
    assert set(score["responses"]) == {"200", "400", "413", "415", "422", "503"}  # what /score can return
    # 503: store failed; 304 and 400: If-None-Match, as it is or malformed
    assert set(paths["/results/{result_id}"]["get"]["responses"]) == {"200", "304", "400", "404", "422", "503"}
    assert set(paths["/results/{result_id}/review"]["put"]["responses"]) == {
        "200", "400", "404", "412", "413", "415", "422", "503"}  # 412: If-Match, after the review changed
    assert "ETag" in paths["/results/{result_id}"]["get"]["responses"]["200"]["headers"]
    assert set(paths["/results/export"]["get"]["responses"]["200"]["content"]) == {"text/csv"}
    assert set(paths["/panel/{result_id}"]["get"]["responses"]["200"]["content"]) == {"image/png"}
    schemas = spec["components"]["schemas"]
    assert schemas["ScoreResult"]["examples"] and schemas["ProblemDetail"]["examples"]
    pixels = score["requestBody"]["content"]["application/json"]["schema"]["properties"]["pixels"]
    row = pixels["items"]
    assert (pixels["minItems"], pixels["maxItems"], row["minItems"], row["maxItems"]) == (28, 28, 28, 28)
    assert (row["items"]["minimum"], row["items"]["maximum"]) == (0, 255)
    for path in ("/results/{result_id}", "/panel/{result_id}"):  # documented; the service's own check answers
        (result_id,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == "result_id"]
        assert result_id["schema"]["pattern"] == "^[0-9a-f]{32}$"
    assert schemas["ResultSummary"]["examples"]


def test_openapi_links_lead_from_a_scored_result_to_every_operation_on_its_id(client, normal_pixels):
    spec = client.get("/openapi.json").json()
    links = spec["paths"]["/score"]["post"]["responses"]["200"]["links"]
    linked = set()
    for link in links.values():
        path, method = link["operationRef"].removeprefix("#/paths/").rsplit("/", 1)
        path = path.replace("~1", "/").replace("~0", "~")
        assert method in spec["paths"][path], link["operationRef"]  # the pointer resolves
        assert link["parameters"] == {"result_id": "$response.body#/id"}
        linked.add((method, path))
    takes_an_id = {(method, path) for path, operations in spec["paths"].items() if "{result_id}" in path
                   for method in operations}
    assert linked == takes_an_id
    result = client.post("/score", files={"file": ("x.png", png_bytes(normal_pixels), "image/png")}).json()
    for method, path in linked:  # and the id they carry works there
        response = client.request(method, path.format(result_id=result["id"]),
                                  json={"verdict": "normal"} if method == "put" else None)
        assert response.status_code == 200, (method, path, response.text)


def test_responses_match_their_documented_schemas(client, normal_pixels):
    from app.schemas import (
        BatchResponse,
        ResultGroup,
        ResultPage,
        ResultSummary,
        ScoreResult,
    )

    png = png_bytes(normal_pixels)
    single = client.post("/score", files={"file": ("x.png", png, "image/png")}).json()
    assert set(single) == set(ScoreResult.model_fields)
    ScoreResult.model_validate(single, strict=True)
    batch = client.post("/score/batch", files=[("files", ("a.png", png, "image/png")),
                                               ("files", ("b.png", b"junk", "image/png"))]).json()
    BatchResponse.model_validate(batch)
    assert set(batch["items"][0]) == {"index", "filename", "result", "error"}
    assert set(batch["items"][1]["error"]) >= {"title", "status", "detail"}
    page = client.get("/results?limit=1").json()
    ResultPage.model_validate(page)
    assert set(page) == set(ResultPage.model_fields)
    summary = client.get("/results/summary").json()
    ResultSummary.model_validate(summary, strict=True)
    assert set(summary) == set(ResultSummary.model_fields)
    assert set(summary["groups"][0]) == set(ResultGroup.model_fields)


def test_api_docs_work_without_internet_access(client):
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assets = re.findall(r'(?:src|href|spec-url)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert assets, html
        assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], (page, assets)
        for asset in assets:  # the scripts, styles and schema the page loads are served by the service
            assert client.get(asset).status_code == 200, asset
    assert "SwaggerUIBundle" in client.get("/static-offline-docs/swagger-ui-bundle.js").text


def test_the_root_leads_to_the_api_docs(client):
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"] == "/docs"


def test_unknown_query_parameters_are_422_except_on_the_probes(client):
    response = client.get("/model?version=2")  # not a way to pick a version: refused rather than ignored
    assert response.status_code == 422
    assert response.json()["detail"] == "unknown query parameter 'version'; /model takes no query parameters"
    # Load balancers and uptime checkers may add their own parameters (cache busters) to health checks.
    assert client.get("/readyz?nocache=1").status_code == 200
    assert client.get("/healthz?nocache=1").status_code == 200


def test_the_published_versions_are_listed_with_the_one_served(client, store):
    from training.rollback import roll_back

    publish_copy(store, 2, lambda directory, metadata: metadata.update(threshold=-1.0))
    wait_until_ready(client, version=2)
    roll_back(store / "tiny", 1)
    wait_until_ready(client, version=3)
    (store / "tiny" / ".tmp-abc").mkdir()

    listing = client.get("/model/versions").json()

    assert (listing["model_name"], listing["served"], listing["newest"], listing["pinned"]) == ("tiny", 3, 3, None)
    assert [v["version"] for v in listing["versions"]] == [3, 2, 1]
    assert listing["versions"][0]["made_by"] == "roll back to version 1 (replacing 2)"
    assert listing["versions"][1]["threshold"] == -1.0
    assert listing["versions"][0]["threshold"] == listing["versions"][2]["threshold"]
    assert "an unfinished publish" in listing["not_served"][".tmp-abc"]


def test_a_pinned_service_lists_newer_versions_it_does_not_serve(start_client, store):
    publish_copy(store, 2)
    listing = start_client(model_version=1).get("/model/versions").json()
    assert (listing["served"], listing["pinned"], listing["newest"]) == (1, 1, 2)
