"""Anomaly score methods, computed inside the exported graph so every consumer gets identical numbers.

All scores are deterministic: the encoder's mean is decoded (no sampling at scoring time).
"""

from __future__ import annotations

import tensorflow as tf

from training.model import VAE, kl_divergence, reconstruction_nll

SCORE_METHODS = ("l1", "mse", "dssim", "neg_elbo", "unregularized", "kl")
# Structural dissimilarity window: a wide Gaussian (11x11, sigma 2.35) compares stroke structure rather
# than single pixels; it beat narrower windows and pixel errors on the one-class benchmark
# (docs/quality.md).
SSIM_WINDOW, SSIM_SIGMA = 11, 2.35
SCORE_DESCRIPTIONS = {
    "l1": "mean absolute pixel difference between image and reconstruction (the tutorial's score)",
    "mse": "mean squared pixel difference between image and reconstruction",
    "dssim": "structural dissimilarity 1 - SSIM between image and reconstruction (11x11 Gaussian window)",
    "neg_elbo": "negative ELBO at the posterior mean: reconstruction NLL + KL (the VAE cost)",
    "unregularized": "reconstruction NLL only, without the KL term (Matsubara et al. 2018)",
    "kl": "KL divergence of the approximate posterior from the prior alone",
}


def score_images(vae: VAE, images: tf.Tensor) -> dict[str, tf.Tensor]:
    """Everything the serving signature returns, for a float32 batch [N, 28, 28, 1] in [0, 1]."""
    z_mean, z_log_var = vae.encoder(images, training=False)
    logits = vae.decoder(z_mean, training=False)
    reconstruction = tf.sigmoid(logits)
    difference = images - reconstruction
    nll = reconstruction_nll(images, logits)
    kl = kl_divergence(z_mean, z_log_var)
    return {
        "reconstruction": reconstruction,
        "difference": difference,
        "l1": tf.reduce_mean(tf.abs(difference), axis=[1, 2, 3]),
        "mse": tf.reduce_mean(tf.square(difference), axis=[1, 2, 3]),
        "dssim": 1.0 - tf.image.ssim(images, reconstruction, max_val=1.0, filter_size=SSIM_WINDOW,
                                     filter_sigma=SSIM_SIGMA),
        "neg_elbo": nll + kl,
        "unregularized": nll,
        "kl": kl,
    }
