"""The review queue page in a real browser (Chromium driven by Playwright): an operator enters the key,
sees the unreviewed flags with their pictures, and reviews them with the buttons and the keyboard."""

from __future__ import annotations

import io
import os
import re
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.service import start_service
from tests.test_browser import CHROMIUM

KEY = "review-page-key-0123456789"
HOSTILE_REF = "<img src=x onerror=\"document.title='pwned'\">"

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # only CI requires the browser tests
    sync_playwright = None

pytestmark = pytest.mark.skipif((sync_playwright is None or CHROMIUM is None)
                                and not os.environ.get("VAE_TEST_REQUIRE_BROWSER"),
                                reason="needs Playwright (pip install '.[dev]') and Chromium")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    process, base, _ = start_service(tmp_path_factory.mktemp("db") / "results.db", VAE_API_KEYS=KEY)
    try:
        yield base, httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def browser():
    assert sync_playwright is not None and CHROMIUM, "Playwright and Chromium are required here"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def _score(api: httpx.Client, *, source: str, ref: str, flagged: bool) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(buffer, "PNG")
    # The request's own threshold decides the verdict, so the test does not depend on what the model makes
    # of the image.
    response = api.post("/score", params={"source": source, "ref": ref, "threshold": -1e9 if flagged else 1e9},
                        files={"file": ("x.png", buffer.getvalue(), "image/png")})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def _wait_until(condition, timeout: float = 10.0) -> None:
    # Not page.wait_for_function: its polling evaluates a string, which the page's content policy forbids.
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _open_with_key(browser, base: str, query: str = ""):
    """The page, in a new tab, once the operator has typed the key it asks for."""
    page = browser.new_page()
    page.goto(f"{base}/review-queue{query}")
    page.fill("#key", KEY)
    page.click("#key-form button")
    return page


def _look_up(page, ref: str) -> None:
    page.fill("#ref", ref)
    page.click("#lookup button")


def test_an_operator_reviews_the_flags_of_a_line(service, browser):
    base, api = service
    hostile = _score(api, source="line-7", ref=HOSTILE_REF, flagged=True)
    plain = _score(api, source="line-7", ref="SN-2", flagged=True)
    _score(api, source="line-7", ref="SN-3", flagged=False)
    _score(api, source="line-8", ref="SN-4", flagged=True)

    page = browser.new_page()
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("response", lambda response: response.status >= 400 and problems.append(
        f"{response.status} {response.url}"))
    page.on("dialog", lambda dialog: problems.append(f"dialog: {dialog.message}"))
    page.goto(f"{base}/review-queue?source=line-7")
    expect(page.locator("#status")).to_have_text("this service needs an API key")
    page.fill("#key", KEY)
    page.click("#key-form button")
    cards = page.locator("article.card")
    expect(cards).to_have_count(2)  # line 7's two flags; not its normal result, not line 8's flag
    expect(page.locator("#count")).to_have_text("2 flags to review")  # counted by the summary, of line 7 only
    expect(page.locator("#key-form")).to_be_hidden()
    assert [cards.nth(i).get_attribute("data-id") for i in range(2)] == [plain, hostile]  # newest first

    # A client's text is shown as text: the ref's markup neither renders nor runs.
    expect(cards.nth(1).locator(".facts")).to_contain_text(HOSTILE_REF)
    assert page.locator("img[src='x']").count() == 0 and page.title() != "pwned"
    # Each card shows the result's picture, fetched with the key.
    _wait_until(lambda: cards.locator("img").evaluate_all("images => images.map(i => i.naturalWidth)") == [736, 736])

    page.fill("#reviewer", "op-1")
    cards.nth(0).locator("button.normal").click()
    expect(cards).to_have_count(1)
    cards.nth(0).locator("input").fill("crack at the top")
    cards.nth(0).locator("button.defect").click()
    expect(page.locator("#status")).to_have_text("Nothing to review.")
    expect(page.locator("#count")).to_have_text("0 flags to review · 2 reviewed in this tab")

    reviews = {result_id: api.get(f"/results/{result_id}").json()["review"] for result_id in (plain, hostile)}
    assert (reviews[plain]["verdict"], reviews[plain]["reviewer"], reviews[plain]["agrees"]) == ("normal", "op-1",
                                                                                                  False)
    assert (reviews[hostile]["verdict"], reviews[hostile]["note"]) == ("anomalous", "crack at the top")

    # The keyboard: N reviews the first flag as normal. The key stays in the tab, the name in the browser.
    keyed = _score(api, source="line-7", ref="SN-5", flagged=True)
    page.click("#filters button")
    expect(cards).to_have_count(1)
    page.locator("h1").click()  # focus outside the inputs
    page.keyboard.press("n")
    expect(page.locator("#status")).to_have_text("Nothing to review.")
    assert api.get(f"/results/{keyed}").json()["review"]["reviewer"] == "op-1"

    # The served version's report is linked for whoever judges its flags. The link opens in a browser with
    # nothing of this tab's: no key is sent, the link carries its own access.
    link = page.locator("#report-link")
    expect(link).to_have_text(re.compile(r"^Evaluation report of mnist-vae version \d+$"))
    assert "/report/report.html?access=" in link.get_attribute("href")
    report = browser.new_context().new_page()
    report_problems = []
    report.on("response", lambda response: response.status >= 400 and not response.url.endswith("/favicon.ico")
              and report_problems.append(f"{response.status} {response.url}"))  # the browser's own icon request
    report.on("console", lambda message: message.type == "error" and "status of 404" not in message.text
              and report_problems.append(message.text))
    assert report.goto(base + link.get_attribute("href")).status == 200
    plots = report.locator("img")
    _wait_until(lambda: plots.count() >= 3 and min(plots.evaluate_all("images => images.map(i => i.naturalWidth)"))
                > 300)  # every plot loaded, with the link's access
    assert report_problems == []
    # No script or style was blocked, nothing else failed: the first call's 401 is the only error.
    assert [p for p in problems if not re.search(r"status of 401|^401 .*/results\?", p)] == [], problems


