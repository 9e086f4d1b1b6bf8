"""The training job on a folder of the user's own normal images (no labels, so no anomalies to choose by)."""

import dataclasses

import numpy as np
from PIL import Image

from tests.synthetic import make_images


def test_a_folder_of_normals_trains_with_the_fallback_score_and_a_valid_threshold(tiny_config, tmp_path):
    from training.calibration import conformal_threshold
    from training.train import FALLBACK_SCORE_METHOD, train_and_publish

    folder = tmp_path / "normals"
    folder.mkdir()
    for i, pixels in enumerate(make_images(np.ones(120, int), seed=5)):
        Image.fromarray(pixels).save(folder / f"bar-{i:03d}.png")
    config = dataclasses.replace(tiny_config, data=None, images=str(folder), store=tmp_path / "store",
                                 name="folder")
    published = train_and_publish(config)

    metadata = published.metadata
    assert metadata["score_method"] == FALLBACK_SCORE_METHOD == "dssim_knn"
    assert metadata["normal_classes"] == ["folder"] and metadata["test_metrics"] is None
    assert metadata["validation_auroc_by_method"] == {}
    assert metadata["dssim_knn"]["reference_codes"] == metadata["training"]["n_train"]
    assert metadata["threshold"] == conformal_threshold(np.array(metadata["calibration_scores"]),
                                                        config.target_fpr)
    assert (published.path / "saved_model.pb").is_file()


def test_a_folder_of_dark_on_light_normals_is_inverted_into_every_split(tiny_config, tmp_path):
    from training.train import prepare_data

    folder = tmp_path / "scans"
    folder.mkdir()
    bars = make_images(np.ones(30, int), seed=5)
    for i, pixels in enumerate(bars):
        Image.fromarray(255 - pixels).save(folder / f"scan-{i:03d}.png")
    config = dataclasses.replace(tiny_config, data=None, images=str(folder), invert=True)

    data = prepare_data(config)

    loaded = np.concatenate([data.train, data.validation, data.calibration])
    assert sorted(map(bytes, loaded)) == sorted(map(bytes, bars))  # the original light-on-dark bars
