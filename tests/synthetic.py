"""A tiny MNIST-shaped data set that needs no download: class 1 is a vertical bar, others are shapes."""

from __future__ import annotations

import numpy as np


def _bar(rng) -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    x, width = rng.integers(11, 15), rng.integers(2, 4)
    image[4:24, x:x + width] = 255
    return image


def _ring(rng) -> np.ndarray:
    yy, xx = np.mgrid[:28, :28]
    radius = rng.uniform(6, 9)
    distance = np.hypot(yy - 14 + rng.uniform(-1, 1), xx - 14 + rng.uniform(-1, 1))
    return (np.abs(distance - radius) < 1.5).astype(np.uint8) * 255


def _cross(rng) -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    centre = rng.integers(12, 16)
    image[centre - 1:centre + 2, 4:24] = 255
    image[4:24, centre - 1:centre + 2] = 255
    return image


def make_images(labels: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    makers = {1: _bar, 0: _ring}
    return np.stack([makers.get(int(label), _cross)(rng) for label in labels])


def make_mnist_like(n_train: int = 600, n_test: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_train = rng.choice([0, 1, 1, 1, 7], size=n_train).astype(np.uint8)
    y_test = rng.choice([0, 1, 7], size=n_test).astype(np.uint8)
    return {"x_train": make_images(y_train, seed + 1), "y_train": y_train,
            "x_test": make_images(y_test, seed + 2), "y_test": y_test}


def write_mnist_like(path, **kwargs) -> None:
    np.savez_compressed(path, **make_mnist_like(**kwargs))
