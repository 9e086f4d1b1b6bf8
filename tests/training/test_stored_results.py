"""Recalibration on the service's stored results: reviewed flags in, reviewed anomalies out, nothing written."""

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import shutil
import sqlite3

import numpy as np
import pytest

from app.results import ResultStore, Review, StoredResult
from app.results_schema import stored_time
from tests.synthetic import make_images
from training import stored_results
from training.calibration import conformal_threshold
from training.cli import main
from training.evaluate import saved_model_outputs
from training.store import list_versions, read_metadata
from training.stored_results import ResultWindow, load_stored_normals

START = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)


@pytest.fixture
def version_dir(tmp_path, tiny_model):
    target = tmp_path / "store" / "tiny" / "1"
    shutil.copytree(tiny_model.path, target)
    return target


def _stored(index: int, image: np.ndarray, *, source: str = "line-3", flagged: bool = False,
            review: str | None = None, model: str = "tiny", version: int = 1) -> StoredResult:
    return StoredResult(
        id=f"{index:032x}", created_at=stored_time(START + dt.timedelta(minutes=index)), model_name=model,
        model_version=version, score_method="mse", score=0.1, threshold=0.2, threshold_source="model",
        target_fpr=0.1, p_value=0.5, is_anomaly=flagged, scores={"mse": 0.1}, image=image,
        reconstruction=image, difference=np.zeros((28, 28), np.float16), heatmap_scale=0.2, source=source,
        review=None if review is None else Review(review, stored_time(START + dt.timedelta(days=1))))


def _write_store(path, results: list[StoredResult]) -> None:
    store = ResultStore(path, max_rows=10_000)
    store.open()
    try:
        asyncio.run(store.save(results))
    finally:
        store.close()


@pytest.fixture
def results_db(tmp_path):
    """40 normal images from line-3: one flag reviewed normal, one reviewed anomalous; 10 from line-4."""
    normals, anomalies = make_images(np.ones(50, int), seed=5), make_images(np.zeros(1, int), seed=5)
    results = [_stored(i, normals[i]) for i in range(40)]
    results[7] = dataclasses.replace(results[7], is_anomaly=True, review=Review("normal", "2026-11-03"))
    results.append(_stored(40, anomalies[0], flagged=True, review="anomalous"))
    results += [_stored(41 + i, normals[40 + i], source="line-4") for i in range(10)]
    path = tmp_path / "results.db"
    _write_store(path, results)
    return path


def test_the_window_is_every_stored_image_but_those_reviewed_as_anomalous(results_db):
    images, counts = load_stored_normals(results_db, ResultWindow("tiny", source="line-3"))
    assert images.shape == (40, 28, 28) and images.dtype == np.uint8
    assert counts == {"n_results": 41, "n_reviewed_anomalous_left_out": 1, "n_false_alarms_included": 1,
                      "model_versions": [1]}
    expected = make_images(np.ones(50, int), seed=5)[:40]
    assert np.array_equal(images, expected)  # in scoring order, the false alarm (index 7) included
    assert len(load_stored_normals(results_db, ResultWindow("tiny"))[0]) == 50
    window = ResultWindow("tiny", since=START + dt.timedelta(minutes=10), until=START + dt.timedelta(minutes=20))
    assert np.array_equal(load_stored_normals(results_db, window)[0], expected[10:20])


def test_a_flag_nobody_reviewed_is_refused_until_it_is(tmp_path):
    images = make_images(np.ones(20, int), seed=6)
    path = tmp_path / "results.db"
    _write_store(path, [_stored(i, images[i], flagged=i in (3, 4)) for i in range(20)])
    with pytest.raises(Exception, match="holds 2 flagged results without a review: each may be a real defect"):
        load_stored_normals(path, ResultWindow("tiny"))
    with pytest.raises(Exception, match=r"Review them on the service's page /review-queue \(or with GET"):
        load_stored_normals(path, ResultWindow("tiny"))
    with pytest.raises(Exception, match=r"on the service's page /review-queue\?source=line-3 \(or"):
        load_stored_normals(path, ResultWindow("tiny", source="line-3"))  # the page opens on that line's flags
    # A window without them is fine.
    assert len(load_stored_normals(path, ResultWindow("tiny", since=START + dt.timedelta(minutes=5)))[0]) == 15


