"""The variational autoencoder: small named layers, a `Sampling` layer and a loss-tracking train step.

The decoder outputs Bernoulli logits (MNIST pixels are near-binary intensities in [0, 1]), so the
reconstruction term of the ELBO is the summed binary cross-entropy between image and logits.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from training.config import ARCHITECTURES

IMAGE_SHAPE = (28, 28, 1)


class Sampling(layers.Layer):
    """Draws z = mean + sigma * epsilon (the reparameterisation trick), seeded for reproducibility."""

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(tf.shape(z_mean), seed=self.seed_generator)
        return z_mean + tf.exp(0.5 * z_log_var) * epsilon


def build_encoder(architecture: str, latent_dim: int, hidden_units: int) -> keras.Model:
    images = keras.Input(shape=IMAGE_SHAPE, name="images")
    if architecture == "dense":
        x = layers.Flatten(name="flatten")(images)
        x = layers.Dense(hidden_units, activation="relu", name="hidden_1")(x)
        x = layers.Dense(hidden_units // 2, activation="relu", name="hidden_2")(x)
        return _posterior_heads(images, x, latent_dim)
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv_14x14")(images)
    x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="conv_7x7")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(hidden_units, activation="relu", name="hidden")(x)
    return _posterior_heads(images, x, latent_dim)


def _posterior_heads(images, features, latent_dim: int) -> keras.Model:
    z_mean = layers.Dense(latent_dim, name="z_mean")(features)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(features)
    return keras.Model(images, [z_mean, z_log_var], name="encoder")


def build_decoder(architecture: str, latent_dim: int, hidden_units: int) -> keras.Model:
    z = keras.Input(shape=(latent_dim,), name="z")
    if architecture == "dense":
        x = layers.Dense(hidden_units // 2, activation="relu", name="hidden_2")(z)
        x = layers.Dense(hidden_units, activation="relu", name="hidden_1")(x)
        x = layers.Dense(28 * 28, name="logits")(x)
        return keras.Model(z, layers.Reshape(IMAGE_SHAPE, name="logits_28x28")(x), name="decoder")
    x = layers.Dense(hidden_units, activation="relu", name="hidden")(z)
    x = layers.Dense(7 * 7 * 32, activation="relu", name="expand")(x)
    x = layers.Reshape((7, 7, 32), name="to_7x7")(x)
    x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu", name="deconv_14x14")(x)
    logits = layers.Conv2DTranspose(1, 3, strides=2, padding="same", name="logits_28x28")(x)
    return keras.Model(z, logits, name="decoder")


def reconstruction_nll(images: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-image Bernoulli negative log-likelihood, summed over pixels (nats)."""
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=images, logits=logits)
    return tf.reduce_sum(bce, axis=[1, 2, 3])


def kl_divergence(z_mean: tf.Tensor, z_log_var: tf.Tensor) -> tf.Tensor:
    """Per-image KL(q(z|x) || N(0, I)) in nats."""
    return -0.5 * tf.reduce_sum(1.0 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var), axis=1)


class VAE(keras.Model):
    def __init__(self, architecture: str = "dense", latent_dim: int = 16, hidden_units: int = 256,
                 beta: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {architecture!r}; choose one of {ARCHITECTURES}")
        self.beta = beta
        self.encoder = build_encoder(architecture, latent_dim, hidden_units)
        self.decoder = build_decoder(architecture, latent_dim, hidden_units)
        self.sampling = Sampling(seed=seed, name="sampling")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def call(self, images, training=False):
        z_mean, _ = self.encoder(images, training=training)
        return self.decoder(z_mean, training=training)

    def train_step(self, images):
        with tf.GradientTape() as tape:
            z_mean, z_log_var = self.encoder(images, training=True)
            z = self.sampling([z_mean, z_log_var])
            logits = self.decoder(z, training=True)
            reconstruction = tf.reduce_mean(reconstruction_nll(images, logits))
            kl = tf.reduce_mean(kl_divergence(z_mean, z_log_var))
            loss = reconstruction + self.beta * kl
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights, strict=True))
        self.loss_tracker.update_state(loss)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}
