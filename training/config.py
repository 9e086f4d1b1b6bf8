"""The training job's options, without TensorFlow.

The command line reads its defaults and choices here, so that the commands that need no model
(`versions`, `rollback`, `prune`, `--help`) answer in a fraction of a second instead of the seconds it
takes to import TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ARCHITECTURES = ("dense", "conv")  # training/model.py builds each
SCORE_METHODS = ("l1", "mse", "dssim", "neg_elbo", "unregularized", "kl", "latent_knn", "dssim_knn")  # training/scores.py


@dataclass
class TrainConfig:
    normal: list[int] = field(default_factory=lambda: [1])
    epochs: int = 80
    batch_size: int = 128
    latent_dim: int = 32
    hidden_units: int = 256
    architecture: str = "dense"
    beta: float = 1.0
    learning_rate: float = 1e-3
    seed: int = 0
    target_fpr: float = 0.01
    calibration_fraction: float = 0.2
    validation_fraction: float = 0.1
    score_method: str = "auto"
    store: Path = Path("model_store")
    name: str = "mnist-vae"
    data: str | None = None
    images: str | None = None
    invert: bool = False  # the --images folder holds dark-on-light images
    framing: str | None = None  # how --images of other sizes are framed (training/framing.py); default pad
    test_normals: str | None = None    # with --images: normal test images, for the version's report
    test_anomalies: str | None = None  # and anomalous ones, a subfolder per kind
    verbose: int | None = None  # Keras fit verbosity; None: a progress bar on a terminal, else a line per epoch
