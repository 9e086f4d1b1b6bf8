"""Export a trained VAE as a SavedModel whose `serving_default` signature does all the scoring."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from training.model import IMAGE_SHAPE
from training.scores import AnomalyScorer

SIGNATURE_NAME = "serving_default"
INPUT_NAME = "images"
INPUT_SPEC = tf.TensorSpec(shape=(None, *IMAGE_SHAPE), dtype=tf.float32, name=INPUT_NAME)


def serving_function(scorer: AnomalyScorer, score_method: str) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """images [N, 28, 28, 1] -> reconstruction, difference, score (the primary method) and every method."""

    def serve(images):
        outputs = scorer(images)
        return {**outputs, "score": tf.identity(outputs[score_method], name="score")}

    return serve


def export_saved_model(scorer: AnomalyScorer, score_method: str, directory: Path) -> None:
    scorer(tf.zeros((1, *IMAGE_SHAPE)))  # builds it: train_step calls the VAE's sub-models, never the VAE
    archive = keras.export.ExportArchive()
    archive.track(scorer)
    archive.add_endpoint(name=SIGNATURE_NAME, fn=serving_function(scorer, score_method),
                         input_signature=[INPUT_SPEC])
    try:
        archive.write_out(str(directory), verbose=False)
    except tf.errors.OpError as error:
        # TensorFlow's file system reports a full disk as a ResourceExhaustedError that keeps only the text
        # of the errno; as an OSError it is a full disk like any other write's (training/writable.py).
        for code in (errno.ENOSPC, errno.EDQUOT):
            if os.strerror(code) in error.message:
                raise OSError(code, os.strerror(code), str(directory)) from error
        raise
