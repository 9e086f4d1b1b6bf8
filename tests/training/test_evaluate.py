import dataclasses
import json
import re
import warnings

import numpy as np
import pytest
from PIL import Image

from training.cli import main
from training.evaluate import Scored, compute_metrics, render_markdown
from training.metrics import roc_curve
from training.test_sets import LabelledImages

REPORT_FILES = {"metrics.json", "report.md", "histogram.png", "roc.png", "grid.png", "misjudged.png", "report.html"}


def _scored(normal_scores, anomaly_scores, anomaly_labels):
    n, m = len(normal_scores), len(anomaly_scores)
    score = np.r_[normal_scores, anomaly_scores].astype(float)
    test_set = LabelledImages(np.zeros((n + m, 28, 28), np.uint8), np.r_[np.ones(n, int), anomaly_labels],
                              np.r_[np.zeros(n, bool), np.ones(m, bool)], "MNIST test set")
    return Scored(test_set, scores={"mse": score, "kl": -score, "score": score},
                  reconstruction=np.zeros((n + m, 28, 28)), difference=np.zeros((n + m, 28, 28)))


METADATA = {"name": "m", "version": 3, "score_method": "mse", "threshold": 0.5, "target_fpr": 0.25,
            "thresholds_by_method": {"mse": 0.5, "kl": -0.5}, "normal_classes": [1],
            "score_methods": {"mse": "", "kl": ""}}


def test_metrics_of_a_perfectly_separated_set():
    metrics = compute_metrics(_scored([0.1, 0.2, 0.3, 0.4], [0.6, 0.7, 0.8], [7, 9, 9]), METADATA)
    assert metrics["primary"]["auroc"] == 1.0 and metrics["primary"]["average_precision"] == 1.0
    assert metrics["primary"]["fpr"] == 0.0 and metrics["primary"]["tpr"] == 1.0
    assert metrics["fpr_deviation_from_target"] == -0.25
    assert metrics["by_method"]["kl"]["auroc"] == 0.0  # reversed scores
    assert set(metrics["by_anomaly_digit"]) == {"7", "9"}
    assert metrics["by_anomaly_digit"]["9"]["mse"]["tpr"] == 1.0


def test_metrics_at_the_threshold_count_the_right_images():
    metrics = compute_metrics(_scored([0.1, 0.6, 0.3, 0.4], [0.45, 0.7], [9, 9]), METADATA)
    assert metrics["primary"]["fpr"] == 0.25 and metrics["primary"]["tpr"] == 0.5
    assert metrics["primary"]["auroc"] == pytest.approx(7 / 8)  # 0.45 beats 3 normals, 0.7 all 4


def test_markdown_names_every_method_and_digit():
    text = render_markdown(compute_metrics(_scored([0.1, 0.2], [0.6, 0.7], [7, 9]), METADATA))
    assert "| mse (primary) | 1.0000 |" in text and "| kl |" in text and "| 7 |" in text


def test_each_sources_threshold_is_reported_with_its_rates_on_the_test_set():
    metadata = {**METADATA, "source_calibrations": {
        "line-4": {"threshold": 0.65, "target_fpr": 0.05, "calibration_scores": [0.1] * 40},
        "line-3": {"threshold": 0.35, "target_fpr": 0.1, "calibration_scores": [0.2] * 20}}}
    metrics = compute_metrics(_scored([0.1, 0.6, 0.3, 0.4], [0.45, 0.7], [9, 9]), metadata)
    assert list(metrics["by_source"]) == ["line-3", "line-4"]
    assert metrics["by_source"]["line-3"] == {"threshold": 0.35, "target_fpr": 0.1, "n_calibration": 20,
                                              "fpr": 0.5, "tpr": 1.0}  # 0.6 and 0.4 of the normals flagged
    assert metrics["by_source"]["line-4"] == {"threshold": 0.65, "target_fpr": 0.05, "n_calibration": 40,
                                              "fpr": 0.0, "tpr": 0.5}
    assert metrics["primary"]["fpr"] == 0.25  # the model's own threshold is still what `primary` reports
    text = render_markdown(metrics)
    assert "## Thresholds of single sources" in text
    assert "| `line-3` | 0.35 | 10.00% | 20 | 50.00% | 100.00% |" in text
    without = render_markdown(compute_metrics(_scored([0.1, 0.2], [0.6, 0.7], [7, 9]), METADATA))
    assert "single sources" not in without


