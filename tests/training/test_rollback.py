import re
import shutil

import numpy as np
import pytest

from tests.synthetic import make_images
from training.cli import main
from training.data import DataError, fingerprint
from training.recalibrate import NormalImages, recalibrate_and_publish
from training.rollback import roll_back
from training.store import list_versions, read_metadata


@pytest.fixture
def model_dir(tmp_path, tiny_model):
    """Version 1 (the tiny model) and version 2 (it, recalibrated to another threshold), in a private store."""
    model_dir = tmp_path / "store" / "tiny"
    shutil.copytree(tiny_model.path, model_dir / "1")
    images = make_images(np.ones(60, int), seed=5)
    recalibrate_and_publish(model_dir / "1", NormalImages(images, "bars", fingerprint(images)), target_fpr=0.2)
    return model_dir


def _files(version_dir):
    return {path.relative_to(version_dir): path.read_bytes() for path in sorted(version_dir.rglob("*"))
            if path.is_file() and path.name != "metadata.json"}


def test_rolling_back_publishes_the_earlier_version_again_as_the_newest(model_dir):
    first, second = read_metadata(model_dir / "1"), read_metadata(model_dir / "2")
    assert first["threshold"] != second["threshold"]

    published = roll_back(model_dir, 1)

    assert published.version == 3 and list_versions(model_dir) == [1, 2, 3]
    assert _files(model_dir / "3") == _files(model_dir / "1")  # the SavedModel and the report, byte for byte
    metadata = read_metadata(model_dir / "3")
    assert metadata["origin"] == {"made_by": "rollback", "from_version": 1, "replaced_version": 2}
    assert metadata["version"] == 3 and metadata["created_at"] >= first["created_at"]
    changed = {"version", "created_at", "origin"}
    assert {k: v for k, v in metadata.items() if k not in changed} == \
        {k: v for k, v in first.items() if k not in changed}
    assert read_metadata(model_dir / "1") == first and read_metadata(model_dir / "2") == second  # nothing touched
    assert not any(p.name.startswith(".tmp-") for p in model_dir.iterdir())


@pytest.mark.parametrize("to_version, message", [
    (2, "version 2 is the newest in"),
    (7, "has no published version 7 (published: 1, 2)"),
])
def test_rolling_back_to_the_newest_or_a_missing_version_is_refused(model_dir, to_version, message):
    with pytest.raises(DataError, match=re.escape(message)):
        roll_back(model_dir, to_version)
    assert list_versions(model_dir) == [1, 2]


def test_the_command_line_rolls_back_and_reports_the_new_version(model_dir, capsys):
    store = model_dir.parent
    assert main(["rollback", "--to", "1", "--store", str(store), "--name", "tiny"]) == 0
    out = capsys.readouterr().out
    assert '"version": 3' in out and '"copy_of": 1' in out and '"replaced_version": 2' in out
    assert main(["rollback", "--to", "3", "--store", str(store), "--name", "tiny"]) == 2
    assert "version 3 is the newest" in capsys.readouterr().err
    assert list_versions(model_dir) == [1, 2, 3]
