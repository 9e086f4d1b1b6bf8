import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.synthetic import make_images
from training.calibration import CalibrationError, conformal_threshold, pixel_threshold
from training.cli import main
from training.data import DataError, fingerprint
from training.evaluate import saved_model_outputs
from training.preprocessing import framing_of_version
from training.recalibrate import (
    NormalImages,
    recalibrate_and_publish,
    recalibrate_sources_and_publish,
)
from training.store import list_versions, read_metadata
from training.test_sets import LabelledImages, folder_test_set

SAVED_MODEL_FILES = ("saved_model.pb", "fingerprint.pb", "variables/variables.index")


@pytest.fixture
def version_dir(tmp_path, tiny_model):
    """A private copy of the tiny model as version 1 (the session's store stays untouched)."""
    target = tmp_path / "store" / "tiny" / "1"
    shutil.copytree(tiny_model.path, target)
    return target


def _normals(count: int, seed: int = 11) -> NormalImages:
    images = make_images(np.ones(count, int), seed)
    return NormalImages(images, "synthetic bars", fingerprint(images))


def test_the_new_version_has_the_same_model_and_a_threshold_from_the_new_images(version_dir):
    before = read_metadata(version_dir)
    normals = _normals(120)

    published = recalibrate_and_publish(version_dir, normals, target_fpr=0.1)

    assert published.version == 2 and list_versions(version_dir.parent) == [1, 2]
    for name in SAVED_MODEL_FILES:
        assert (published.path / name).read_bytes() == (version_dir / name).read_bytes(), name
    metadata = read_metadata(published.path)
    scores = saved_model_outputs(version_dir, normals.images, progress=False)
    assert metadata["calibration_scores"] == pytest.approx(np.sort(scores[before["score_method"]]).tolist())
    assert metadata["threshold"] == conformal_threshold(scores[before["score_method"]], 0.1)
    assert metadata["thresholds_by_method"]["mse"] == conformal_threshold(scores["mse"], 0.1)
    assert metadata["target_fpr"] == 0.1
    assert metadata["heatmap_scale"] == pixel_threshold(scores["difference"], 0.1)
    assert metadata["calibration"] == {"source": "synthetic bars", "sha256": normals.fingerprint, "n_images": 120,
                                       "recalibrated_from": {"name": "tiny", "version": 1},
                                       "previous_threshold": before["threshold"],
                                       "fpr_at_previous_threshold": pytest.approx(
                                           np.mean(scores[before["score_method"]] > before["threshold"]))}
    for unchanged in ("score_method", "dssim_knn", "reference_images", "training", "normal_classes"):
        assert metadata[unchanged] == before[unchanged], unchanged
    assert metadata["test_metrics"] is None and not (published.path / "assets.extra" / "report").exists()
    assert read_metadata(version_dir) == before  # the source version is left alone


def test_the_target_fpr_defaults_to_the_source_versions(version_dir):
    published = recalibrate_and_publish(version_dir, _normals(60))
    assert published.metadata["target_fpr"] == read_metadata(version_dir)["target_fpr"]


def test_with_a_labelled_test_set_the_new_version_ships_its_evaluation(version_dir, tiny_config):
    with np.load(tiny_config.data) as data:
        test_set = LabelledImages(data["x_test"], data["y_test"], data["y_test"] != 1, "MNIST test set")

    # A rate far from the source's 5 %, so metrics at the old threshold would not pass for new ones.
    published = recalibrate_and_publish(version_dir, _normals(60), target_fpr=0.5, test_set=test_set)

    metadata = read_metadata(published.path)
    scores = saved_model_outputs(version_dir, test_set.images, progress=False)[metadata["score_method"]]
    is_normal = test_set.labels == 1
    assert metadata["test_metrics"]["fpr"] == np.mean(scores[is_normal] > metadata["threshold"])
    assert metadata["test_metrics"]["fpr"] > 0.2
    report = json.loads((published.path / "assets.extra" / "report" / "metrics.json").read_text())
    assert report["model"]["version"] == 2 and report["model"]["threshold"] == metadata["threshold"]


