"""Every endpoint fuzzed from its own OpenAPI schema by schemathesis, against `python -m app` serving the
committed model: nothing a client sends gets a 5xx, and every answer has a documented status code, content
type and body. Its phases: the schema's examples; coverage (boundary and just-invalid values of every
parameter and body); random requests; and sequences that follow the OpenAPI links from a scored result to
its pictures and reviews.

Here the run is deterministic, so CI sends the same requests every time: a net for regressions, not a
search. Searches with fresh requests (FUZZ_EXAMPLES=1000 FUZZ_SEED=<any number>) are how the bugs were
found: a 500 for `?fpr=5e-324`, and a number read as a Unix time in `?since=`; each has its own test.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.service import start_service

API_KEY = "fuzz-key-0123456789abcdef"
EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "100")  # per operation, in the random and stateful phases
# What the service promises for every request. Not schemathesis' checks that judge by conventions the API
# deliberately departs from: a DELETE of /results/{id}/review withdraws the review, not the result, and a
# batch part that is not an image gets its own error item instead of failing the batch.
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def fuzzed_service(tmp_path_factory):
    # With an API key of the role `all`, so that requests reach the handlers instead of stopping at a 401.
    folder = tmp_path_factory.mktemp("fuzz")
    keys = folder / "api-keys"
    keys.write_text(f"fuzzer {API_KEY} all\n")
    process, base, _ = start_service(folder / "results.db", VAE_API_KEYS_FILE=str(keys))
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_no_request_gets_a_server_error_or_an_undocumented_answer(fuzzed_service, tmp_path):
    seed = os.environ.get("FUZZ_SEED")
    command = [sys.executable, "-m", "schemathesis.cli", "run", f"{fuzzed_service}/openapi.json",
               "--header", f"Authorization: Bearer {API_KEY}", "--checks", CHECKS,
               "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", EXAMPLES,
               "--workers", "1", "--request-timeout", "30", "--no-color",
               *(["--seed", seed, "--generation-database", "none"] if seed
                 else ["--seed", "1", "--generation-deterministic"])]
    run = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=tmp_path, check=False)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert "20 selected" in report or "Selected: 20/20" in report, report  # every operation was fuzzed
