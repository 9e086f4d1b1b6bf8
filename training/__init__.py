"""Offline job: train a VAE on normal images, calibrate it, publish a versioned SavedModel."""