def test_a_defect_found_later_is_looked_up_by_its_ref_and_marked_missed(service, browser):
    base, api = service
    passed = _score(api, source="line-9", ref="SN-LATER-1", flagged=False)
    page = _open_with_key(browser, base)
    _look_up(page, "SN-LATER-1")
    expect(page.locator("#heading")).to_have_text("Results for ref SN-LATER-1")
    cards = page.locator("article.card")
    expect(cards).to_have_count(1)
    expect(cards.nth(0).locator(".facts")).to_contain_text("passed: score")
    cards.nth(0).locator("input").fill("cracked at assembly")
    cards.nth(0).locator("button.defect", has_text="Defect: missed").click()
    expect(page.locator("#status")).to_have_text("Reviewed as anomalous.")
    # The lookup shows the part again, now with its review.
    expect(cards.nth(0).locator(".facts")).to_contain_text("reviewed anomalous")
    review = api.get(f"/results/{passed}").json()["review"]
    assert (review["verdict"], review["agrees"], review["note"]) == ("anomalous", False, "cracked at assembly")
    assert api.get("/results/summary?source=line-9").json()["missed_anomalies"] == 1
    _look_up(page, "SN-NOWHERE")
    expect(page.locator("#status")).to_have_text("No result has the ref SN-NOWHERE.")


def test_without_keys_the_page_asks_for_none(tmp_path, browser):
    process, base, _ = start_service(tmp_path / "results.db")
    try:
        page = browser.new_page()
        page.goto(f"{base}/review-queue")
        expect(page.locator("#status")).to_have_text("Nothing to review.")
        expect(page.locator("#key-form")).to_be_hidden()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_wrong_key_is_said_and_the_queue_stays_empty(service, browser):
    base, _ = service
    page = browser.new_page()
    page.goto(f"{base}/review-queue")
    page.fill("#key", "not-the-key-0123456789")
    page.click("#key-form button")
    expect(page.locator("#status")).to_have_text("that API key is not valid")
    expect(page.locator("article.card")).to_have_count(0)


