"""The scoring layer's own maths: the latent nearest-neighbour distance and the combined score."""

import numpy as np
import pytest

from training import scores
from training.preprocessing import to_model_input


@pytest.fixture(scope="module")
def untrained_vae():
    from training.model import VAE

    return VAE("dense", latent_dim=2, hidden_units=16, seed=0)


def _scorer(vae, codes):
    return scores.AnomalyScorer(vae, np.asarray(codes, dtype=np.float32))


def test_latent_distance_is_to_the_kth_nearest_reference_code(untrained_vae):
    import tensorflow as tf

    line = [[float(x), 0.0] for x in range(8)]  # codes at 0, 1, ..., 7 on the first axis
    scorer = _scorer(untrained_vae, line)
    queries = tf.constant([[0.2, 0.0], [3.0, 4.0]])
    # 5th nearest of 0.2 is 4 (distance 3.8); of (3, 4) the 5th nearest is 1 or 5 (distance sqrt(20)).
    assert scores.LATENT_NEIGHBOURS == 5
    assert scorer.kth_nearest_distance(queries).numpy() == pytest.approx([3.8, np.sqrt(20.0)], rel=1e-5)


def test_fewer_references_than_neighbours_use_the_farthest(untrained_vae):
    import tensorflow as tf

    scorer = _scorer(untrained_vae, [[0.0, 0.0], [0.0, 2.0]])
    assert scorer.neighbours == 2
    assert scorer.kth_nearest_distance(tf.constant([[0.0, -1.0]])).numpy() == pytest.approx([3.0])


def test_reference_codes_must_be_a_non_empty_matrix(untrained_vae):
    with pytest.raises(ValueError, match="non-empty"):
        _scorer(untrained_vae, np.zeros((0, 2)))


def test_combined_score_is_the_weighted_sum_of_standardised_logs(untrained_vae):
    rng = np.random.default_rng(0)
    images = to_model_input(rng.integers(0, 256, size=(6, 28, 28)))
    scorer = _scorer(untrained_vae, rng.normal(size=(20, 2)))
    raw = {k: v.numpy() for k, v in scorer(images).items()}
    scorer.standardise(raw["dssim"], raw["latent_knn"])
    outputs = {k: v.numpy() for k, v in scorer(images).items()}
    log_dssim, log_knn = np.log(raw["dssim"]), np.log(raw["latent_knn"])
    expected = ((log_dssim - log_dssim.mean()) / log_dssim.std()
                + scores.LATENT_WEIGHT * (log_knn - log_knn.mean()) / log_knn.std())
    assert outputs["dssim_knn"] == pytest.approx(expected, rel=1e-4, abs=1e-4)
    # On the images that fixed the scale, the combined score is centred on zero.
    assert abs(outputs["dssim_knn"].mean()) < 1e-4
    settings = scorer.settings()
    assert settings["reference_codes"] == 20 and settings["neighbours"] == 5
    assert settings["log_standardisation"]["dssim"]["mean"] == pytest.approx(log_dssim.mean(), rel=1e-5)


def test_reference_codes_are_capped_by_a_seeded_sample(untrained_vae, monkeypatch):
    monkeypatch.setattr(scores, "MAX_REFERENCE_CODES", 7)
    images = to_model_input(np.random.default_rng(1).integers(0, 256, size=(30, 28, 28)))
    first = scores.reference_codes(untrained_vae, images, seed=0)
    assert first.shape == (7, 2)
    assert np.array_equal(first, scores.reference_codes(untrained_vae, images, seed=0))
    assert scores.reference_codes(untrained_vae, images[:5], seed=0).shape == (5, 2)