def test_a_test_set_without_anomalies_publishes_without_a_report_and_says_why(version_dir, caplog):
    # As for a model trained with every digit normal: it was a traceback from the AUROC, and no version
    only_normals = LabelledImages(make_images(np.ones(20, int), seed=5), np.ones(20, int), np.zeros(20, bool),
                                  "MNIST test set")
    with caplog.at_level("WARNING", logger="training.recalibrate"):
        published = recalibrate_and_publish(version_dir, _normals(60), target_fpr=0.5, test_set=only_normals)
    assert read_metadata(published.path)["test_metrics"] is None
    assert not (published.path / "assets.extra" / "report").exists()
    assert "no evaluation report: no anomalous image in the MNIST test set" in caplog.text


def test_too_few_images_for_the_target_fpr_publish_nothing(version_dir):
    with pytest.raises(CalibrationError, match="at least 19"):
        recalibrate_and_publish(version_dir, _normals(10), target_fpr=0.05)
    assert sorted(p.name for p in version_dir.parent.iterdir() if not p.name.startswith(".publish")) == ["1"]


def test_a_folder_mostly_flagged_is_refused_as_not_normal_unless_vouched_for(version_dir, tmp_path):
    # Rings and crosses for a model of bars: the wrong folder. Calibrated on, they would lift the threshold
    # above most anomalies, and a running service would serve that version at once.
    anomalies = make_images(np.r_[np.zeros(30, int), np.full(30, 7)], seed=12)
    folder = _image_folder(tmp_path / "wrong-folder", anomalies)
    argv = ["recalibrate", "--model", str(version_dir), "--images", str(folder), "--no-report"]
    assert main(argv) == 2
    assert list_versions(version_dir.parent) == [1]
    assert main([*argv, "--even-if-flagged"]) == 0  # the operator vouches for them: a shift to calibrate for
    assert read_metadata(version_dir.parent / "2")["calibration"]["fpr_at_previous_threshold"] > 0.5


def test_the_refusal_of_a_mostly_flagged_folder_says_what_to_check(version_dir):
    anomalies = make_images(np.zeros(60, int), seed=12)
    with pytest.raises(CalibrationError, match=r"\d+ % of these 60 images score above the threshold that applies "
                                               r"to them now \(version 1's, set to flag 5 % of normal images\)"):
        recalibrate_and_publish(version_dir, NormalImages(anomalies, "rings", fingerprint(anomalies)))
    vouched = NormalImages(anomalies, "rings", fingerprint(anomalies), vouched_for=True)  # reviewed results
    assert recalibrate_and_publish(version_dir, vouched).version == 2


def test_even_if_flagged_is_for_folders_as_reviewed_results_need_no_such_word(version_dir, tmp_path, capsys):
    argv = ["recalibrate", "--model", str(version_dir), "--results", str(tmp_path / "r.db"), "--even-if-flagged"]
    assert main(argv) == 2
    assert "--even-if-flagged applies to --images" in capsys.readouterr().err


def test_the_service_loads_and_self_checks_a_recalibrated_version(version_dir):
    from app.detector import Detector

    published = recalibrate_and_publish(version_dir, _normals(60), target_fpr=0.1)
    detector = Detector.load(published.path)
    detector.self_check()
    assert detector.version == 2 and detector.threshold == published.metadata["threshold"]


def _image_folder(path, images):
    path.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(path / f"{i:03d}.png")
    return path