def test_roc_curve_of_known_scores():
    fpr, tpr = roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]


def test_every_published_version_ships_its_report(tiny_model):
    report = tiny_model.path / "assets.extra" / "report"
    assert {p.name for p in report.iterdir()} == REPORT_FILES
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["model"]["version"] == tiny_model.version
    assert metrics["primary"]["auroc"] == pytest.approx(tiny_model.metadata["test_metrics"]["auroc"], abs=1e-6)
    for name in ("histogram.png", "roc.png", "grid.png"):  # misjudged.png may say "none" in a line
        with Image.open(report / name) as image:
            assert image.width >= 400 and image.height >= 300


def test_evaluate_command_writes_the_report(tiny_model, synthetic_mnist, tmp_path, capsys):
    code = main(["evaluate", "--model", str(tiny_model.path), "--data", str(synthetic_mnist),
                 "--report", str(tmp_path / "report")])
    assert code == 0
    assert {p.name for p in (tmp_path / "report").iterdir()} == REPORT_FILES
    printed = json.loads(capsys.readouterr().out)
    assert printed["auroc"] == pytest.approx(tiny_model.metadata["test_metrics"]["auroc"])
    assert printed["page"] == str(tmp_path / "report" / "report.html")  # the one file to open


def test_evaluate_command_errors(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path)]) == 2
    assert "not a model version folder" in capsys.readouterr().err
    assert main(["evaluate", "--store", str(tmp_path), "--name", "none"]) == 2
    assert "no published version" in capsys.readouterr().err


def test_a_model_folder_given_as_a_version_names_its_versions(tiny_model, capsys):
    model_dir = tiny_model.path.parent
    assert main(["evaluate", "--model", str(model_dir)]) == 2
    assert (f"{model_dir} is not a model version folder (no saved_model.pb or assets.extra/metadata.json); it is "
            f"a model's folder: give one of its versions, 1 (the latest is {model_dir / '1'})"
            in capsys.readouterr().err)


def test_a_report_path_that_is_a_file_is_refused_before_scoring(tiny_model, tmp_path, capsys):
    existing_file = tmp_path / "report.md"
    existing_file.write_text("kept")
    code = main(["evaluate", "--model", str(tiny_model.path), "--data", str(tmp_path / "absent.npz"),
                 "--report", str(existing_file)])
    assert code == 2  # refused for the report, not for the missing data it would load first
    assert f"--report {existing_file} is a file; it takes a folder" in capsys.readouterr().err
    assert existing_file.read_text() == "kept"


def test_a_report_inside_the_models_folder_is_refused_before_it_rewrites_a_versions_evidence(tiny_model, capsys):
    published = tiny_model.path / "assets.extra" / "report"
    before = {path.name: path.read_bytes() for path in published.iterdir()}
    for report in (published, tiny_model.path.parent / "reports"):
        assert main(["evaluate", "--model", str(tiny_model.path), "--report", str(report)]) == 2
        assert (f"--report {report} is inside the model's folder {tiny_model.path.parent.resolve()}, beside its "
                "versions: a published version's report is never rewritten" in capsys.readouterr().err)
    assert {path.name: path.read_bytes() for path in published.iterdir()} == before
    assert not (tiny_model.path.parent / "reports").exists()


def test_a_threshold_of_zero_is_a_threshold_not_a_missing_one():
    metadata = {**METADATA, "thresholds_by_method": {"mse": 0.5, "kl": 0.0}}
    metrics = compute_metrics(_scored([0.1, 0.2], [0.6, 0.7], [7, 9]), metadata)
    # kl scores are the negated mse scores, all below zero: nothing is above a threshold of 0
    assert metrics["by_method"]["kl"]["threshold"] == 0.0
    assert metrics["by_anomaly_digit"]["7"]["kl"]["tpr"] == 0.0
    metadata = {**METADATA, "thresholds_by_method": {"mse": 0.0, "kl": -0.5}}
    metrics = compute_metrics(_scored([0.1, 0.2], [0.6, 0.7], [7, 9]), metadata)
    assert metrics["by_anomaly_digit"]["9"]["mse"]["fpr"] == 1.0  # every positive score is above 0


