"""The training job without labelled anomalies: a folder of the user's own normal images, or every digit normal."""

import dataclasses
import re

import numpy as np
import pytest
from PIL import Image

from tests.synthetic import make_images
from tests.training.test_evaluate import REPORT_FILES


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


def test_the_framing_is_recorded_so_the_service_frames_uploads_alike(tiny_model, tiny_config, tmp_path):
    from training.train import prepare_data

    assert tiny_model.metadata["input"]["framing"] == "mnist"  # trained on MNIST-shaped data
    assert "20x20" in tiny_model.metadata["input"]["framing_means"]

    folder = tmp_path / "pages"
    folder.mkdir()
    for i, pixels in enumerate(make_images(np.ones(30, int), seed=5)):
        page = np.zeros((200, 300), np.uint8)
        page[20:160, 40:180] = np.kron(pixels, np.ones((5, 5), np.uint8))  # off-centre, with margins
        Image.fromarray(page).save(folder / f"page-{i:03d}.png")
    padded = prepare_data(dataclasses.replace(tiny_config, data=None, images=str(folder)))
    framed = prepare_data(dataclasses.replace(tiny_config, data=None, images=str(folder), framing="mnist"))
    rows_with_ink = lambda images: (images.max(axis=2) > 64).sum(axis=1)  # noqa: E731
    assert (rows_with_ink(framed.train) == 20).all()  # cropped to the ink, fitted to MNIST's 20x20 box
    assert (rows_with_ink(padded.train) < 20).all()  # padded: the page's margins stay


def test_a_folder_model_records_pad_framing_by_default(tmp_path):
    from training.train import TrainConfig, framing_of

    assert framing_of(TrainConfig(images=str(tmp_path))) == "pad"
    assert framing_of(TrainConfig(images=str(tmp_path), framing="mnist")) == "mnist"
    assert framing_of(TrainConfig()) == "mnist"


def test_with_every_digit_normal_the_job_says_why_it_writes_no_report(tiny_config, tmp_path, caplog):
    from training.train import train_and_publish

    config = dataclasses.replace(tiny_config, normal=[0, 1, 7], epochs=1, store=tmp_path / "store")  # all classes
    with caplog.at_level("INFO", logger="training.train"):
        published = train_and_publish(config)
    assert published.metadata["test_metrics"] is None
    assert not (published.path / "assets.extra" / "report").exists()
    assert "no evaluation report: every test image is of a normal class (0 1 7)" in caplog.text
    assert "score method dssim_knn (no labelled anomalies to choose by: the benchmark's best)" in caplog.text


def _folder(path, labels, seed, invert=False):
    path.mkdir(parents=True)
    for i, pixels in enumerate(make_images(np.asarray(labels), seed=seed)):
        Image.fromarray(255 - pixels if invert else pixels).save(path / f"{i:03d}.png")
    return str(path)


def test_a_folder_model_with_test_folders_ships_its_evaluation(tiny_config, tmp_path):
    import json

    from training.catalog import read_catalog
    from training.train import train_and_publish

    config = dataclasses.replace(
        tiny_config, data=None, store=tmp_path / "store", name="parts",
        images=_folder(tmp_path / "train", np.ones(120, int), seed=5),
        test_normals=_folder(tmp_path / "test" / "good", np.ones(20, int), seed=6),
        test_anomalies=_folder(tmp_path / "defects" / "ring", np.zeros(8, int), seed=7))
    published = train_and_publish(config)

    report = published.path / "assets.extra" / "report"
    assert {p.name for p in report.iterdir()} == REPORT_FILES
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["n_normal"] == 20 and metrics["n_by_anomaly_kind"] == {"ring": 8}
    test_metrics = published.metadata["test_metrics"]
    assert test_metrics["n_normal"] == 20 and test_metrics["n_anomalous"] == 8
    assert test_metrics["auroc"] == metrics["primary"]["auroc"]  # the same images, the same scores
    assert read_catalog(tmp_path / "store" / "parts").versions[0].test_auroc == test_metrics["auroc"]
    # Where it was tested, for the versions recalibrated from it to be tested on the same folders, and what on
    recorded = dict(published.metadata["test_folders"])
    assert re.fullmatch("[0-9a-f]{64}", recorded.pop("fingerprint"))
    assert recorded == {"normals": str((tmp_path / "test" / "good").resolve()),
                        "anomalies": str((tmp_path / "defects" / "ring").resolve()), "invert": False}


def test_test_folders_are_checked_before_training(tiny_config, tmp_path):
    from training.data import DataError
    from training.train import prepare_data

    images = _folder(tmp_path / "train", np.ones(30, int), seed=5)
    base = dataclasses.replace(tiny_config, data=None, images=images)
    cases = [
        ({"test_normals": images + "/sub"}, "--test-normals needs --test-anomalies too"),
        ({"test_anomalies": "x"}, "--test-anomalies needs --test-normals too"),
        ({"test_normals": images, "test_anomalies": "x"}, f"--images {images} and --test-normals {images} are the "
                                                          "same folder"),
        ({"test_normals": str(tmp_path), "test_anomalies": "x"}, "lie one inside the other"),
        ({"test_normals": str(tmp_path / "absent"), "test_anomalies": str(tmp_path / "other")},
         "image folder not found"),
    ]
    for options, message in cases:
        with pytest.raises(DataError, match=re.escape(message)):
            prepare_data(dataclasses.replace(base, **options))
    light = _folder(tmp_path / "light", np.ones(10, int), seed=6, invert=True)
    anomalies = _folder(tmp_path / "anomalies", np.zeros(5, int), seed=7)
    with pytest.raises(DataError, match=re.escape("these images have a light background (median pixel 255), the "
                                                  "--images the opposite (0)")):
        prepare_data(dataclasses.replace(base, test_normals=light, test_anomalies=anomalies))
    with pytest.raises(DataError, match="apply to an --images folder; an MNIST model's report is on MNIST's test"):
        prepare_data(dataclasses.replace(tiny_config, test_normals=light, test_anomalies=anomalies))