def test_behind_a_proxy_path_prefix_the_page_calls_only_under_it(tmp_path, browser):
    process, base, _ = start_service(tmp_path / "results.db", VAE_ROOT_PATH="/inspection")
    try:
        api = httpx.Client(base_url=base, timeout=30)
        flagged = _score(api, source="line-1", ref="SN-P", flagged=True)
        page = browser.new_page()
        requested = []
        page.on("request", lambda request: requested.append(request.url))

        def proxy(route):  # what the reverse proxy does: strip the prefix and pass the request on
            forwarded = route.fetch(url=route.request.url.replace(f"{base}/inspection", base, 1))
            route.fulfill(response=forwarded)

        page.route(f"{base}/inspection/**", proxy)
        page.goto(f"{base}/inspection/review-queue")
        cards = page.locator("article.card")
        expect(cards).to_have_count(1)
        _wait_until(lambda: cards.locator("img").evaluate_all("images => images.map(i => i.naturalWidth)") == [736])
        cards.nth(0).locator("button.normal").click()
        expect(page.locator("#status")).to_have_text("Nothing to review.")
        assert api.get(f"/results/{flagged}").json()["review"]["verdict"] == "normal"
        assert requested and all(url.startswith(f"{base}/inspection/") for url in requested), requested
    finally:
        process.terminate()
        process.wait(timeout=30)


def _two_flags_on_screen(service, browser, line: str):
    """The page showing a line's two flags, newest first: the page, the older flag's id and the newer's."""
    base, api = service
    older = _score(api, source=line, ref=f"{line}-first", flagged=True)
    newer = _score(api, source=line, ref=f"{line}-second", flagged=True)
    page = _open_with_key(browser, base, f"?source={line}")
    expect(page.locator("article.card")).to_have_count(2)
    return page, older, newer


def test_a_slip_of_the_finger_is_undone_and_the_flag_is_back_in_the_queue(service, browser):
    api = service[1]
    page, older, slipped = _two_flags_on_screen(service, browser, "line-11")
    cards = page.locator("article.card")
    undo = page.locator("#undo")
    expect(undo).to_be_hidden()  # nothing to undo yet
    page.locator("h1").click()
    page.keyboard.press("n")  # meant D
    expect(cards).to_have_count(1)
    expect(page.locator("#count")).to_have_text("1 flag to review · 1 reviewed in this tab")
    expect(undo).to_have_text("Undo: ref line-11-second reviewed normal (U)")
    assert api.get(f"/results/{slipped}").json()["review"]["verdict"] == "normal"

    page.keyboard.press("u")
    expect(page.locator("#status")).to_have_text("Undone: not reviewed.")
    expect(undo).to_be_hidden()
    expect(cards).to_have_count(2)
    assert [cards.nth(i).get_attribute("data-id") for i in range(2)] == [slipped, older]  # in its place again
    assert api.get(f"/results/{slipped}").json()["review"] is None
    trail = api.get(f"/results/{slipped}/reviews").json()
    assert [entry["verdict"] for entry in trail["items"]] == ["normal", None]  # the audit trail keeps the slip
    expect(page.locator("#count")).to_have_text("2 flags to review")  # and none reviewed in this tab

    cards.nth(0).locator("button.defect").click()  # what was meant
    expect(cards).to_have_count(1)
    assert api.get(f"/results/{slipped}").json()["review"]["verdict"] == "anomalous"


def test_undoing_a_second_review_puts_the_first_one_back(service, browser):
    base, api = service
    passed = _score(api, source="line-12", ref="SN-U3", flagged=False)
    first = {"verdict": "normal", "note": "checked at the bench", "reviewer": "op-2"}
    assert api.put(f"/results/{passed}/review", json=first).status_code == 200
    page = _open_with_key(browser, base)
    _look_up(page, "SN-U3")
    cards = page.locator("article.card")
    expect(cards).to_have_count(1)
    cards.nth(0).locator("button.defect").click()
    expect(cards.nth(0).locator(".facts")).to_contain_text("reviewed anomalous")
    page.click("#undo")
    expect(page.locator("#status")).to_have_text("Undone: back to its earlier review, normal.")
    expect(cards.nth(0).locator(".facts")).to_contain_text("reviewed normal by op-2")
    review = api.get(f"/results/{passed}").json()["review"]
    assert {key: review[key] for key in first} == first


