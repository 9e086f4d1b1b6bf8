"""Refused requests are logged, one line each, without a misbehaving client flooding the log."""

from __future__ import annotations

import logging

from app.refusals import RefusalLog
from tests.app.conftest import png_bytes


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_at_most_a_burst_per_interval_and_the_next_line_counts_the_rest(caplog):
    clock = FakeClock()
    refusals = RefusalLog(logging.getLogger("test.refused"), burst=3, interval_s=10, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.refused"):
        for i in range(50):
            refusals.record("POST", "/score", "10.0.0.7:5000", 422, "Invalid input", f"attempt {i}")
        assert [r.getMessage().split(": ")[-1] for r in caplog.records] == ["attempt 0", "attempt 1", "attempt 2"]
        clock.now = 10.0
        refusals.record("POST", "/score", "10.0.0.7:5000", 422, "Invalid input", "attempt 50")
    assert caplog.records[-1].getMessage() == ("refused POST /score from 10.0.0.7:5000: 422 Invalid input: "
                                               "attempt 50 (47 more refused requests were not logged)")


def test_a_clients_line_breaks_and_long_details_stay_on_one_short_line(caplog):
    refusals = RefusalLog(logging.getLogger("test.refused"))
    with caplog.at_level(logging.INFO, logger="test.refused"):
        refusals.record("GET", "/results/x\nFAKE log line", "c", 422, "Invalid input", "y" * 1000 + "\r\nFAKE")
    (line,) = [record.getMessage() for record in caplog.records]
    assert "\n" not in line and "\r" not in line and "x\\nFAKE" in line and len(line) < 400


def test_the_service_logs_why_it_refused_a_request(client, normal_pixels, caplog):
    with caplog.at_level(logging.INFO, logger="app.refused"):
        client.post("/score?inverted=true", files={"file": ("x.png", png_bytes(normal_pixels), "image/png")})
        client.get("/results?limit=0")
        client.post("/score", content=b"\0" * 100, headers={"Content-Type": "image/png"})
        assert client.get("/healthz").status_code == 200
    lines = [record.getMessage() for record in caplog.records if record.name == "app.refused"]
    assert len(lines) == 3, lines
    assert lines[0].startswith("refused POST /score from testclient:") and "422 Invalid input: unknown query " \
        "parameter 'inverted'" in lines[0]
    assert "GET /results" in lines[1] and "422 Invalid request: query.limit" in lines[1]
    assert "400 Undecodable image" in lines[2]


def test_a_refused_head_is_logged_as_the_head_it_was(client, caplog):
    with caplog.at_level(logging.INFO, logger="app.refused"):
        assert client.head("/results/" + "0" * 32).status_code == 404  # answered as a GET, without the body
    (line,) = [record.getMessage() for record in caplog.records if record.name == "app.refused"]
    assert line.startswith(f"refused HEAD /results/{'0' * 32} from testclient:") and "404 Not found" in line


def test_an_oversized_body_refused_by_the_middleware_is_logged_too(start_client, caplog):
    client = start_client(max_upload_bytes=2048)
    with caplog.at_level(logging.INFO, logger="app.refused"):
        assert client.post("/score", content=b"\0" * 4096, headers={"Content-Type": "image/png"}).status_code == 413
    assert any("413 Payload too large: request body is 4096 bytes" in r.getMessage() for r in caplog.records)
