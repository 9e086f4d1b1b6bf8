"""The labelled images an evaluation scores, read without TensorFlow."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.synthetic import make_images
from training.data import DataError
from training.test_sets import check_apart, check_both_given, folder_test_set


def _folder(path: Path, labels, seed: int) -> Path:
    path.mkdir(parents=True)
    for i, pixels in enumerate(make_images(np.asarray(labels), seed=seed)):
        Image.fromarray(pixels).save(path / f"{i:02d}.png")
    return path


def test_folders_become_labelled_images_in_file_order(tmp_path):
    normals = _folder(tmp_path / "good", [1] * 3, seed=1)
    _folder(tmp_path / "bad" / "ring", [0] * 2, seed=2)
    _folder(tmp_path / "bad" / "cross", [7], seed=3)
    test_set = folder_test_set(normals, tmp_path / "bad", invert=False, framing="pad")
    assert test_set.images.shape == (6, 28, 28) and test_set.images.dtype == np.uint8
    assert test_set.labels.tolist() == ["normal"] * 3 + ["cross", "ring", "ring"]
    assert test_set.is_anomaly.tolist() == [False] * 3 + [True] * 3
    assert test_set.names[3] == str(tmp_path / "bad" / "cross" / "00.png") and test_set.label_kind == "kind"
    assert test_set.refused == {}


def test_inverted_folders_hold_the_same_images(tmp_path):
    normals = _folder(tmp_path / "good", [1] * 3, seed=1)
    anomalies = _folder(tmp_path / "bad", [0] * 2, seed=2)
    light = tmp_path / "light"
    for path in [*normals.iterdir(), *anomalies.iterdir()]:
        target = light / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(255 - np.asarray(Image.open(path))).save(target)
    inverted = folder_test_set(light / "good", light / "bad", invert=True, framing="pad")
    plain = folder_test_set(normals, anomalies, invert=False, framing="pad")
    assert np.array_equal(inverted.images, plain.images)
    assert inverted.description.endswith(", inverted") and not plain.description.endswith(", inverted")


def test_a_pair_of_options_is_given_whole_or_not_at_all():
    assert check_both_given(("--a", "x"), ("--b", "y")) is True
    assert check_both_given(("--a", None), ("--b", None)) is False
    with pytest.raises(DataError, match="--b needs --a too"):
        check_both_given(("--a", None), ("--b", "y"))


def test_folders_apart_pass_and_nested_ones_are_named(tmp_path):
    check_apart({"--x": tmp_path / "a", "--y": tmp_path / "b", "--z": tmp_path / "ab"})
    outer, inner = tmp_path / "a", tmp_path / "a" / "b"
    with pytest.raises(DataError) as refused:
        check_apart({"--x": outer, "--y": inner})
    assert str(refused.value) == (f"--x {outer} and --y {inner} lie one inside the other ({inner} is inside "
                                  f"{outer}); give separate folders")
    with pytest.raises(DataError, match="are the same folder"):
        check_apart({"--x": tmp_path / "a", "--y": tmp_path / "a" / ".." / "a"})


def test_errors_name_the_folders_as_the_command_line_does(tmp_path):
    normals = _folder(tmp_path / "good", [1], seed=1)
    with pytest.raises(DataError, match=f"^--test-normals {normals} and --test-anomalies {normals} are the same"):
        folder_test_set(normals, normals, False, "pad", options=("--test-normals", "--test-anomalies"))


def test_a_folder_of_anomalies_named_as_normal_images_are_is_refused(tmp_path):
    # The normals given from elsewhere, and the dataset's own good/ left among the defects: its images would
    # count as anomalies the model "missed".
    normals = _folder(tmp_path / "train-like" / "good", [1] * 3, seed=1)
    _folder(tmp_path / "test" / "good", [1] * 4, seed=2)
    _folder(tmp_path / "test" / "scratch", [0] * 2, seed=3)
    with pytest.raises(DataError) as refused:
        folder_test_set(normals, tmp_path / "test", False, "pad")
    assert str(refused.value) == (f"--anomalies {tmp_path / 'test'} holds {tmp_path / 'test' / 'good'} (4 images), "
                                  "named as normal images are: they would count as anomalies. Give that folder as "
                                  f"--normals, or move it out of {tmp_path / 'test'}")
    # Laid out as MVTec AD is, with good/ given as the normals, it is taken as normal.
    test_set = folder_test_set(tmp_path / "test" / "good", tmp_path / "test", False, "pad")
    assert test_set.labels.tolist() == ["normal"] * 4 + ["scratch"] * 2


def test_anomalies_from_a_folder_named_as_normal_images_are_ask_whether_the_options_were_swapped(tmp_path):
    _folder(tmp_path / "OK", [1] * 3, seed=1)
    _folder(tmp_path / "defects", [0] * 2, seed=2)
    with pytest.raises(DataError, match=r"^--test-anomalies .*OK is named as normal images are: were --test-normals "
                                        r"and --test-anomalies swapped\?"):
        folder_test_set(tmp_path / "defects", tmp_path / "OK", False, "pad",
                        options=("--test-normals", "--test-anomalies"))
