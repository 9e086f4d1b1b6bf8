import json
import os
import shutil

import pytest

from training.cli import main
from training.store import list_versions
from training.writable import FolderNotWritable, check_writable


@pytest.fixture
def nothing_writable(monkeypatch):
    """As for a user other than the folders' owner: the tests run as root, to whom every folder is writable."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    monkeypatch.setattr(os, "geteuid", lambda: 23456)


def test_a_writable_folder_passes_and_a_missing_one_is_not_created(tmp_path):
    check_writable(tmp_path, "--report")
    check_writable(tmp_path / "a" / "b", "--report")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_judged_by_the_folder_it_would_be_made_in(tmp_path, nothing_writable):
    with pytest.raises(FolderNotWritable) as refused:
        check_writable(tmp_path / "a" / "b", "--report")
    message = str(refused.value)
    assert message.startswith(f"--report {tmp_path / 'a' / 'b'}: cannot write into {tmp_path}, which belongs to uid "
                              f"{tmp_path.stat().st_uid} (mode {tmp_path.stat().st_mode & 0o777:o}), and this job "
                              "runs as uid 23456: run it as the folder's owner, or give uid 23456 write access")


def test_a_folder_of_roots_refused_to_another_user_says_how_docker_makes_one(tmp_path, nothing_writable,
                                                                              monkeypatch):
    real_stat = type(tmp_path).stat
    owned_by_root = type("Stat", (), {"st_uid": 0, "st_mode": 0o40755})
    monkeypatch.setattr(type(tmp_path), "stat", lambda path, **kw: owned_by_root if path == tmp_path
                        else real_stat(path, **kw))
    with pytest.raises(FolderNotWritable) as refused:
        check_writable(tmp_path, "--report")
    assert str(refused.value).endswith(
        "which belongs to uid 0 (mode 755), and this job runs as uid 23456: run it as the folder's owner, or give uid "
        "23456 write access; a folder that Docker mounts is made as root's when it does not exist on the host: "
        "create it first as your own user (mkdir -p)")


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(FolderNotWritable, match="taken is a file, so no folder can be made there"):
        check_writable(tmp_path / "taken" / "report", "--report")


def test_evaluate_refuses_an_unwritable_report_folder_before_scoring(tiny_model, tmp_path, nothing_writable,
                                                                     capsys):
    # --data names no file: had the job got as far as loading the test set, it would say so instead
    code = main(["evaluate", "--model", str(tiny_model.path), "--data", str(tmp_path / "absent.npz"),
                 "--report", str(tmp_path / "reports")])
    assert code == 2
    assert f"error: --report {tmp_path / 'reports'}: cannot write into {tmp_path}" in capsys.readouterr().err


def test_train_refuses_an_unwritable_store_before_reading_its_data(tmp_path, nothing_writable, capsys):
    code = main(["train", "--store", str(tmp_path / "store"), "--data", str(tmp_path / "absent.npz")])
    assert code == 2
    refusal = f"error: the model's folder {tmp_path / 'store' / 'mnist-vae'}: cannot write into {tmp_path}"
    assert refusal in capsys.readouterr().err


@pytest.fixture
def model_dir(tiny_model, tmp_path):
    """A store of its own with versions 1 and 2 (the session's tiny model is shared with other tests)."""
    model_dir = tmp_path / "store" / "tiny"
    for version in (1, 2):
        shutil.copytree(tiny_model.path, model_dir / str(version))
    return model_dir


@pytest.mark.parametrize("command", [["recalibrate", "--images", "absent"], ["rollback", "--to", "1"],
                                     ["prune", "--keep", "1"]])
def test_the_jobs_that_publish_or_remove_versions_refuse_an_unwritable_store(model_dir, nothing_writable, command,
                                                                           capsys):
    code = main([*command, "--store", str(model_dir.parent), "--name", model_dir.name])
    assert code == 2
    assert f"error: the model's folder {model_dir}: cannot write into {model_dir}" in capsys.readouterr().err
    assert list_versions(model_dir) == [1, 2]


def test_a_dry_run_of_prune_needs_no_write(model_dir, nothing_writable, capsys):
    assert main(["prune", "--keep", "1", "--dry-run", "--store", str(model_dir.parent), "--name", model_dir.name]) == 0
    assert json.loads(capsys.readouterr().out)["would_remove"] == [1]
    assert list_versions(model_dir) == [1, 2]
