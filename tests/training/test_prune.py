import json

import pytest

from training.catalog import read_catalog
from training.cli import main
from training.data import DataError
from training.prune import Pruning, prune
from training.store import METADATA_PATH, list_versions, publish, staging_directory


@pytest.fixture
def model_dir(tmp_path):
    """Versions 1-5 of a model, each a stand-in SavedModel of 1,000 bytes and its metadata."""
    model_dir = tmp_path / "store" / "m"
    for _ in range(5):
        with staging_directory(model_dir) as staging:
            (staging / "saved_model.pb").write_bytes(b"g" * 1000)
            publish(model_dir, staging, {"name": "m"})
    return model_dir


def test_the_newest_versions_are_kept_and_the_others_removed(model_dir):
    pruning = prune(model_dir, keep=2)

    assert (pruning.kept, pruning.removed) == ([4, 5], [1, 2, 3])
    assert pruning.freed_bytes == sum(1000 + len(json.dumps({"name": "m", "version": v}, indent=1))
                                      for v in (1, 2, 3))
    assert list_versions(model_dir) == [4, 5]
    assert sorted(p.name for p in model_dir.iterdir() if not p.name.startswith(".publish")) == ["4", "5"]
    with staging_directory(model_dir) as staging:  # numbering goes on from the newest
        (staging / "saved_model.pb").write_bytes(b"g")
        assert publish(model_dir, staging, {"name": "m"}) == 6


def test_a_version_named_is_kept_too_and_a_dry_run_removes_nothing(model_dir):
    pruning = prune(model_dir, keep=1, also_keep=frozenset({2}), dry_run=True)
    assert (pruning.kept, pruning.removed) == ([2, 5], [1, 3, 4])
    assert list_versions(model_dir) == [1, 2, 3, 4, 5]
    prune(model_dir, keep=1, also_keep=frozenset({2}))
    assert list_versions(model_dir) == [2, 5]


def test_keeping_a_version_that_is_not_published_is_refused(model_dir):
    with pytest.raises(DataError, match=r"has no published version 9 to keep \(published: 1, 2, 3, 4, 5\)"):
        prune(model_dir, keep=1, also_keep=frozenset({9}))
    assert list_versions(model_dir) == [1, 2, 3, 4, 5]


def test_a_prune_stopped_midway_leaves_hidden_debris_that_versions_lists(model_dir):
    debris = model_dir / ".pruned-1-abc"
    debris.mkdir()
    (model_dir / "1").rename(debris / "version")
    assert list_versions(model_dir) == [2, 3, 4, 5]  # never half a version that looks servable
    assert "a pruned version not yet deleted" in read_catalog(model_dir).not_served[".pruned-1-abc"]


def test_the_next_prune_deletes_the_debris_of_one_stopped_midway(model_dir):
    debris = model_dir / ".pruned-1-abc"
    debris.mkdir()
    (model_dir / "1").rename(debris / "version")
    size = sum(path.stat().st_size for path in debris.rglob("*") if path.is_file())

    planned = prune(model_dir, keep=4, dry_run=True)
    assert (planned.removed, planned.debris, planned.freed_bytes) == ([], [".pruned-1-abc"], size)
    assert debris.is_dir()  # a dry run only says so

    pruning = prune(model_dir, keep=4)
    assert (pruning.kept, pruning.removed, pruning.debris, pruning.freed_bytes) == ([2, 3, 4, 5], [], [".pruned-1-abc"],
                                                                                    size)
    assert not debris.exists() and ".pruned-1-abc" not in read_catalog(model_dir).not_served
    assert list_versions(model_dir) == [2, 3, 4, 5]


def test_pruning_a_model_that_has_no_folder_yet_removes_nothing(tmp_path):
    assert prune(tmp_path / "none", keep=1, dry_run=True) == Pruning([], [], 0, [])


def test_the_command_line_prunes_or_says_what_it_would(model_dir, capsys):
    store = ["--store", str(model_dir.parent), "--name", "m"]
    assert main(["prune", *store, "--keep", "3", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["would_remove"] == [1, 2]
    assert main(["prune", *store, "--keep", "3", "--keep-version", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kept"] == [1, 3, 4, 5] and report["removed"] == [2] and report["freed_bytes"] > 1000
    assert report["debris"] == []
    assert main(["prune", *store, "--keep", "1", "--keep-version", "2"]) == 2
    assert "has no published version 2 to keep" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["prune", *store, "--keep", "0"])
    assert list_versions(model_dir) == [1, 3, 4, 5]
    assert (model_dir / "1" / METADATA_PATH).is_file()
