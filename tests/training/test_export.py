"""The exported SavedModel honours its contract, reloaded with nothing but TensorFlow."""

import numpy as np
import pytest

from training.config import SCORE_METHODS
from training.preprocessing import to_model_input
from training.store import list_versions, read_metadata


@pytest.fixture(scope="module")
def signature(tiny_model):
    import tensorflow as tf

    return tf.saved_model.load(str(tiny_model.path)).signatures["serving_default"]


def _images(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return to_model_input(rng.integers(0, 256, size=(n, 28, 28)))


def test_published_as_version_one(tiny_model, tiny_config):
    assert tiny_model.version == 1
    assert list_versions(tiny_config.store / tiny_config.name) == [1]


def test_signature_names_shapes_and_dtypes(signature):
    import tensorflow as tf

    (spec,) = signature.structured_input_signature[1].values()
    assert spec.name == "images" and spec.dtype == tf.float32 and spec.shape.as_list() == [None, 28, 28, 1]
    outputs = signature(images=tf.constant(_images(3)))
    assert set(outputs) == {"reconstruction", "difference", "score", *SCORE_METHODS}
    assert outputs["reconstruction"].shape == (3, 28, 28, 1)
    assert outputs["difference"].shape == (3, 28, 28, 1)
    for name in ("score", *SCORE_METHODS):
        assert outputs[name].shape == (3,) and outputs[name].dtype == tf.float32


def test_outputs_are_consistent(signature, tiny_model):
    import tensorflow as tf

    images = _images(4)
    outputs = {k: v.numpy() for k, v in signature(images=tf.constant(images)).items()}
    assert np.allclose(outputs["difference"], images - outputs["reconstruction"], atol=1e-6)
    assert np.all((outputs["reconstruction"] >= 0) & (outputs["reconstruction"] <= 1))
    assert np.allclose(outputs["score"], outputs[tiny_model.metadata["score_method"]])
    assert np.allclose(outputs["neg_elbo"], outputs["unregularized"] + outputs["kl"], rtol=1e-5)
    assert np.allclose(outputs["mse"], np.mean(outputs["difference"] ** 2, axis=(1, 2, 3)), rtol=1e-5)


def test_combined_score_follows_the_scale_recorded_in_metadata(signature, tiny_model):
    import tensorflow as tf

    outputs = {k: v.numpy() for k, v in signature(images=tf.constant(_images(4, seed=2))).items()}
    settings = tiny_model.metadata["dssim_knn"]
    scale = settings["log_standardisation"]
    standardised = {name: (np.log(outputs[name]) - scale[name]["mean"]) / scale[name]["std"]
                    for name in ("dssim", "latent_knn")}
    assert np.allclose(outputs["dssim_knn"],
                       standardised["dssim"] + settings["latent_weight"] * standardised["latent_knn"], atol=1e-4)
    assert settings["reference_codes"] == tiny_model.metadata["training"]["n_train"]


def test_scores_are_deterministic_and_independent_of_batch(signature):
    import tensorflow as tf

    images = _images(6, seed=1)
    first = signature(images=tf.constant(images))["score"].numpy()
    again = signature(images=tf.constant(images))["score"].numpy()
    alone = np.concatenate([signature(images=tf.constant(images[i:i + 1]))["score"].numpy()
                            for i in range(6)])
    assert np.array_equal(first, again)
    assert np.allclose(first, alone, rtol=1e-5)


def test_metadata_fields(tiny_model):
    metadata = read_metadata(tiny_model.path)
    for field in ("name", "version", "created_at", "score_method", "threshold", "target_fpr",
                  "calibration_scores", "normal_classes", "input", "training", "data",
                  "test_metrics", "reference_images", "library_versions", "heatmap_scale", "dssim_knn",
                  "calibration"):
        assert field in metadata, field
    assert metadata["version"] == 1 and metadata["normal_classes"] == [1]
    calibration = metadata["calibration_scores"]
    assert calibration == sorted(calibration) and len(calibration) == metadata["training"]["n_calibration"]
    assert metadata["calibration"]["n_images"] == len(calibration)
    assert len(metadata["data"]["sha256"]) == 64
    assert 0.0 <= metadata["test_metrics"]["auroc"] <= 1.0
    assert metadata["input"]["shape"] == [28, 28, 1]


def test_every_held_out_normal_calibrates_the_threshold(tiny_model, tiny_config):
    from training.calibration import conformal_threshold

    with np.load(tiny_config.data) as data:
        n_normals = int(np.isin(data["y_train"], tiny_config.normal).sum())
    training = tiny_model.metadata["training"]
    assert training["n_calibration"] == n_normals - training["n_train"] == (
        training["n_validation"] + round(n_normals * tiny_config.calibration_fraction))
    assert tiny_model.metadata["threshold"] == conformal_threshold(
        np.array(tiny_model.metadata["calibration_scores"]), tiny_config.target_fpr)


def test_reference_images_reproduce_their_recorded_scores(signature, tiny_model):
    import tensorflow as tf

    references = tiny_model.metadata["reference_images"]
    assert {r["kind"] for r in references} == {"normal", "anomalous"}
    images = to_model_input(np.array([r["pixels"] for r in references]))
    scores = signature(images=tf.constant(images))["score"].numpy()
    assert np.allclose(scores, [r["scores"]["score"] for r in references], rtol=1e-4)


def test_training_is_reproducible_for_a_fixed_seed(tiny_model, tiny_config):
    from training.train import train_and_publish

    again = train_and_publish(tiny_config)
    assert again.version == 2
    assert again.metadata["calibration_scores"] == pytest.approx(tiny_model.metadata["calibration_scores"],
                                                                  rel=1e-5)