def test_the_check_and_the_read_see_one_snapshot(results_db, monkeypatch):
    # A flag stored by the service between the check for unreviewed flags and the read of the images must be
    # in neither, or an unreviewed (possibly defective) image would slip into the calibration.
    real_open = stored_results._open_read_only

    def open_then_flag_after_the_check(database):
        connection = real_open(database)

        class Interleaved:
            def __init__(self):
                self.queries = 0

            def execute(self, sql, *args):
                result = connection.execute(sql, *args)
                self.queries += 1
                if self.queries == 2:  # BEGIN, then the counts: now the service stores a flag
                    _write_store(results_db, [_stored(500, make_images(np.zeros(1, int), seed=3)[0], flagged=True)])
                return result

            def close(self):
                connection.close()

        return Interleaved()

    monkeypatch.setattr(stored_results, "_open_read_only", open_then_flag_after_the_check)
    images, counts = load_stored_normals(results_db, ResultWindow("tiny", source="line-3"))
    assert len(images) == 40 and counts["n_results"] == 41  # as before the flag arrived


def test_the_training_job_never_writes_to_the_services_database(results_db, version_dir, capsys):
    before = hashlib.sha256(results_db.read_bytes()).hexdigest()
    argv = ["recalibrate", "--model", str(version_dir), "--results", str(results_db), "--source", "line-3",
            "--target-fpr", "0.1", "--no-report"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["version"] == 2 and summary["n_images"] == 40
    calibration = read_metadata(version_dir.parent / "2")["calibration"]
    assert calibration["source"] == f"results store {results_db} (model tiny, source line-3)"
    assert calibration["n_images"] == 40
    assert hashlib.sha256(results_db.read_bytes()).hexdigest() == before


def test_a_sources_threshold_is_calibrated_on_that_sources_results(results_db, version_dir, capsys):
    argv = ["recalibrate", "--model", str(version_dir), "--results", str(results_db), "--for-source", "line-4",
            "--target-fpr", "0.1", "--no-report"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["for_source"] == "line-4" and summary["n_images"] == 10  # line-4's ten, not line-3's
    metadata = read_metadata(version_dir.parent / "2")
    assert metadata["threshold"] == read_metadata(version_dir)["threshold"]
    calibration = metadata["source_calibrations"]["line-4"]["calibration"]
    assert calibration["source"] == f"results store {results_db} (model tiny, source line-4)"


def test_every_source_gets_a_threshold_from_its_own_results_in_one_version(results_db, version_dir, capsys):
    _write_store(results_db, [_stored(60 + i, image, source=None)  # sent without a source: not used
                              for i, image in enumerate(make_images(np.ones(30, int), seed=8))])
    before = hashlib.sha256(results_db.read_bytes()).hexdigest()
    argv = ["recalibrate", "--model", str(version_dir), "--results", str(results_db), "--every-source",
            "--target-fpr", "0.1", "--no-report"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)

    assert list_versions(version_dir.parent) == [1, 2]
    metadata = read_metadata(version_dir.parent / "2")
    assert metadata["origin"] == {"made_by": "recalibrate", "from_version": 1, "sources": ["line-3", "line-4"]}
    assert metadata["threshold"] == read_metadata(version_dir)["threshold"]
    for name, count in (("line-3", 40), ("line-4", 10)):
        images, _ = load_stored_normals(results_db, ResultWindow("tiny", source=name))
        scores = saved_model_outputs(version_dir, images, progress=False)[metadata["score_method"]]
        entry = metadata["source_calibrations"][name]
        assert entry["threshold"] == conformal_threshold(scores, 0.1) == summary["sources"][name]["threshold"]
        assert entry["calibration"]["n_images"] == count == summary["sources"][name]["n_images"]
        assert entry["calibration"]["source"] == f"results store {results_db} (model tiny, source {name})"
    assert summary["skipped_sources"] == {}
    assert hashlib.sha256(results_db.read_bytes()).hexdigest() == before


def test_every_source_skips_the_sources_with_too_few_normals_for_their_target(results_db, version_dir, capsys):
    argv = ["recalibrate", "--model", str(version_dir), "--results", str(results_db), "--every-source",
            "--target-fpr", "0.05", "--no-report"]
    assert main(argv) == 0  # 19 normals needed for 5 %: line-3 has 40, line-4 10
    summary = json.loads(capsys.readouterr().out)
    assert list(summary["sources"]) == ["line-3"]
    assert summary["skipped_sources"] == {"line-4": "10 normal images, 19 needed for a target FPR of 0.05; "
                                                    "keeps the model's threshold"}
    assert set(read_metadata(version_dir.parent / "2")["source_calibrations"]) == {"line-3"}

    argv[-2] = "0.01"  # 99 needed: no source has enough, so nothing is published
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "no source in the window (model tiny) has enough normal images" in error and "line-3: 40" in error
    assert list_versions(version_dir.parent) == [1, 2]


@pytest.mark.parametrize(("extra", "message"), [
    (["--for-source", "line-3"], "--every-source calibrates every source in the window; leave out --for-source"),
    (["--source", "line-3"], "--every-source calibrates every source in the window; leave out --source"),
    (["--images", "."], "--every-source calibrates each source of the stored results; it applies with --results"),
])
def test_every_source_with_options_that_contradict_it_is_refused(extra, message, results_db, version_dir, capsys):
    normals = [] if "--images" in extra else ["--results", str(results_db)]
    argv = ["recalibrate", "--model", str(version_dir), *normals, "--every-source", "--no-report", *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list_versions(version_dir.parent) == [1]


def test_every_source_needs_results_sent_with_a_source(tmp_path, version_dir, capsys):
    database = tmp_path / "anonymous.db"
    _write_store(database, [_stored(i, image, source=None)
                            for i, image in enumerate(make_images(np.ones(20, int), seed=4))])
    argv = ["recalibrate", "--model", str(version_dir), "--results", str(database), "--every-source", "--no-report"]
    assert main(argv) == 2
    assert "only images sent with ?source= can calibrate a source's threshold" in capsys.readouterr().err


@pytest.mark.parametrize(("problem", "message"), [
    ("another source's results", "--for-source line-4 calibrates on that source's own results; --source line-3"),
    ("unreviewed flag", "holds 1 flagged result without a review"),
    ("no such file", "results store not found"),
    ("not a results store", "is not a results store of this service with reviews (no column"),
    ("other model", "no stored normal results"),
    ("invert", "--invert applies to --images and the test folders; stored results are kept as the model saw them"),
    ("source with images", "--source selects stored results; it applies with --results, not --images"),
    ("other framing", "scored by version 2, which frames resized uploads as 'pad', not 'mnist'"),
    ("swapped window", ("--since 2026-11-09T06:00:00+01:00 is not before --until 2026-11-02T06:00:00+01:00, so "
                        "no result could match; did you swap them?")),
])
def test_recalibrating_on_stored_results_fails_cleanly(problem, message, results_db, version_dir, tmp_path, capsys):
    argv = ["recalibrate", "--model", str(version_dir), "--results", str(results_db), "--target-fpr", "0.1",
            "--no-report"]
    if problem == "another source's results":
        argv += ["--for-source", "line-4", "--source", "line-3"]
    elif problem == "unreviewed flag":
        _write_store(results_db, [_stored(99, make_images(np.zeros(1, int), seed=1)[0], flagged=True)])
    elif problem == "no such file":
        argv[4] = str(tmp_path / "absent.db")
    elif problem == "not a results store":
        argv[4] = str(tmp_path / "other.db")
        sqlite3.connect(argv[4]).execute("CREATE TABLE results (id TEXT, image BLOB)").connection.commit()
    elif problem == "other model":
        argv[2] = str(_publish_as(version_dir, "other"))
    elif problem == "invert":
        argv.append("--invert")
    elif problem == "swapped window":
        argv += ["--since", "2026-11-09T06:00:00+01:00", "--until", "2026-11-02T06:00:00+01:00"]
    elif problem == "source with images":
        argv[3:5] = ["--images", str(tmp_path)]
        argv += ["--source", "line-3"]
    else:
        _write_store(results_db, [_stored(100, make_images(np.ones(1, int), seed=2)[0], version=2)])
        second = version_dir.parent / "2"
        shutil.copytree(version_dir, second)
        metadata = json.loads((second / "assets.extra" / "metadata.json").read_text())
        metadata["input"]["framing"] = "pad"
        (second / "assets.extra" / "metadata.json").write_text(json.dumps(metadata))
        argv[2] = str(version_dir)
    versions_before = list_versions(version_dir.parent)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert list_versions(version_dir.parent) == versions_before


def test_a_time_without_a_zone_is_refused(results_db, version_dir, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["recalibrate", "--model", str(version_dir), "--results", str(results_db), "--since", "2026-11-02T06:00"])
    assert exit_.value.code == 2
    assert "has no time zone; add one" in capsys.readouterr().err


def _publish_as(version_dir, name: str):
    target = version_dir.parent.parent / name / "1"
    shutil.copytree(version_dir, target)
    metadata = json.loads((target / "assets.extra" / "metadata.json").read_text())
    metadata["name"] = name
    (target / "assets.extra" / "metadata.json").write_text(json.dumps(metadata))
    return target
