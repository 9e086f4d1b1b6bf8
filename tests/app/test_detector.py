import numpy as np

from app.detector import SIGNATURE, Detector, to_float16, to_model_input
from tests.synthetic import make_images


def test_predictions_come_in_the_stored_types_with_numpys_rounding(tiny_model):
    import tensorflow as tf

    images = make_images(np.array([1, 0, 9, 1]), seed=5)
    predictions = Detector.load(tiny_model.path).predict(images)
    outputs = tf.saved_model.load(str(tiny_model.path)).signatures[SIGNATURE](
        images=tf.constant(to_model_input(images)))
    difference = outputs["difference"].numpy().reshape(-1, 28, 28)
    reconstruction = outputs["reconstruction"].numpy().reshape(-1, 28, 28)
    assert predictions.difference.dtype == np.float16
    # The same bits as numpy's conversion, subnormals (a near-black background's differences) included.
    assert np.array_equal(predictions.difference.view(np.uint16), difference.astype(np.float16).view(np.uint16))
    assert (np.abs(predictions.difference[predictions.difference != 0]) < 2 ** -14).any()
    assert predictions.reconstruction.dtype == np.uint8
    assert np.array_equal(predictions.reconstruction, np.rint(np.clip(reconstruction, 0, 1) * 255))


def test_float16_conversion_is_numpys_bit_for_bit():
    steps = 2.0 ** -24  # float16's subnormal step
    edges = np.array([0.0, -0.0, steps, -steps, steps / 2, 3 * steps / 2, 5 * steps / 2, steps / 2 * 0.999,
                      1023.5 * steps, 2.0 ** -14, -(2.0 ** -14) * 0.99999, 1e-40, 0.5, -0.999, 1.0, 65504.0],
                     np.float32)
    rng = np.random.default_rng(0)
    values = np.concatenate([edges, (rng.standard_normal(100_000) * 10.0 ** rng.uniform(-9, 0, 100_000))
                             .astype(np.float32)])
    assert np.array_equal(to_float16(values).view(np.uint16), values.astype(np.float16).view(np.uint16))
