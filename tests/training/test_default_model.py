"""Acceptance: the committed default model, loaded with nothing but tf.saved_model.load, on real MNIST."""

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from training.metrics import auroc, rates_at_threshold
from training.store import list_versions, read_metadata

DEFAULT_MODEL_DIR = REPO_ROOT / "model_store" / "mnist-vae"

pytestmark = pytest.mark.mnist


@pytest.fixture(scope="module")
def default_model_scores(mnist_path):
    import tensorflow as tf

    version_dir = DEFAULT_MODEL_DIR / str(max(list_versions(DEFAULT_MODEL_DIR)))
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    with np.load(mnist_path) as data:
        images, labels = data["x_test"], data["y_test"]
    scores = np.concatenate([
        signature(images=tf.constant(images[i:i + 2000, :, :, None].astype(np.float32) / 255))["score"].numpy()
        for i in range(0, len(images), 2000)])
    return read_metadata(version_dir), scores, labels


def test_default_model_separates_ones_from_other_digits(default_model_scores):
    metadata, scores, labels = default_model_scores
    assert metadata["normal_classes"] == [1]
    assert auroc(labels != 1, scores) >= 0.9995  # the acceptance bar of issue 4


def test_default_model_false_positive_rate_matches_its_target(default_model_scores):
    metadata, scores, labels = default_model_scores
    fpr = rates_at_threshold(labels != 1, scores, metadata["threshold"])["fpr"]
    assert abs(fpr - metadata["target_fpr"]) <= 0.005
