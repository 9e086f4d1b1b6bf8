import json
import shutil

import numpy as np
import pytest

from tests.synthetic import make_images
from training.catalog import format_catalog, made_by, read_catalog
from training.cli import main
from training.data import fingerprint
from training.recalibrate import NormalImages, recalibrate_and_publish
from training.rollback import roll_back
from training.store import METADATA_PATH, REPORT_FILES, read_metadata


@pytest.fixture
def model_dir(tmp_path, tiny_model):
    """Versions made every way: 1 trained, 2 recalibrated, 3 with a line's own threshold, 4 rolled back to 2."""
    model_dir = tmp_path / "store" / "tiny"
    shutil.copytree(tiny_model.path, model_dir / "1")
    images = make_images(np.ones(60, int), seed=5)
    normals = NormalImages(images, "bars", fingerprint(images))
    recalibrate_and_publish(model_dir / "1", normals, target_fpr=0.2)
    recalibrate_and_publish(model_dir / "2", normals, target_fpr=0.1, for_source="line-3")
    roll_back(model_dir, 2)
    return model_dir


def test_each_version_says_how_it_was_made_and_what_it_flags_at(model_dir, tiny_model):
    catalog = read_catalog(model_dir)

    assert [s.version for s in catalog.versions] == [4, 3, 2, 1]
    made = {s.version: s.made_by for s in catalog.versions}
    assert made == {1: "train on 1", 2: "recalibrate version 1", 3: "recalibrate version 2 for line-3",
                    4: "roll back to version 2 (replacing 3)"}
    by_version = {s.version: s for s in catalog.versions}
    for version, summary in by_version.items():
        metadata = read_metadata(model_dir / str(version))
        assert summary.threshold == metadata["threshold"] and summary.target_fpr == metadata["target_fpr"]
        assert summary.created_at == metadata["created_at"]
    assert by_version[1].target_fpr == tiny_model.metadata["target_fpr"] and by_version[2].target_fpr == 0.2
    line = read_metadata(model_dir / "3")["source_calibrations"]["line-3"]
    assert by_version[3].source_thresholds == {"line-3": line["threshold"]}
    assert by_version[4].source_thresholds == {}  # version 2's, which had none
    assert by_version[1].test_auroc == tiny_model.metadata["test_metrics"]["auroc"]
    # Recalibrated without labelled test images, and version 4 a copy of 2: only version 1 has a report
    assert [by_version[v].report_files for v in (1, 2, 3, 4)] == [list(REPORT_FILES), [], [], []]
    assert (f"Evaluation reports (of versions 1): {model_dir}/<version>/assets.extra/report/, and on a service: "
            "/model/versions/<version>/report/report.html") in format_catalog(catalog)
    assert catalog.not_served == {}


def test_versions_published_before_origin_was_recorded_are_described_from_their_calibration(model_dir):
    for version in (1, 2, 3):
        metadata = read_metadata(model_dir / str(version))
        del metadata["origin"]
        assert made_by(metadata) == {1: "train on 1", 2: "recalibrate version 1",
                                     3: "recalibrate version 2 for line-3"}[version]


def test_a_version_calibrated_for_several_sources_names_them_all():
    origin = {"made_by": "recalibrate", "from_version": 7, "sources": ["line-3", "line-4"]}
    assert made_by({"origin": origin}) == "recalibrate version 7 for line-3, line-4"


def test_folders_that_are_not_served_are_listed_with_the_reason(model_dir):
    (model_dir / ".tmp-abc123").mkdir()
    (model_dir / "9").mkdir()
    (model_dir / "9" / "saved_model.pb").write_bytes(b"graph")
    (model_dir / "4" / METADATA_PATH).write_text("{not json")

    catalog = read_catalog(model_dir)

    assert [s.version for s in catalog.versions] == [3, 2, 1]
    assert "an unfinished publish" in catalog.not_served[".tmp-abc123"]
    assert catalog.not_served["9"] == "incomplete: no assets.extra/metadata.json"
    assert catalog.not_served["4"].startswith("its metadata cannot be read")
    text = format_catalog(catalog)
    assert "serves the newest (3)" in text and "  9: incomplete" in text


def test_the_command_line_prints_a_table_or_json(model_dir, capsys):
    store = ["--store", str(model_dir.parent), "--name", "tiny"]
    assert main(["versions", *store]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:4] == ["version", "created", "(UTC)", "made"]
    assert table[2].split()[0] == "4" and "roll back to version 2 (replacing 3)" in table[2]
    assert "line-3 " in table[3]

    assert main(["versions", *store, "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["newest"] == 4 and [v["version"] for v in listing["versions"]] == [4, 3, 2, 1]
    assert listing["versions"][0]["made_by"] == "roll back to version 2 (replacing 3)"

    assert main(["versions", "--store", str(model_dir.parent), "--name", "nope"]) == 2
    assert "does not exist" in capsys.readouterr().err
