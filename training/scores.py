"""Anomaly score methods, computed inside the exported graph so every consumer gets identical numbers.

All scores are deterministic: the encoder's mean is decoded (no sampling at scoring time).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from training.model import VAE, kl_divergence, reconstruction_nll

# Structural dissimilarity window: a wide Gaussian (11x11, sigma 2.35) compares stroke structure rather
# than single pixels; it beat narrower windows and pixel errors on the one-class benchmark
# (docs/quality.md).
SSIM_WINDOW, SSIM_SIGMA = 11, 2.35
# The latent term: distance to the 5th-nearest training code, a quarter of the weight of `dssim` once both
# are standardised. Both were chosen on validation AUROC (held-out normals vs training-set anomalies),
# averaged over the ten one-class MNIST models (docs/quality.md).
LATENT_NEIGHBOURS, LATENT_WEIGHT = 5, 0.25
# Serving compares each image with every reference code; a cap keeps that cost bounded for big datasets.
MAX_REFERENCE_CODES = 10_000
_LOG_FLOOR = 1e-6  # both terms can be exactly 0 (a perfect reconstruction, a duplicated code)
SCORE_DESCRIPTIONS = {
    "l1": "mean absolute pixel difference between image and reconstruction (the tutorial's score)",
    "mse": "mean squared pixel difference between image and reconstruction",
    "dssim": "structural dissimilarity 1 - SSIM between image and reconstruction (11x11 Gaussian window)",
    "neg_elbo": "negative ELBO at the posterior mean: reconstruction NLL + KL (the VAE cost)",
    "unregularized": "reconstruction NLL only, without the KL term (Matsubara et al. 2018)",
    "kl": "KL divergence of the approximate posterior from the prior alone",
    "latent_knn": f"distance from the image's latent code to the {LATENT_NEIGHBOURS}th-nearest code of a "
                  "training normal (low where normal images are dense)",
    "dssim_knn": f"log dssim + {LATENT_WEIGHT} x log latent_knn, each standardised on held-out normals "
                 "(in standard deviations; 0 is a typical normal image)",
}


class AnomalyScorer(layers.Layer):
    """The VAE plus what scoring needs beyond its weights: the latent codes of the training normals, for
    the nearest-neighbour term, and the log-scale standardisation that lets `dssim_knn` add two terms.

    A reconstruction error alone misses a thin "7" that the model redraws as a "1" almost exactly, and
    over-flags the rare "1" with a base stroke that it cannot redraw. Where such images sit among the
    training codes helps to separate them: the rare "1" tends to have training neighbours, the "7" not.
    """

    def __init__(self, vae: VAE, reference_codes: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        reference_codes = np.asarray(reference_codes, dtype=np.float32)
        if reference_codes.ndim != 2 or len(reference_codes) == 0:
            raise ValueError("reference codes must be a non-empty [N, latent] array, "
                             f"got shape {reference_codes.shape}")
        self.vae = vae
        self.reference_codes = self.add_weight(
            name="reference_codes", shape=reference_codes.shape, trainable=False,
            initializer=keras.initializers.Constant(reference_codes))
        self.neighbours = min(LATENT_NEIGHBOURS, len(reference_codes))
        # [dssim, latent_knn] log-score means and standard deviations; identity until `standardise`.
        self.log_mean = self.add_weight(name="log_mean", shape=(2,), initializer="zeros", trainable=False)
        self.log_std = self.add_weight(name="log_std", shape=(2,), initializer="ones", trainable=False)

    def build(self, input_shape):
        # Every weight exists already (the VAE's from training, the rest from __init__); none depends on
        # the input shape.
        self.built = True

    def standardise(self, dssim: np.ndarray, latent_knn: np.ndarray) -> None:
        """Fix the scale of `dssim_knn` from the two raw scores of held-out normal images."""
        logs = np.log(np.maximum(np.stack([dssim, latent_knn], axis=1).astype(np.float64), _LOG_FLOOR))
        self.log_mean.assign(logs.mean(axis=0).astype(np.float32))
        self.log_std.assign(np.maximum(logs.std(axis=0), _LOG_FLOOR).astype(np.float32))

    def settings(self) -> dict:
        """What `dssim_knn` is made of, for the version's metadata."""
        mean, std = self.log_mean.numpy().tolist(), self.log_std.numpy().tolist()
        return {"neighbours": self.neighbours, "reference_codes": int(self.reference_codes.shape[0]),
                "latent_weight": LATENT_WEIGHT,
                "log_standardisation": {name: {"mean": mean[i], "std": std[i]}
                                        for i, name in enumerate(("dssim", "latent_knn"))}}

    def kth_nearest_distance(self, codes: tf.Tensor) -> tf.Tensor:
        references = tf.convert_to_tensor(self.reference_codes)
        squared = (tf.reduce_sum(tf.square(codes), axis=1, keepdims=True)
                   - 2.0 * tf.matmul(codes, references, transpose_b=True)
                   + tf.reduce_sum(tf.square(references), axis=1)[tf.newaxis, :])
        nearest = -tf.math.top_k(-squared, k=self.neighbours, sorted=True).values
        return tf.sqrt(tf.maximum(nearest[:, -1], 0.0))

    def call(self, images):
        """Everything the serving signature returns, for a float32 batch [N, 28, 28, 1] in [0, 1]."""
        z_mean, z_log_var = self.vae.encoder(images, training=False)
        logits = self.vae.decoder(z_mean, training=False)
        reconstruction = tf.sigmoid(logits)
        difference = images - reconstruction
        nll = reconstruction_nll(images, logits)
        kl = kl_divergence(z_mean, z_log_var)
        dssim = 1.0 - tf.image.ssim(images, reconstruction, max_val=1.0, filter_size=SSIM_WINDOW,
                                    filter_sigma=SSIM_SIGMA)
        latent_knn = self.kth_nearest_distance(z_mean)
        standardised = (tf.math.log(tf.maximum(tf.stack([dssim, latent_knn], axis=1), _LOG_FLOOR))
                        - self.log_mean) / self.log_std
        return {
            "reconstruction": reconstruction,
            "difference": difference,
            "l1": tf.reduce_mean(tf.abs(difference), axis=[1, 2, 3]),
            "mse": tf.reduce_mean(tf.square(difference), axis=[1, 2, 3]),
            "dssim": dssim,
            "neg_elbo": nll + kl,
            "unregularized": nll,
            "kl": kl,
            "latent_knn": latent_knn,
            "dssim_knn": standardised[:, 0] + LATENT_WEIGHT * standardised[:, 1],
        }


def reference_codes(vae: VAE, train_images: np.ndarray, seed: int, batch_size: int = 2048) -> np.ndarray:
    """Posterior means of the training normals (a seeded sample of at most MAX_REFERENCE_CODES)."""
    if len(train_images) > MAX_REFERENCE_CODES:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(train_images), MAX_REFERENCE_CODES, replace=False))
        train_images = train_images[keep]
    encode = tf.function(lambda images: vae.encoder(images, training=False)[0])
    return np.concatenate([encode(tf.constant(train_images[i:i + batch_size])).numpy()
                           for i in range(0, len(train_images), batch_size)])
