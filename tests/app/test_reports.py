"""GET /model/versions/{version}/report[/{name}]: each version's evaluation report, from the model store."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil

from fastapi.testclient import TestClient
from PIL import Image

from app.auth import ROLES, ApiKey, ApiKeys, Permission
from app.main import create_app
from tests.app.conftest import publish_copy, wait_until_ready
from tests.app.test_score import assert_problem
from training.report_page import CONTENT_SECURITY_POLICY, render_report_page
from training.store import REPORT_FILES, REPORT_PATH


def test_a_versions_report_is_listed_and_each_file_served_as_what_it_is(client, store):
    listing = client.get("/model/versions").json()
    assert listing["versions"][0]["report_files"] == list(REPORT_FILES)  # the tiny model's training job wrote it
    assert listing["versions"][0]["report_url"] == "/model/versions/1/report"
    assert client.get("/model").json()["report_url"] == "/model/versions/1/report"  # the served version's

    index = client.get("/model/versions/1/report")
    assert index.status_code == 200, index.text
    files = index.json()["files"]
    assert index.json()["model_name"] == "tiny" and index.json()["version"] == 1
    assert files == {name: f"/model/versions/1/report/{name}" for name in ("report.html", *REPORT_FILES)}

    on_disk = store / "tiny" / "1" / REPORT_PATH
    markdown = client.get(files["report.md"])
    assert markdown.headers["content-type"] == "text/markdown; charset=utf-8"
    assert markdown.text == (on_disk / "report.md").read_text()
    assert markdown.headers["x-content-type-options"] == "nosniff"  # a test image's name is shown, never run
    metrics = client.get(files["metrics.json"])
    assert metrics.headers["content-type"] == "application/json"
    assert metrics.json() == json.loads((on_disk / "metrics.json").read_text())
    for plot in ("histogram.png", "roc.png", "grid.png", "misjudged.png"):
        response = client.get(files[plot])
        assert response.headers["content-type"] == "image/png", plot
        assert Image.open(io.BytesIO(response.content)).size[0] > 300, plot


def test_a_version_that_is_not_published_is_named_with_the_ones_that_are(client, store):
    publish_copy(store, 2)
    (store / "tiny" / ".tmp-3").mkdir()  # being written: not a version
    for path in ("/model/versions/7/report", "/model/versions/7/report/report.md"):
        assert_problem(client.get(path), 404, "model 'tiny' has no published version 7 (published: 1, 2; see "
                                              "/model/versions)")
    assert_problem(client.get("/model/versions/3/report/report.md"), 404, "no published version 3")
    for version in range(3, 9):
        (store / "tiny" / str(version)).mkdir()  # incomplete: not versions
    publish_copy(store, 40)
    for version in range(41, 46):
        publish_copy(store, version)
    assert_problem(client.get("/model/versions/7/report"), 404, "model 'tiny' has no published version 7 "
                   "(published: 8 versions, 1 to 45; the newest 41, 42, 43, 44, 45; see /model/versions)")


def test_a_file_that_no_report_holds_is_refused_with_the_names_there_are(client):
    assert_problem(client.get("/model/versions/1/report/saved_model.pb"), 422,
                   "'report.md', 'metrics.json', 'histogram.png'")
    assert_problem(client.get("/model/versions/one/report"), 422, "version")
    # The rest of the version's folder is out of reach, however the path is written.
    for path in ("/model/versions/1/report/../metadata.json", "/model/versions/1/report/%2e%2e%2fmetadata.json",
                 "/model/versions/1/report/..%2F..%2Fassets.extra%2Fmetadata.json"):
        response = client.get(path)
        assert response.status_code in (404, 422) and "threshold" not in response.text, path


def test_a_version_without_a_report_or_without_its_plots_says_so(client, store):
    publish_copy(store, 2, lambda directory, metadata: shutil.rmtree(directory / REPORT_PATH))
    wait_until_ready(client, version=2)
    assert client.get("/model").json()["report_url"] is None
    publish_copy(store, 3, lambda directory, metadata: (directory / REPORT_PATH / "misjudged.png").unlink())
    wait_until_ready(client, version=3)
    versions = {entry["version"]: entry for entry in client.get("/model/versions").json()["versions"]}
    assert (versions[2]["report_files"], versions[2]["report_url"]) == ([], None)
    assert "misjudged.png" not in versions[3]["report_files"] and versions[3]["report_url"]

    for path in ("/model/versions/2/report", "/model/versions/2/report/histogram.png"):
        assert_problem(client.get(path), 404, "version 2 of 'tiny' has no evaluation report: it was published "
                                              "without labelled test images (recalibrate --no-report")
    assert_problem(client.get("/model/versions/3/report/misjudged.png"), 404,
                   "the report of version 3 of 'tiny' has no misjudged.png (written without matplotlib, or before "
                   "that plot was added); it has report.md, metrics.json, histogram.png, roc.png, grid.png")
    assert "misjudged.png" not in client.get("/model/versions/3/report").json()["files"]


def test_a_version_pruned_while_its_report_is_asked_for_is_a_404(client, store):
    publish_copy(store, 2)
    shutil.rmtree(store / "tiny" / "2" / REPORT_PATH)
    shutil.rmtree(store / "tiny" / "2" / "assets.extra")  # as prune leaves it midway: no longer a version
    assert_problem(client.get("/model/versions/2/report/report.md"), 404, "no published version 2")


def test_links_start_with_the_path_prefix_of_a_reverse_proxy(make_settings):
    with TestClient(create_app(make_settings()), root_path="/inspection") as client:
        wait_until_ready(client)
        listed = client.get("/model/versions").json()["versions"][0]
        assert listed["report_url"] == "/inspection/model/versions/1/report"
        index = client.get("/model/versions/1/report").json()
        assert index["files"]["roc.png"] == "/inspection/model/versions/1/report/roc.png"
        assert index["browser_link"] == "/inspection/model/versions/1/report/report.html"


def test_the_report_is_one_web_page_with_its_plots(client, store):
    page = client.get("/model/versions/1/report/report.html")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    markdown = (store / "tiny" / "1" / REPORT_PATH / "report.md").read_text()
    assert page.text == render_report_page(markdown, ["histogram.png", "roc.png", "grid.png", "misjudged.png"])
    for plot in re.findall(r'<img src="([^"]+)"', page.text):  # each plot is found beside the page
        assert client.get(f"/model/versions/1/report/{plot}").headers["content-type"] == "image/png"


def test_a_report_without_its_markdown_has_no_page(client, store):
    publish_copy(store, 2, lambda directory, metadata: (directory / REPORT_PATH / "report.md").unlink())
    assert "report.html" not in client.get("/model/versions/2/report").json()["files"]
    assert_problem(client.get("/model/versions/2/report/report.html"), 404, "has no report.md; it has metrics.json")


KEY, OTHER_KEY = "first-key-0123456789abcdef", "second-key-0123456789abcdef"


def _link(client: TestClient, version: int = 1, key: str = KEY) -> dict:
    index = client.get(f"/model/versions/{version}/report", headers={"Authorization": f"Bearer {key}"})
    assert index.status_code == 200, index.text
    return index.json()


def test_without_api_keys_the_browser_link_is_the_pages_url(client):
    index = client.get("/model/versions/1/report").json()
    assert index["browser_link"] == "/model/versions/1/report/report.html"
    assert index["browser_link_expires_at"] is None


def test_a_browser_link_opens_the_page_and_its_plots_without_the_key(start_client, store):
    client = start_client(api_keys=f"anna {KEY} read, {OTHER_KEY}")
    before = dt.datetime.now(dt.UTC)
    index = _link(client)
    link, expires = index["browser_link"], dt.datetime.fromisoformat(index["browser_link_expires_at"])
    assert link.startswith("/model/versions/1/report/report.html?access=")
    assert before + dt.timedelta(minutes=59) < expires <= dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    page = client.get(link)  # as a browser's address bar sends it: no Authorization header
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["referrer-policy"] == "no-referrer"
    access = link.split("?access=")[1]
    plots = re.findall(r'<img src="([^"]+)"', page.text)
    assert plots == [f"{name}?access={access}" for name in ("histogram.png", "roc.png", "grid.png", "misjudged.png")]
    for plot in plots:  # the page's plots, as the browser asks for them, relative to the page
        assert client.get(f"/model/versions/1/report/{plot}").headers["content-type"] == "image/png"
    assert client.get(f"/model/versions/1/report/metrics.json?access={access}").json()["model"]["version"] == 1
    assert client.get("/model/versions/1/report/report.html").status_code == 401  # without the link's token


def test_a_browser_link_opens_its_versions_report_and_nothing_else(start_client, store):
    publish_copy(store, 2)
    client = start_client(api_keys=KEY)
    access = _link(client)["browser_link"].split("?access=")[1]
    assert_problem(client.get(f"/model/versions/2/report/report.html?access={access}"), 401,
                   "this report link does not open version 2 of 'tiny': it was made for another version or model, "
                   "or altered, or the API key that made it was revoked; ask GET /model/versions/2/report, with an "
                   "API key, for a new link")
    for path in ("/model/versions/1/report", "/results", "/model"):  # the token is no key
        assert client.get(f"{path}?access={access}").status_code == 401, path
    expires, signature = access.split(".")
    for altered in (f"{int(expires) + 3600}.{signature}", f"{expires}.{signature[:-2]}AA"):
        assert_problem(client.get(f"/model/versions/1/report/roc.png?access={altered}"), 401,
                       "this report link does not open version 1 of 'tiny'")
    for malformed in ("", "x", expires, f"{expires}.", f"{expires}.{signature[:20]}", f"-1.{signature}",
                      f"{expires}.{signature}!", f"{expires}.{signature}=", f"{expires}.{signature[:-1]}\u0410",
                      f"\u0661{expires[1:]}.{signature}", KEY):
        assert_problem(client.get("/model/versions/1/report/roc.png", params={"access": malformed}), 401,
                       "?access= is not the access token of a report link (it is cut short or altered)")
    # A version written other than as digits is the route's 422, never a link checked against another number
    assert client.get(f"/model/versions/%D9%A1/report/roc.png?access={access}").status_code == 401


def test_a_browser_link_expires_and_dies_with_its_key(start_client, monkeypatch):
    client = start_client(api_keys=f"{KEY}, {OTHER_KEY}")
    first, second = (_link(client, key=key)["browser_link"] for key in (KEY, OTHER_KEY))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1, seconds=1)
    with monkeypatch.context() as patched:
        patched.setattr("app.api.deps.dt", type("FrozenClock", (), {
            "datetime": type("Later", (dt.datetime,), {"now": staticmethod(lambda tz=None: later)}), "UTC": dt.UTC}))
        assert_problem(client.get(first), 401, "this report link expired at ")
        # A key sent with the link is what counts, and the page's plots then need no link either
        with_key = client.get(first, headers={"Authorization": f"Bearer {OTHER_KEY}"})
        assert with_key.status_code == 200 and "?access=" not in with_key.text
    assert client.get(first).status_code == 200
    client.app.state.api_keys = ApiKeys([ApiKey("second", OTHER_KEY)])  # KEY revoked, as a reload of the key file
    assert_problem(client.get(first), 401, "or the API key that made it was revoked")
    assert client.get(second).status_code == 200


def test_every_role_may_read_so_every_keys_link_opens_the_report():
    # check_access takes any configured key's link: it relies on this
    assert all(Permission.READ in permissions for permissions in ROLES.values())