def test_a_test_set_without_anomalies_or_normals_is_refused_before_scoring(tmp_path):
    from training.evaluate import write_report

    absent = tmp_path / "no-saved-model"  # scoring would fail on it: the refusal comes first
    images = np.zeros((3, 28, 28), np.uint8)
    with pytest.raises(ValueError, match="no anomalous image in the MNIST test set to evaluate against"):
        write_report(absent, METADATA, LabelledImages(images, np.array([0, 1, 7]), np.zeros(3, bool),
                                                      "MNIST test set"), tmp_path / "report")
    with pytest.raises(ValueError, match="no normal image in the folders a and b to evaluate against"):
        write_report(absent, METADATA, LabelledImages(images, np.array(["x"] * 3), np.ones(3, bool),
                                                      "folders a and b"), tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_a_model_with_every_test_digit_normal_is_refused_before_scoring(tiny_model, synthetic_mnist, tmp_path,
                                                                          capsys):
    import shutil

    version = tmp_path / "all" / "1"
    shutil.copytree(tiny_model.path, version)
    metadata_file = version / "assets.extra" / "metadata.json"
    metadata_file.write_text(json.dumps({**json.loads(metadata_file.read_text()), "normal_classes": [0, 1, 7]}))
    assert main(["evaluate", "--model", str(version), "--data", str(synthetic_mnist),
                 "--report", str(tmp_path / "report")]) == 2
    assert "every test image is of a normal class (0 1 7), so there is no anomaly" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_the_images_each_score_gets_wrong_are_listed_worst_first():
    metrics = compute_metrics(_scored([0.1, 0.6, 0.3, 0.9], [0.45, 0.7, 0.2], [9, 9, 7]), METADATA)
    assert metrics["false_alarms"] == [{"image": "x_test[3]", "score": 0.9}, {"image": "x_test[1]", "score": 0.6}]
    assert metrics["missed_anomalies"] == [{"image": "x_test[6]", "digit": "7", "score": 0.2},
                                           {"image": "x_test[4]", "digit": "9", "score": 0.45}]
    text = render_markdown(metrics)
    assert "## False alarms: normal images flagged (2)" in text and "| `x_test[3]` | 0.9 |" in text
    assert "## Missed anomalies: not flagged (2)" in text and "| `x_test[6]` | 7 | 0.2 |" in text


def test_a_long_list_of_misjudged_images_is_cut_in_the_markdown_only():
    metrics = compute_metrics(_scored(np.linspace(0.6, 0.9, 30), [0.7], [9]), METADATA)
    assert len(metrics["false_alarms"]) == 30
    text = render_markdown(metrics)
    assert text.count("| `x_test[") == 20
    assert "The worst 20, by score; all 30 are in `metrics.json` (`false_alarms`)." in text


def test_plots_of_a_handful_of_images_are_drawn(tmp_path):
    from training.evaluate import write_scored_report

    scored = _scored([0.1], [0.7, 0.8], [7, 9])
    scored.test_set = dataclasses.replace(scored.test_set, label_kind="kind",
                                          labels=np.array(["normal", "a very long name of a kind of defect", "dent"]))
    write_scored_report(scored, METADATA, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == REPORT_FILES
    with Image.open(tmp_path / "histogram.png") as image:  # normal vs the hardest kind beside all images
        assert image.width > 1000


def _write_folder(folder, images, invert=False):
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(255 - image if invert else image).save(folder / f"{i:03d}.png")


def _test_folders(root, invert=False):
    from tests.synthetic import make_images

    _write_folder(root / "normals", make_images(np.ones(40, int), seed=11), invert)
    _write_folder(root / "defects" / "rings", make_images(np.zeros(15, int), seed=12), invert)
    _write_folder(root / "defects" / "crosses", make_images(np.full(10, 7), seed=13), invert)
    _write_folder(root / "defects", make_images(np.full(2, 7), seed=14), invert)  # at the top level
    return root / "normals", root / "defects"


def test_evaluate_on_folders_of_own_images_reports_each_kind(tiny_model, tmp_path, capsys):
    normals, defects = _test_folders(tmp_path)
    report = tmp_path / "report"
    code = main(["evaluate", "--model", str(tiny_model.path), "--normals", str(normals), "--anomalies", str(defects),
                 "--report", str(report)])
    assert code == 0
    assert {p.name for p in report.iterdir()} == REPORT_FILES
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["n_normal"] == 40 and metrics["n_anomalous"] == 27
    assert metrics["n_by_anomaly_kind"] == {"crosses": 10, "defects": 2, "rings": 15}
    assert set(metrics["by_anomaly_kind"]) == {"crosses", "defects", "rings"}
    assert "by_anomaly_digit" not in metrics
    assert metrics["test_set"] == f"folders {normals} (normal) and {defects} (anomalous)"
    assert json.loads(capsys.readouterr().out)["auroc"] == metrics["primary"]["auroc"]
    assert len(metrics["false_alarms"]) == round(metrics["primary"]["fpr"] * 40)
    assert len(metrics["missed_anomalies"]) == round((1 - metrics["primary"]["tpr"]) * 27)
    assert all(row["image"].startswith(str(normals)) for row in metrics["false_alarms"])
    assert all(row["image"].startswith(str(defects / row["kind"]) if row["kind"] != "defects" else str(defects))
               for row in metrics["missed_anomalies"])
    text = (report / "report.md").read_text()
    assert f"folders {normals} (normal) and {defects} (anomalous): 40 normal, 27 anomalous images" in text
    assert "## Per anomaly kind (normal test images vs that kind)" in text and "| rings | 15 |" in text


def test_dark_on_light_folders_are_refused_without_invert_and_scored_alike_with_it(tiny_model, tmp_path, capsys):
    normals, defects = _test_folders(tmp_path / "light", invert=True)
    argv = ["evaluate", "--model", str(tiny_model.path), "--normals", str(normals), "--anomalies", str(defects)]
    assert main(argv + ["--report", str(tmp_path / "refused")]) == 2
    assert "these images have a light background (median pixel 255)" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
    assert main(argv + ["--invert", "--report", str(tmp_path / "inverted")]) == 0
    normals, defects = _test_folders(tmp_path / "dark")
    assert main(["evaluate", "--model", str(tiny_model.path), "--normals", str(normals), "--anomalies", str(defects),
                 "--report", str(tmp_path / "dark-report")]) == 0
    inverted = json.loads((tmp_path / "inverted" / "metrics.json").read_text())
    dark = json.loads((tmp_path / "dark-report" / "metrics.json").read_text())
    assert inverted["by_method"] == dark["by_method"]
    assert inverted["test_set"].endswith(", inverted")


@pytest.mark.parametrize(("options", "message"), [
    (["--normals", "n"], "--normals needs --anomalies too"),
    (["--anomalies", "a"], "--anomalies needs --normals too"),
    (["--normals", "n", "--anomalies", "a", "--data", "x.npz"], "--data is MNIST's test set"),
    (["--invert"], "--invert applies to --normals and --anomalies"),
])
def test_evaluate_options_that_do_not_go_together_are_refused(options, message, capsys):
    assert main(["evaluate", *options]) == 2
    assert message in capsys.readouterr().err


def test_folders_that_would_count_images_as_both_are_refused(tiny_model, tmp_path, capsys):
    data = tmp_path / "data"
    normals, defects = _test_folders(data)
    base = ["evaluate", "--model", str(tiny_model.path), "--report", str(tmp_path / "report")]
    assert main(base + ["--normals", str(data), "--anomalies", str(defects)]) == 2
    assert (f"--normals {data} and --anomalies {defects} lie the wrong way round ({defects} is inside "
            f"{data}), so images would count as both" in capsys.readouterr().err)
    assert main(base + ["--normals", str(normals), "--anomalies", str(normals) + "/"]) == 2
    assert "are the same folder" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_normals_inside_the_anomalies_folder_are_left_out_of_the_anomalies(tiny_model, tmp_path, caplog):
    from tests.synthetic import make_images

    test = tmp_path / "test"  # laid out as MVTec AD is: good/ beside a folder per defect
    _write_folder(test / "good", make_images(np.ones(20, int), seed=11))
    _write_folder(test / "ring", make_images(np.zeros(6, int), seed=12))
    _write_folder(test / "cross", make_images(np.full(4, 7), seed=13))
    report = tmp_path / "report"
    with caplog.at_level("INFO", logger="training.test_sets"):
        assert main(["evaluate", "--model", str(tiny_model.path), "--normals", str(test / "good"),
                     "--anomalies", str(test), "--report", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["n_normal"] == 20 and metrics["n_by_anomaly_kind"] == {"cross": 4, "ring": 6}
    assert f"{test / 'good'} is inside {test}: its 20 images are taken as normal, the other 10 as anomalous" \
        in caplog.text


def test_a_model_of_own_images_is_sent_to_folders_rather_than_mnist(tiny_model, tmp_path, capsys):
    import shutil

    version = tmp_path / "own" / "1"
    shutil.copytree(tiny_model.path, version)
    metadata_file = version / "assets.extra" / "metadata.json"
    metadata_file.write_text(json.dumps({**json.loads(metadata_file.read_text()), "normal_classes": ["folder"]}))
    assert main(["evaluate", "--model", str(version), "--data", str(tmp_path / "absent.npz")]) == 2
    assert ("was trained on a folder of images, not on MNIST digits, so MNIST's test set has nothing to evaluate "
            "it on: give --normals and --anomalies" in capsys.readouterr().err)


def test_the_report_reads_other_thresholds_off_the_test_set():
    metrics = compute_metrics(_scored(np.arange(10.0) / 10, [0.55, 0.75, 0.85, 2.0], [7, 9, 9, 7]), METADATA)
    assert metrics["operating_points"]["by_fpr"] == [{"target": 0.1, "threshold": 0.8, "fpr": 0.1, "tpr": 0.5}]
    text = render_markdown(metrics)
    assert "## Other thresholds, read off these test images" in text
    assert "| FPR at most 10.0% | 0.8 | 10.00% | 50.00% |" in text
    assert "| TPR at least 100% | 0.55 | 40.00% | 100.00% |" in text


def test_the_misjudged_images_are_drawn_worst_first_or_said_to_be_none(tmp_path):
    from training.evaluate import write_scored_report

    write_scored_report(_scored([0.1, 0.9, 0.3], [0.2, 0.8], [7, 9]), METADATA, tmp_path / "some")
    with Image.open(tmp_path / "some" / "misjudged.png") as image:  # one false alarm, one missed: 2 columns
        assert image.width >= 500 and image.height >= 400
    write_scored_report(_scored([0.1, 0.2], [0.6, 0.7], [7, 9]), METADATA, tmp_path / "none")
    with Image.open(tmp_path / "none" / "misjudged.png") as image:  # a line of text, not a grid
        assert image.height < 200


def test_images_the_service_would_refuse_are_listed_apart_and_the_rest_evaluated(tiny_model, tmp_path, capsys):
    normals, defects = _test_folders(tmp_path)
    (normals / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    pages = [Image.fromarray(np.zeros((28, 28), np.uint8)) for _ in range(2)]
    pages[0].save(defects / "rings" / "two-pages.tif", save_all=True, append_images=pages[1:])
    report = tmp_path / "report"
    assert main(["evaluate", "--model", str(tiny_model.path), "--normals", str(normals), "--anomalies", str(defects),
                 "--report", str(report)]) == 0
    assert json.loads(capsys.readouterr().out)["n_refused"] == 2
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["n_normal"] == 40 and metrics["n_anomalous"] == 27  # as without the two
    refused = {row["image"]: row["reason"] for row in metrics["refused"]}
    assert refused.keys() == {str(normals / "truncated.png"), str(defects / "rings" / "two-pages.tif")}
    assert refused[str(normals / "truncated.png")].startswith("cannot decode")
    assert "holds 2 images (pages or animation frames)" in refused[str(defects / "rings" / "two-pages.tif")]
    assert "## Refused, as the service would refuse them (2)" in (report / "report.md").read_text()


def test_a_folder_whose_every_image_is_refused_stops_the_evaluation(tiny_model, tmp_path, capsys):
    normals, defects = _test_folders(tmp_path)
    for file in normals.iterdir():
        file.write_bytes(b"not an image")
    assert main(["evaluate", "--model", str(tiny_model.path), "--normals", str(normals), "--anomalies", str(defects),
                 "--report", str(tmp_path / "report")]) == 2
    assert f"every image in {normals} is refused, as the service would refuse it; the first: cannot decode" in \
        capsys.readouterr().err
    assert not (tmp_path / "report").exists()


def test_a_report_inside_a_test_folder_is_refused(tiny_model, tmp_path, capsys):
    normals, defects = _test_folders(tmp_path)
    assert main(["evaluate", "--model", str(tiny_model.path), "--normals", str(normals), "--anomalies", str(defects),
                 "--report", str(defects / "report")]) == 2
    assert (f"--report {defects / 'report'} is inside --anomalies {defects}: the next evaluation would read the "
            "report's plots as test images" in capsys.readouterr().err)
    assert not (defects / "report").exists()


def test_an_earlier_reports_plots_are_not_left_beside_a_new_report_without_plots(tmp_path, monkeypatch):
    import builtins

    from training.evaluate import write_scored_report

    write_scored_report(_scored([0.1, 0.2], [0.6, 0.7], [7, 9]), METADATA, tmp_path)
    assert (tmp_path / "roc.png").exists()
    (tmp_path / "notes.txt").write_text("the user's")
    real_import = builtins.__import__

    def without_matplotlib(name, *args, **kwargs):
        if name == "training.report":
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_matplotlib)
    write_scored_report(_scored([0.1, 0.8], [0.6, 0.7], [7, 9]), METADATA, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"metrics.json", "report.md", "report.html", "notes.txt"}
    assert "<img" not in (tmp_path / "report.html").read_text()  # the page shows no plot that is gone


def test_the_report_folder_holds_the_report_as_one_page_with_its_plots(tmp_path):
    from training.evaluate import write_scored_report
    from training.report_page import render_report_page

    write_scored_report(_scored([0.1, 0.2], [0.6, 0.7], [7, 9]), METADATA, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert page == render_report_page((tmp_path / "report.md").read_text(),
                                      ["histogram.png", "roc.png", "grid.png", "misjudged.png"])
    assert all((tmp_path / name).is_file() for name in re.findall(r'<img src="([^"]+)"', page))


def test_the_report_says_what_was_normal_in_words():
    text = render_markdown(compute_metrics(_scored([0.1, 0.2], [0.6, 0.7], [7, 9]), METADATA))
    assert "Normal: digit 1; MNIST test set: 2 normal, 2 anomalous images." in text
    folder = render_markdown(compute_metrics(_scored([0.1, 0.2], [0.6, 0.7], [7, 9]),
                                             {**METADATA, "normal_classes": ["folder"]}))
    assert "Normal: the images of a folder (`train --images`);" in folder


def test_a_slow_search_for_the_legends_place_is_not_warned_of(tmp_path, monkeypatch):
    # matplotlib warns when placing a legend where it hides the fewest bars takes over a second, as on a busy
    # machine with thousands of test images: the plot is the same, so the user is not told
    import matplotlib.legend

    from training.evaluate import write_scored_report

    ticks = iter(range(0, 10**6, 2))  # each reading of the clock two seconds after the last
    monkeypatch.setattr(matplotlib.legend, "time", type("SlowClock", (), {"perf_counter": lambda: next(ticks)}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_scored_report(_scored([0.1, 0.2], [0.6, 0.7], [7, 9]), METADATA, tmp_path)
    assert (tmp_path / "histogram.png").is_file()