def test_a_flag_reviewed_meanwhile_by_someone_else_is_left_as_they_reviewed_it(service, browser):
    api = service[1]
    page, older, shared = _two_flags_on_screen(service, browser, "line-13")
    cards = page.locator("article.card")
    # Another operator, on another screen, reviews the first flag while this page still shows it.
    theirs = {"verdict": "normal", "reviewer": "op-other"}
    assert api.put(f"/results/{shared}/review", json=theirs).status_code == 200
    page.locator("h1").click()
    page.keyboard.press("d")
    expect(page.locator("#status")).to_have_text("ref line-13-second was reviewed normal by op-other meanwhile, in "
                                                 "another tab or by someone else: left as it is.")
    expect(cards).to_have_count(1)
    assert cards.nth(0).get_attribute("data-id") == older
    review = api.get(f"/results/{shared}").json()["review"]
    assert (review["verdict"], review["reviewer"]) == ("normal", "op-other")
    expect(page.locator("#undo")).to_be_hidden()  # nothing of this tab's to undo

    # Nor does Undo overrule a review given after this tab's.
    page.keyboard.press("n")
    expect(cards).to_have_count(0)
    assert api.put(f"/results/{older}/review", json={"verdict": "anomalous", "reviewer": "op-other"}).status_code == 200
    page.keyboard.press("u")
    expect(page.locator("#status")).to_have_text("Not undone: it was reviewed again since, in another tab or by "
                                                 "someone else.")
    assert api.get(f"/results/{older}").json()["review"]["verdict"] == "anomalous"
    assert len(api.get(f"/results/{older}/reviews").json()["items"]) == 2  # this tab's and theirs, no withdrawal


def test_a_review_given_between_the_pages_check_and_its_own_is_not_overwritten(service, browser):
    api = service[1]
    page, _, shared = _two_flags_on_screen(service, browser, "line-14")
    cards = page.locator("article.card")
    theirs = {"verdict": "normal", "reviewer": "op-fast"}

    # The other operator's review lands after the page has read the result again, just before its own does.
    def review_first(route):
        assert api.put(f"/results/{shared}/review", json=theirs).status_code == 200
        route.continue_()

    page.route(f"**/results/{shared}/review", review_first)
    page.locator("h1").click()
    page.keyboard.press("d")
    expect(page.locator("#status")).to_have_text("ref line-14-second was reviewed normal by op-fast meanwhile, in "
                                                 "another tab or by someone else: left as it is.")
    expect(cards).to_have_count(1)
    review = api.get(f"/results/{shared}").json()["review"]
    assert (review["verdict"], review["reviewer"]) == ("normal", "op-fast")
    assert len(api.get(f"/results/{shared}/reviews").json()["items"]) == 1  # the page's review never landed
    expect(page.locator("#undo")).to_be_hidden()


def test_each_review_asks_for_the_count_once_also_when_it_empties_the_queue(service, browser):
    page, _, _ = _two_flags_on_screen(service, browser, "line-15")
    asked = []
    page.on("request", lambda request: asked.append(request.url) if "/results/summary" in request.url else None)
    page.locator("h1").click()
    page.keyboard.press("n")
    expect(page.locator("#count")).to_have_text("1 flag to review · 1 reviewed in this tab")
    page.keyboard.press("n")  # the last flag: the queue is read again
    expect(page.locator("#status")).to_have_text("Nothing to review.")
    expect(page.locator("#count")).to_have_text("0 flags to review · 2 reviewed in this tab")
    page.wait_for_timeout(500)  # room for a request that should not come
    assert len(asked) == 2, asked


def test_a_review_is_one_request_conditional_on_the_tag_the_queue_listed(service, browser):
    api = service[1]
    page, _, shown = _two_flags_on_screen(service, browser, "line-16")
    sent = []
    page.on("request", lambda request: sent.append((request.method, request.url.split("?")[0],
                                                     request.headers.get("if-match")))
            if f"/results/{shown}" in request.url else None)
    listed_tag = api.get(f"/results/{shown}").headers["etag"]
    page.locator("h1").click()
    page.keyboard.press("n")
    expect(page.locator("#status")).to_have_text("Reviewed as normal.")
    # No second read of the result before the review: the tag the list gave the card is the condition.
    assert [(method, url.rsplit("/results/", 1)[1], tag) for method, url, tag in sent] == [
        ("PUT", f"{shown}/review", listed_tag)]
    assert api.get(f"/results/{shown}").json()["review"]["verdict"] == "normal"
