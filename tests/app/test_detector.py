import numpy as np

from app.detector import SIGNATURE, Detector, to_model_input
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
