"""The Prometheus alerting rules (monitoring/prometheus): their unit tests pass, every alert has one where it
fires, they name metrics and labels the real service exports, and a real Prometheus scrapes the service with
the example configuration and evaluates them."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import P_VALUE_BUCKETS
from tests.conftest import REPO_ROOT
from tests.service import free_port, start_service
from training.store import list_versions

RULES_DIR = REPO_ROOT / "monitoring" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
UNIT_TESTS = Path(__file__).parent / "alerts_test.yml"
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
READ_KEY = "prometheus-read-key-0123456789"
LATEST_COMMITTED_VERSION = max(list_versions(REPO_ROOT / "model_store" / "mnist-vae"))

# CI installs Prometheus (with promtool) and sets VAE_TEST_REQUIRE_PROMETHEUS, so that there a missing one
# fails these tests instead of skipping them.
requires_prometheus = pytest.mark.skipif(
    (PROMTOOL is None or PROMETHEUS is None) and not os.environ.get("VAE_TEST_REQUIRE_PROMETHEUS"),
    reason="needs Prometheus and promtool (apt-get install prometheus)")


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _promtool(*args: str) -> subprocess.CompletedProcess:
    assert PROMTOOL, "promtool is required here (VAE_TEST_REQUIRE_PROMETHEUS): apt-get install prometheus"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


@requires_prometheus
def test_the_rules_pass_their_unit_tests():
    completed = _promtool("test", "rules", str(UNIT_TESTS))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "SUCCESS" in completed.stdout


@requires_prometheus
def test_the_example_configuration_and_its_rules_are_valid():
    completed = _promtool("check", "config", str(RULES_DIR / "prometheus.yml"))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in completed.stdout  # the config loads this very file


def test_every_alert_has_a_unit_test_where_it_fires():
    fired = {case["alertname"] for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
             for case in test["alert_rule_test"] if case["exp_alerts"]}
    alerts = {rule["alert"] for rule in _rules()}
    assert alerts - fired == set()
    assert fired <= alerts


def test_every_alert_says_how_urgent_it_is_and_what_to_do():
    for rule in _rules():
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_the_flag_rate_alert_reads_a_bucket_the_p_value_histogram_has():
    # histogram buckets are cumulative: le="0.01" is the count at or below 0.01 only if 0.01 is a bound
    bounds = {float(bound) for bound in re.findall(r'vae_p_value_bucket\{le="([^"]+)"\}', RULES.read_text())}
    assert bounds == {0.01}
    assert bounds <= set(P_VALUE_BUCKETS)


# A metric's selector in a rule, `name{label="value", ...}` or a bare `name`.
_SELECTOR = re.compile(r"\b(vae_[a-z_]+)(\{[^}]*\})?")
_MATCHER = re.compile(r'([a-z_]+)\s*(?:=~|!=|!~|=)\s*"([^"]*)"')


def _selectors() -> list[tuple[str, dict[str, str]]]:
    found = []
    for rule in _rules():
        for name, matchers in _SELECTOR.findall(rule["expr"]):
            found.append((name, dict(_MATCHER.findall(matchers))))
    return found


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The real service with the committed model, after it has scored an image and refused a request."""
    process, base, _ = start_service(tmp_path_factory.mktemp("db") / "results.db")
    try:
        stroke = np.zeros((28, 28))
        stroke[4:24, 13:15] = 255  # a "1"
        assert httpx.post(f"{base}/score", files={"file": ("1.png", _png(stroke))}).status_code == 200
        assert httpx.post(f"{base}/score", files={"file": ("big.png", _png(np.zeros((40, 40))))}).status_code == 422
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_rules_name_metrics_and_labels_the_service_exports(service):
    exported: dict[str, list[dict]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{service}/metrics").text):
        for sample in family.samples:
            exported.setdefault(sample.name, []).append(sample.labels)
    selectors = _selectors()
    assert {name for name, _ in selectors} >= {"vae_request_duration_seconds_count", "vae_p_value_bucket",
                                               "vae_unreviewed_flags", "vae_results_store_writable",
                                               "vae_model_version"}
    for name, matchers in selectors:
        assert name in exported, f"{name} is not in /metrics"
        for label, value in matchers.items():
            assert any(label in labels for labels in exported[name]), f"{name} has no label {label!r}"
            if label == "route":  # a route the service records, as the rules spell it
                assert any(labels["route"] == value for labels in exported[name]), f"no route {value!r}"


def _configuration_for(service: str, key_file: Path, folder: Path) -> Path:
    """The example configuration, aimed at `service`, with the key in `key_file` as its comments say, scraping
    and evaluating every second."""
    text = (RULES_DIR / "prometheus.yml").read_text()
    commented = "    # authorization:\n    #   credentials_file: /etc/prometheus/vae-read-key\n"
    assert commented in text
    configuration = yaml.safe_load(text.replace(commented, commented.replace("# ", ""))
                                   .replace("/etc/prometheus/vae-read-key", str(key_file)))
    configuration["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    configuration["rule_files"] = [str(RULES)]
    configuration["scrape_configs"][0]["static_configs"] = [{"targets": [service.removeprefix("http://")]}]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(configuration))
    return path


def _query(api: str, query: str) -> list[dict]:
    return httpx.get(f"{api}/query", params={"query": query}).json()["data"]["result"]


def _until(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if outcome := condition():
            return outcome
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout} s")


@requires_prometheus
def test_a_real_prometheus_scrapes_the_service_and_evaluates_every_rule(tmp_path):
    assert PROMETHEUS, "Prometheus is required here (VAE_TEST_REQUIRE_PROMETHEUS): apt-get install prometheus"
    # With API keys, as in production: Prometheus scrapes with a key whose role is `read`.
    process, service, _ = start_service(tmp_path / "results.db", VAE_API_KEYS=f"prometheus {READ_KEY} read")
    assert httpx.get(f"{service}/metrics").status_code == 401
    key_file = tmp_path / "vae-read-key"
    key_file.write_text(READ_KEY + "\n")
    port = free_port()
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={_configuration_for(service, key_file, tmp_path)}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{port}/api/v1"

    def rules_evaluated():
        try:
            groups = httpx.get(f"{api}/rules").json()["data"]["groups"]
        except (httpx.TransportError, ValueError):
            return None
        rules = [rule for group in groups for rule in group["rules"]]
        # A rule not evaluated yet has the zero time, 0001-01-01T00:00:00Z.
        return rules if rules and all(not rule["lastEvaluation"].startswith("0001") for rule in rules) else None

    def alerts() -> dict[str, str]:
        return {alert["labels"]["alertname"]: alert["state"]
                for alert in httpx.get(f"{api}/alerts").json()["data"]["alerts"]}

    try:
        rules = _until(rules_evaluated)
        assert {rule["name"] for rule in rules} == {rule["alert"] for rule in _rules()}
        assert all(rule["health"] == "ok" for rule in rules), [(r["name"], r.get("lastError")) for r in rules]
        # scraped with the key: the served version's series, under the job the rules match
        model = _until(lambda: _query(api, "vae_model_version"))
        assert model[0]["metric"]["job"] == "vae-anomaly" and model[0]["value"][1] == str(LATEST_COMMITTED_VERSION)
        assert alerts() == {}  # a healthy service, just started: nothing pending
        process.terminate()
        process.wait(timeout=30)
        assert _until(alerts) == {"VaeServiceDown": "pending"}  # firing after 2 minutes
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
