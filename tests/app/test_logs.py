"""The log configuration that uvicorn applies in every worker: text or JSON lines."""

import io
import json
import logging
import logging.config

import pytest

from app.config import Settings
from app.logs import LOG_FORMAT, JsonLines, logging_config
from app.refusals import RefusalLog


@pytest.fixture
def captured_root():
    """The root logger configured by `logging_config`, writing into a buffer; restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def configure(log_format: str) -> io.StringIO:
        logging.config.dictConfig(logging_config("info", log_format))
        buffer = io.StringIO()
        root.handlers[0].setStream(buffer)
        return buffer

    yield configure
    root.handlers[:], root.level = saved[0], saved[1]


def test_json_lines_hold_one_record_each_with_its_traceback(captured_root):
    buffer = captured_root("json")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("app.main").exception("unhandled error on %s", "POST /score")
    first, second = [json.loads(line) for line in buffer.getvalue().splitlines()]  # two lines, not a traceback's
    assert first["level"] == "INFO" and first["logger"] == "uvicorn.error"
    assert first["message"] == "Started server process [7]" and first["time"].endswith("+00:00")
    assert second["message"] == "unhandled error on POST /score" and second["level"] == "ERROR"
    assert second["exception"].startswith("Traceback") and "ValueError: boom" in second["exception"]


def test_a_refused_requests_json_line_carries_its_request_id_and_status(captured_root):
    buffer = captured_root("json")
    RefusalLog(logging.getLogger("app.refused")).record("GET", "/results", "10.0.0.7:5", 422, "Invalid input",
                                                        "unknown query parameter 'x'", "5c0f2e9b")
    entry = json.loads(buffer.getvalue())
    assert (entry["request_id"], entry["status"], entry["logger"]) == ("5c0f2e9b", 422, "app.refused")
    assert entry["message"].startswith("refused GET /results from 10.0.0.7:5 (request 5c0f2e9b): 422")


def test_text_lines_are_the_same_for_uvicorn_and_the_service(captured_root):
    buffer = captured_root("text")
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    logging.getLogger("app.refused").info("refused GET /results")
    lines = buffer.getvalue().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "INFO uvicorn.error Application startup complete.", "INFO app.refused refused GET /results"]
    assert logging_config("info")["formatters"]["lines"] == {"format": LOG_FORMAT}
    assert logging_config("info", "json")["formatters"]["lines"] == {"()": JsonLines}


def test_the_log_format_is_text_or_json(monkeypatch):
    monkeypatch.setenv("VAE_LOG_FORMAT", "JSON")
    assert Settings().log_format == "json"
    monkeypatch.setenv("VAE_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="'text' or 'json'"):
        Settings()