def test_cli_recalibrates_the_latest_version(version_dir, tmp_path, tiny_config, capsys):
    folder = _image_folder(tmp_path / "normals", _normals(40).images)
    code = main(["recalibrate", "--store", str(version_dir.parent.parent), "--name", "tiny",
                 "--images", str(folder), "--data", tiny_config.data, "--target-fpr", "0.1"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["version"] == 2 and summary["recalibrated_from"] == 1 and summary["n_images"] == 40
    assert summary["previous_threshold"] == read_metadata(version_dir)["threshold"]
    assert 0.0 <= summary["test_metrics"]["fpr"] <= 1.0  # an MNIST-class model ships its report
    assert (version_dir.parent / "2" / "assets.extra" / "report" / "report.md").is_file()


def test_cli_without_mnist_names_the_way_out_and_no_report_publishes_without_it(version_dir, tmp_path, capsys):
    folder = _image_folder(tmp_path / "normals", _normals(40).images)
    argv = ["recalibrate", "--model", str(version_dir), "--images", str(folder), "--target-fpr", "0.1",
            "--data", str(tmp_path / "absent.npz")]
    assert main(argv) == 2
    assert "pass --no-report to publish without it" in capsys.readouterr().err
    assert main([*argv, "--no-report"]) == 0
    assert read_metadata(version_dir.parent / "2")["test_metrics"] is None
    assert not (version_dir.parent / "2" / "assets.extra" / "report").exists()


@pytest.mark.parametrize("problem, message", [
    ("no folder", "image folder not found"),
    ("too few", "at least 99"),
    ("not a version", "is not a model version folder (no saved_model.pb or assets.extra/metadata.json)"),
    ("no metadata", "is not a model version folder (no assets.extra/metadata.json)"),
])
def test_cli_errors_exit_2_with_a_reason_and_publish_nothing(problem, message, version_dir, tmp_path,
                                                             tiny_config, capsys):
    folder = _image_folder(tmp_path / "normals", _normals(40).images)
    argv = ["recalibrate", "--model", str(version_dir), "--images", str(folder), "--data", tiny_config.data]
    if problem == "no folder":
        argv[4] = str(tmp_path / "absent")
    elif problem == "too few":
        argv += ["--target-fpr", "0.01"]
    elif problem == "not a version":
        argv[2] = str(tmp_path)
    else:
        half_written = tmp_path / "half"
        half_written.mkdir()
        (half_written / "saved_model.pb").write_bytes((version_dir / "saved_model.pb").read_bytes())
        argv[2] = str(half_written)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list_versions(version_dir.parent) == [1]


def test_images_with_the_opposite_background_are_refused_until_inverted(version_dir, tmp_path, tiny_config, capsys):
    folder = _image_folder(tmp_path / "scans", 255 - _normals(40).images)  # dark bars on white paper
    argv = ["recalibrate", "--model", str(version_dir), "--images", str(folder), "--data", tiny_config.data,
            "--target-fpr", "0.1"]
    assert main(argv) == 2
    assert "light background (median pixel 255)" in capsys.readouterr().err
    assert list_versions(version_dir.parent) == [1]

    assert main([*argv, "--invert"]) == 0
    summary = json.loads(capsys.readouterr().out)
    metadata = read_metadata(version_dir.parent / "2")
    assert metadata["calibration"]["source"].endswith(", inverted")
    assert summary["fpr_at_previous_threshold"] == metadata["calibration"]["fpr_at_previous_threshold"] < 0.5


def test_folder_images_are_framed_as_the_model_frames_them(version_dir, tmp_path, tiny_config, capsys):
    # The tiny model is MNIST-framed, so un-inverted pages of paper are refused by the framing itself.
    pages = np.full((40, 120, 160), 230, np.uint8)
    pages[:, 10:94, 30:114] -= np.kron(_normals(40).images, np.ones((3, 3), np.uint8)) // 255 * 200
    folder = _image_folder(tmp_path / "pages", pages)
    argv = ["recalibrate", "--model", str(version_dir), "--images", str(folder), "--data", tiny_config.data,
            "--target-fpr", "0.1"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "000.png: the image's background is light (median pixel 230 of 255)" in error
    assert "cannot decode" not in error  # it decoded fine; it is the wrong way round
    assert main([*argv, "--invert"]) == 0
    published = json.loads(capsys.readouterr().out)
    assert published["fpr_at_previous_threshold"] < 0.5  # framed as MNIST, the pages look like the normals


def test_a_version_with_an_unknown_framing_is_a_clean_error(version_dir, tmp_path, capsys):
    metadata_file = version_dir / "assets.extra" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["input"]["framing"] = "crop"
    metadata_file.write_text(json.dumps(metadata))
    folder = _image_folder(tmp_path / "normals", _normals(40).images)
    assert main(["recalibrate", "--model", str(version_dir), "--images", str(folder), "--no-report"]) == 2
    assert "input framing 'crop' is unknown" in capsys.readouterr().err
    assert list_versions(version_dir.parent) == [1]


def test_for_a_source_only_that_sources_threshold_is_calibrated(version_dir):
    before = read_metadata(version_dir)
    line_3, line_4 = _normals(60, seed=3), _normals(40, seed=4)

    first = recalibrate_and_publish(version_dir, line_3, target_fpr=0.1, for_source="line-3")
    second = recalibrate_and_publish(first.path, line_4, target_fpr=0.05, for_source="line-4")

    metadata = read_metadata(second.path)
    for unchanged in ("threshold", "thresholds_by_method", "target_fpr", "calibration_scores", "calibration",
                      "heatmap_scale", "score_method", "reference_images"):
        assert metadata[unchanged] == before[unchanged], unchanged  # the model's own calibration stays
    primary = before["score_method"]
    for name, normals, fpr in (("line-3", line_3, 0.1), ("line-4", line_4, 0.05)):  # line-3's carried over
        scores = saved_model_outputs(version_dir, normals.images, progress=False)[primary]
        entry = metadata["source_calibrations"][name]
        assert entry["threshold"] == conformal_threshold(scores, fpr) and entry["target_fpr"] == fpr
        assert entry["calibration_scores"] == pytest.approx(np.sort(scores).tolist())
        assert entry["calibration"]["sha256"] == normals.fingerprint
        assert entry["calibration"]["fpr_at_previous_threshold"] == pytest.approx(
            np.mean(scores > before["threshold"]))  # neither had a threshold of its own before
    assert set(metadata["source_calibrations"]) == {"line-3", "line-4"}


def test_several_sources_are_calibrated_in_one_version_and_the_others_kept(version_dir):
    first = recalibrate_and_publish(version_dir, _normals(60, seed=3), target_fpr=0.1, for_source="line-3")
    own = first.metadata["source_calibrations"]["line-3"]
    line_4, line_5 = _normals(40, seed=4), _normals(30, seed=5)

    second = recalibrate_sources_and_publish(first.path, {"line-5": line_5, "line-4": line_4})

    assert second.version == 3 and list_versions(version_dir.parent) == [1, 2, 3]
    metadata = read_metadata(second.path)
    assert metadata["origin"] == {"made_by": "recalibrate", "from_version": 2, "sources": ["line-4", "line-5"]}
    assert metadata["source_calibrations"]["line-3"] == own  # not named: kept as it was
    primary, model_fpr = metadata["score_method"], first.metadata["target_fpr"]
    for name, normals in (("line-4", line_4), ("line-5", line_5)):
        scores = saved_model_outputs(version_dir, normals.images, progress=False)[primary]
        entry = metadata["source_calibrations"][name]
        assert entry["threshold"] == conformal_threshold(scores, model_fpr)  # no target given: the model's
        assert entry["calibration"]["sha256"] == normals.fingerprint
        assert entry["calibrated_at"] == metadata["created_at"]
    assert metadata["threshold"] == first.metadata["threshold"]


def test_recalibrating_a_source_again_measures_against_its_own_threshold(version_dir):
    first = recalibrate_and_publish(version_dir, _normals(60, seed=3), target_fpr=0.1, for_source="line-3")
    own = first.metadata["source_calibrations"]["line-3"]["threshold"]
    again = _normals(60, seed=8)

    second = recalibrate_and_publish(first.path, again, for_source="line-3")  # its own 0.1, not the model's 0.05

    scores = saved_model_outputs(version_dir, again.images, progress=False)[first.metadata["score_method"]]
    entry = second.metadata["source_calibrations"]["line-3"]
    assert entry["calibration"]["previous_threshold"] == own and entry["target_fpr"] == 0.1
    assert entry["calibration"]["fpr_at_previous_threshold"] == pytest.approx(np.mean(scores > own))
    assert entry["calibration"]["recalibrated_from"] == {"name": "tiny", "version": 2}


def test_recalibrating_the_model_keeps_the_sources_thresholds(version_dir):
    with_source = recalibrate_and_publish(version_dir, _normals(60, seed=3), target_fpr=0.1, for_source="line-3")
    model_wide = recalibrate_and_publish(with_source.path, _normals(60, seed=9), target_fpr=0.3)
    assert model_wide.metadata["target_fpr"] == 0.3
    assert model_wide.metadata["threshold"] != with_source.metadata["threshold"]
    assert model_wide.metadata["source_calibrations"] == with_source.metadata["source_calibrations"]


def test_the_service_applies_a_sources_calibration_to_that_source_only(version_dir):
    from app.detector import Detector

    published = recalibrate_and_publish(version_dir, _normals(60, seed=3), target_fpr=0.1, for_source="line-3")
    detector = Detector.load(published.path)
    detector.self_check()
    entry = published.metadata["source_calibrations"]["line-3"]
    line_3 = detector.calibration_for("line-3")
    assert (line_3.threshold, line_3.target_fpr, line_3.source) == (entry["threshold"], 0.1, "line-3")
    beyond_all = np.array([entry["calibration_scores"][-1] + 1.0])  # p-values count the source's 60 normals
    assert line_3.p_values(beyond_all) == pytest.approx([1 / 61])
    assert len(detector.calibration.scores) != 60
    for other in (None, "line-4"):
        assert detector.calibration_for(other) is detector.calibration
    assert detector.calibration.threshold == published.metadata["threshold"]
    public = detector.public_metadata()["source_calibrations"]["line-3"]
    assert "calibration_scores" not in public and public["n_calibration_scores"] == 60


@pytest.mark.parametrize("name", ["line 3", "", "x" * 65, "line-3\n"])
def test_a_source_name_the_service_would_refuse_publishes_nothing(name, version_dir, tmp_path, capsys):
    folder = _image_folder(tmp_path / "normals", _normals(40).images)
    with pytest.raises(SystemExit) as exit_:
        main(["recalibrate", "--model", str(version_dir), "--images", str(folder), "--target-fpr", "0.1",
              "--no-report", "--for-source", name])
    assert exit_.value.code == 2
    assert "a source is named by letters, digits and ._:/@-, at most 64" in capsys.readouterr().err
    with pytest.raises(DataError, match="a source is named by"):
        recalibrate_and_publish(version_dir, _normals(40), target_fpr=0.1, for_source=name)
    assert list_versions(version_dir.parent) == [1]


def test_cli_for_a_source_reports_that_sources_thresholds(version_dir, tmp_path, capsys):
    folder = _image_folder(tmp_path / "normals", _normals(40).images)
    assert main(["recalibrate", "--model", str(version_dir), "--images", str(folder), "--target-fpr", "0.1",
                 "--no-report", "--for-source", "camera-2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    entry = read_metadata(version_dir.parent / "2")["source_calibrations"]["camera-2"]
    assert summary["for_source"] == "camera-2" and summary["threshold"] == entry["threshold"]
    assert summary["previous_threshold"] == read_metadata(version_dir)["threshold"]
    assert summary["target_fpr"] == 0.1 and summary["report"] is None  # --no-report


def test_cli_computes_the_new_versions_report_on_test_folders(version_dir, tmp_path, capsys):
    folder = _image_folder(tmp_path / "normals", _normals(40).images)
    test = tmp_path / "test"
    test.mkdir()
    _image_folder(test / "good", make_images(np.ones(15, int), seed=21))
    _image_folder(test / "ring", make_images(np.zeros(5, int), seed=22))
    code = main(["recalibrate", "--model", str(version_dir), "--images", str(folder), "--target-fpr", "0.1",
                 "--test-normals", str(test / "good"), "--test-anomalies", str(test)])  # no MNIST needed
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["test_metrics"]["n_normal"] == 15 and summary["test_metrics"]["n_anomalous"] == 5
    metrics = json.loads((version_dir.parent / "2" / "assets.extra" / "report" / "metrics.json").read_text())
    assert metrics["n_by_anomaly_kind"] == {"ring": 5}
    assert metrics["model"]["version"] == 2 and metrics["primary"]["auroc"] == summary["test_metrics"]["auroc"]
    assert summary["report"] == str(version_dir.parent / "2" / "assets.extra" / "report" / "report.html")


@pytest.mark.parametrize(("options", "message"), [
    (["--test-normals", "t"], "--test-normals needs --test-anomalies too"),
    (["--test-normals", "t", "--test-anomalies", "a", "--no-report"], "--no-report is about MNIST's test set"),
    (["--test-normals", "t", "--test-anomalies", "a", "--data", "m.npz"], "--data is about MNIST's test set"),
    (["--test-normals", "NORMALS", "--test-anomalies", "a"], "--images NORMALS and --test-normals NORMALS are the "
                                                             "same folder"),
])
def test_cli_refuses_test_folders_that_cannot_make_a_report(version_dir, tmp_path, capsys, options, message):
    folder = _image_folder(tmp_path / "normals", _normals(40).images)
    options = [str(folder) if option == "NORMALS" else option for option in options]
    assert main(["recalibrate", "--model", str(version_dir), "--images", str(folder), *options]) == 2
    assert message.replace("NORMALS", str(folder)) in capsys.readouterr().err
    assert list_versions(version_dir.parent) == [1]


def test_a_version_tested_on_folders_is_recalibrated_with_a_report_on_the_same_folders(version_dir, tmp_path,
                                                                                       caplog):
    test = tmp_path / "test"
    _image_folder(test / "good", make_images(np.ones(15, int), seed=21))
    _image_folder(test / "defects" / "ring", make_images(np.zeros(5, int), seed=22))
    recorded = {"normals": str(test / "good"), "anomalies": str(test / "defects"), "invert": False}
    metadata_file = version_dir / "assets.extra" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata_file.write_text(json.dumps({**metadata, "test_folders": recorded}))  # as train --test-normals records
    folder = _image_folder(tmp_path / "normals", _normals(40).images)

    with caplog.at_level("INFO", logger="training.cli"):
        assert main(["recalibrate", "--model", str(version_dir), "--images", str(folder), "--target-fpr", "0.1"]) == 0
    assert (f"the new version's report is computed on the folders version 1 was tested on: {test / 'good'} (normal) "
            f"and {test / 'defects'} (anomalous)") in caplog.text
    second = read_metadata(version_dir.parent / "2")
    assert {key: second["test_folders"][key] for key in recorded} == recorded
    assert second["test_metrics"]["n_anomalous"] == 5
    report = json.loads((version_dir.parent / "2" / "assets.extra" / "report" / "metrics.json").read_text())
    assert report["n_by_anomaly_kind"] == {"ring": 5} and report["model"]["version"] == 2

    # Folders gone (or not mounted in this container): the recalibration goes on, without a report, and says why.
    shutil.rmtree(test)
    caplog.clear()
    with caplog.at_level("WARNING", logger="training.cli"):
        assert main(["recalibrate", "--model", str(version_dir.parent / "2"), "--images", str(folder),
                     "--target-fpr", "0.1"]) == 0
    assert (f"no evaluation report: version 2 was tested on {test / 'good'} (normal) and {test / 'defects'} "
            "(anomalous), which cannot be read again: image folder not found") in caplog.text
    third = read_metadata(version_dir.parent / "3")
    assert third["test_metrics"] is None and third["test_folders"] is None
    assert not (version_dir.parent / "3" / "assets.extra" / "report").exists()


def test_a_recalibration_says_when_the_recorded_test_folders_changed_since(version_dir, tmp_path, caplog):
    test = tmp_path / "test"
    _image_folder(test / "good", make_images(np.ones(15, int), seed=21))
    _image_folder(test / "defects" / "ring", make_images(np.zeros(5, int), seed=22))
    metadata_file = version_dir / "assets.extra" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    tested = folder_test_set(test / "good", test / "defects", False, framing_of_version(metadata))
    metadata_file.write_text(json.dumps({**metadata, "test_folders": tested.folders,  # as train records them
                                         "test_metrics": {**metadata["test_metrics"], "n_normal": 15,
                                                          "n_anomalous": 5}}))
    folder = _image_folder(tmp_path / "normals", _normals(40).images)

    def recalibrate(version: int) -> str:
        caplog.clear()
        with caplog.at_level("WARNING", logger="training.cli"):
            assert main(["recalibrate", "--model", str(version_dir.parent / str(version)), "--images", str(folder),
                         "--target-fpr", "0.1"]) == 0
        return caplog.text

    assert "changed" not in recalibrate(1)  # the same images
    _image_folder(test / "good" / "more", make_images(np.ones(1, int), seed=23))
    assert ("the test folders changed since version 2 was tested on them (15 normal and 5 anomalous images then, "
            "16 and 5 now): the new version's report counts them as they are now") in recalibrate(2)
    assert read_metadata(version_dir.parent / "3")["test_metrics"]["n_normal"] == 16
    replaced = next((test / "good" / "more").iterdir())
    replaced.write_bytes((test / "good" / sorted(path.name for path in (test / "good").glob("*.png"))[0]).read_bytes())
    assert "(other images, 16 normal and 5 anomalous as before)" in recalibrate(3)

    # Recorded before the fingerprint: compared by the counts in the version's test metrics
    metadata_file = version_dir.parent / "4" / "assets.extra" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    del metadata["test_folders"]["fingerprint"]
    metadata_file.write_text(json.dumps(metadata))
    assert "changed" not in recalibrate(4)
    shutil.rmtree(test / "good" / "more")
    metadata_file = version_dir.parent / "5" / "assets.extra" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    del metadata["test_folders"]["fingerprint"]
    metadata_file.write_text(json.dumps(metadata))
    assert "(16 normal and 5 anomalous images then, 15 and 5 now)" in recalibrate(5)


def test_data_asks_for_mnists_test_set_instead_of_the_recorded_folders(version_dir, tmp_path, tiny_config):
    metadata_file = version_dir / "assets.extra" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    recorded = {"normals": str(tmp_path / "gone"), "anomalies": str(tmp_path / "gone-too"), "invert": False}
    metadata_file.write_text(json.dumps({**metadata, "test_folders": recorded}))  # an MNIST model tested on folders
    folder = _image_folder(tmp_path / "normals", _normals(40).images)
    assert main(["recalibrate", "--model", str(version_dir), "--images", str(folder), "--target-fpr", "0.1",
                 "--data", tiny_config.data]) == 0
    report = json.loads((version_dir.parent / "2" / "assets.extra" / "report" / "metrics.json").read_text())
    assert report["test_set"] == "MNIST test set"
    assert read_metadata(version_dir.parent / "2")["test_folders"] is None


def test_no_report_leaves_the_recorded_test_folders_unread(version_dir, tmp_path, caplog):
    metadata_file = version_dir / "assets.extra" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    recorded = {"normals": str(tmp_path / "gone"), "anomalies": str(tmp_path / "gone-too"), "invert": False}
    metadata_file.write_text(json.dumps({**metadata, "test_folders": recorded}))
    folder = _image_folder(tmp_path / "normals", _normals(40).images)
    with caplog.at_level("INFO", logger="training.cli"):
        assert main(["recalibrate", "--model", str(version_dir), "--images", str(folder), "--target-fpr", "0.1",
                     "--no-report"]) == 0
    assert "tested on" not in caplog.text
    assert read_metadata(version_dir.parent / "2")["test_folders"] is None
