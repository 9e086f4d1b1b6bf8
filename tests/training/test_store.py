import json

import pytest

from training.store import METADATA_PATH, list_versions, publish, read_metadata, staging_directory


def _fake_export(directory):
    (directory / "saved_model.pb").write_bytes(b"graph")


def test_publish_numbers_versions_and_stamps_metadata(tmp_path):
    model_dir = tmp_path / "m"
    for expected in (1, 2):
        with staging_directory(model_dir) as staging:
            _fake_export(staging)
            assert publish(model_dir, staging, {"name": "m"}) == expected
    assert list_versions(model_dir) == [1, 2]
    assert read_metadata(model_dir / "2") == {"name": "m", "version": 2}
    assert [p.name for p in model_dir.iterdir() if p.name.startswith(".tmp-")] == []


def test_failure_mid_export_leaves_no_version_and_no_debris(tmp_path):
    model_dir = tmp_path / "m"
    with pytest.raises(RuntimeError):
        with staging_directory(model_dir) as staging:
            _fake_export(staging)
            raise RuntimeError("crash while writing variables")
    assert list_versions(model_dir) == []
    assert not any(p.name.startswith(".tmp-") for p in model_dir.iterdir())


def test_leftover_staging_and_odd_directories_are_not_versions(tmp_path):
    model_dir = tmp_path / "m"
    for name in (".tmp-abc", "latest", "3.bak", "7"):
        (model_dir / name).mkdir(parents=True)
        _fake_export(model_dir / name)
        (model_dir / name / METADATA_PATH).parent.mkdir()
        (model_dir / name / METADATA_PATH).write_text(json.dumps({}))
    (model_dir / "8").mkdir()  # incomplete: no saved_model.pb
    assert list_versions(model_dir) == [7]
    with staging_directory(model_dir) as staging:
        _fake_export(staging)
        assert publish(model_dir, staging, {}) == 9  # never reuses a number, even an incomplete one


def test_missing_model_folder_has_no_versions(tmp_path):
    assert list_versions(tmp_path / "absent") == []
