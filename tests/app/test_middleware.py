"""Request ids: every answer names its request, so that a client's report of a failure can be found in the log."""

from __future__ import annotations

import logging
import re

import pytest

from tests.app.conftest import png_bytes

GENERATED = re.compile(r"[0-9a-f]{24}")


def test_every_answer_has_a_new_request_id_and_a_problem_repeats_it(start_client, normal_pixels):
    client = start_client(max_upload_bytes=2048)
    scored = client.post("/score", files={"file": ("x.png", png_bytes(normal_pixels), "image/png")})
    refused = client.get("/results?limit=0")
    too_large = client.post("/score", content=b"\0" * 4000, headers={"content-type": "image/png"})
    ids = [r.headers["X-Request-ID"] for r in (scored, refused, too_large, client.get("/healthz"))]
    assert all(GENERATED.fullmatch(i) for i in ids) and len(set(ids)) == 4
    assert (refused.status_code, refused.json()["request_id"]) == (422, ids[1])
    assert (too_large.status_code, too_large.json()["request_id"]) == (413, ids[2])  # refused before the app


def test_a_clients_own_request_id_is_kept_and_logged(client, caplog):
    with caplog.at_level(logging.INFO, logger="app.refused"):
        refused = client.get("/results?limit=0", headers={"X-Request-ID": "line-3/plc-7:0042"})
    assert refused.headers["X-Request-ID"] == refused.json()["request_id"] == "line-3/plc-7:0042"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "app.refused"]
    assert line.startswith("refused GET /results from testclient:") and "(request line-3/plc-7:0042): 422" in line


@pytest.mark.parametrize("sent", [b"", b"has space", b"x" * 129, b"tab\there", "caf\u00e9".encode()])
def test_an_id_unfit_for_a_log_line_is_replaced(client, sent):
    answer = client.get("/healthz", headers={"X-Request-ID": sent})
    assert answer.status_code == 200 and GENERATED.fullmatch(answer.headers["X-Request-ID"])
