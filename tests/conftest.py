"""Shared fixtures: a synthetic MNIST-like file and one tiny real model trained once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.synthetic import write_mnist_like

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The service's settings come from VAE_* variables: ones set in the shell that runs the tests (an API key,
# a results database, CORS origins) must not change what the tests see. VAE_TEST_* configure the tests.
for _name in [name for name in os.environ if name.startswith("VAE_") and not name.startswith("VAE_TEST_")]:
    del os.environ[_name]
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def synthetic_mnist(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "synthetic-mnist.npz"
    write_mnist_like(path)
    return path


@pytest.fixture(scope="session")
def tiny_config(synthetic_mnist, tmp_path_factory):
    from training.train import TrainConfig

    return TrainConfig(epochs=10, batch_size=64, latent_dim=4, hidden_units=64, seed=3,
                       target_fpr=0.05, data=str(synthetic_mnist),
                       store=tmp_path_factory.mktemp("store"), name="tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_config):
    """A real model trained for a few seconds, published into a temporary store (version 1)."""
    from training.train import train_and_publish

    return train_and_publish(tiny_config)


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    path = os.environ.get("MNIST_PATH")
    if not path or not Path(path).is_file():
        pytest.skip("real MNIST not available: set MNIST_PATH to mnist.npz")
    return Path(path)
