import errno
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from training.cli import main
from training.store import folder_bytes, list_versions, short_of_space
from training.writable import FolderNotWritable, check_writable, is_out_of_space


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


# A full disk cannot be checked for beforehand: each job that writes says so when it happens, and leaves no
# half-written version or report.

FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize(("error", "full"), [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (OSError(errno.EACCES, "Permission denied"), False),
    (FileNotFoundError(errno.ENOENT, "No such file or directory"), False),
    # shutil.copytree keeps only the text of each file's failure
    (shutil.Error([("a", "b", f"[Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}: 'b'")]), True),
    (shutil.Error([("a", "b", "[Errno 13] Permission denied: 'b'")]), False),
    (ValueError(os.strerror(errno.ENOSPC)), False),
])
def test_what_counts_as_a_full_disk(error, full):
    assert is_out_of_space(error) is full


def test_train_on_a_full_disk_says_so_and_publishes_nothing(tiny_config, tmp_path, monkeypatch, capsys):
    import tensorflow as tf

    def fill_the_disk(archive, directory, **kwargs):
        (Path(directory) / "part").write_bytes(b"written before the disk filled")
        # what TensorFlow raises: its file system keeps the errno's text only
        raise tf.errors.ResourceExhaustedError(None, None, f"{directory}/variables/x.tempstate; No space left on "
                                                           "device [Op:SaveV2]")

    monkeypatch.setattr(tf.saved_model, "save", fill_the_disk)  # what Keras' export writes the SavedModel with
    store = tmp_path / "store"
    code = main(["train", "--store", str(store), "--name", "tiny", "--data", tiny_config.data, "--epochs", "1",
                 "--latent-dim", "4", "--hidden-units", "16", "--target-fpr", "0.05"])
    assert code == 1
    message = capsys.readouterr().err
    assert f"error: the disk holding {store / 'tiny'} is full (" in message
    assert message.rstrip().endswith(": No space left on device. Nothing was published: the version being written "
                                      "was removed. Free space on that disk (or raise its quota) and run the job "
                                      "again")
    assert "Traceback" not in message
    assert list((store / "tiny").iterdir()) == []  # neither a version nor its staging folder


def test_rollback_on_a_full_disk_says_so_and_publishes_nothing(model_dir, monkeypatch, capsys):
    def fill_the_disk(source, target, **kwargs):
        raise FULL

    monkeypatch.setattr(shutil, "copyfile", fill_the_disk)  # copytree gathers each file's failure in a shutil.Error
    code = main(["rollback", "--to", "1", "--store", str(model_dir.parent), "--name", model_dir.name])
    assert code == 1
    assert f"error: the disk holding {model_dir} is full (" in capsys.readouterr().err
    assert sorted(entry.name for entry in model_dir.iterdir()) == ["1", "2"]


def test_an_earlier_report_is_left_whole_when_the_disk_fills(tiny_model, tiny_config, tmp_path, monkeypatch,
                                                            capsys):
    report = tmp_path / "report"
    assert main(["evaluate", "--model", str(tiny_model.path), "--data", tiny_config.data,
                 "--report", str(report)]) == 0
    before = {path.name: path.read_bytes() for path in report.iterdir()}
    assert {"metrics.json", "report.md", "report.html"} <= set(before)

    def fill_the_disk(scored, metadata, metrics, folder):
        (folder / "histogram.png").write_bytes(b"the first bytes of a plot")
        raise FULL

    # metrics.json and report.md of the new report are written before the plots, the page after them
    monkeypatch.setattr("training.report.write_plots", fill_the_disk)
    capsys.readouterr()
    code = main(["evaluate", "--model", str(tiny_model.path), "--data", tiny_config.data, "--report", str(report)])
    assert code == 1
    assert (f"error: the disk holding {report} is full (" in capsys.readouterr().err)
    assert {path.name: path.read_bytes() for path in report.iterdir()} == before  # no hidden folder left either


def test_a_report_replaces_an_earlier_ones_files_and_leaves_no_staging_folder(tiny_model, tiny_config, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    (report / "misjudged.png").write_bytes(b"an earlier report's plot")
    (report / "notes.txt").write_text("the user's own")
    assert main(["evaluate", "--model", str(tiny_model.path), "--data", tiny_config.data,
                 "--report", str(report)]) == 0
    names = {path.name for path in report.iterdir()}
    assert {"metrics.json", "report.md", "report.html", "notes.txt"} <= names
    assert not any(name.startswith(".") for name in names)
    assert (report / "misjudged.png").read_bytes() != b"an earlier report's plot"  # replaced, or removed
    assert json.loads((report / "metrics.json").read_text())["n_normal"] > 0


def test_training_warns_when_the_disk_has_less_room_than_the_newest_version_took(model_dir, monkeypatch):
    size = folder_bytes(model_dir / "2")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 * size, 9 * size, size))
    assert short_of_space(model_dir) == (
        f"the disk holding {model_dir} has {size / 1e6:.1f} MB free, and version 2 takes {size / 1e6:.1f} MB: a new "
        "one, about as large and often larger, may not fit, and the job would then fail when it writes it, after "
        "the training")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 * size, 8 * size, 2 * size))
    assert short_of_space(model_dir) is None
    assert short_of_space(model_dir.parent / "no-versions-yet") is None


def _press_ctrl_c() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize(("stop", "code", "by"), [
    (lambda: os.kill(os.getpid(), signal.SIGTERM), 143, "SIGTERM"),  # docker stop
    # what Python's SIGINT handler raises (a real SIGINT is ignored where the tests run in the background)
    (_press_ctrl_c, 130, "Ctrl-C"),
])
def test_a_job_stopped_while_it_writes_a_version_leaves_none_of_it(model_dir, monkeypatch, capsys, stop, code, by):
    def stopped_midway(source, target, **kwargs):
        (Path(target) / "part").write_bytes(b"half a version")
        stop()

    monkeypatch.setattr("training.rollback.shutil.copytree", stopped_midway)
    handler = signal.getsignal(signal.SIGTERM)
    assert main(["rollback", "--to", "1", "--store", str(model_dir.parent), "--name", model_dir.name]) == code
    assert capsys.readouterr().err.strip() == (
        f"stopped by {by} before the job finished: nothing half-written is left, as a store takes only whole "
        "versions and a report folder only whole reports")
    assert sorted(entry.name for entry in model_dir.iterdir()) == ["1", "2"]  # no hidden .tmp-* folder
    assert signal.getsignal(signal.SIGTERM) is handler  # given back: the job may run inside another program


def test_a_stop_passes_through_code_that_wraps_every_error_in_one_of_its_own(model_dir, monkeypatch, capsys):
    """As a library's `except Exception` does (TensorFlow's and Keras' wrap errors): a stop is not an error."""
    def copy_wrapping_errors(source, target, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # docker stop, while the library works
        except Exception as error:  # noqa: BLE001 - what the library does
            raise RuntimeError("the copy failed") from error

    monkeypatch.setattr("training.rollback.shutil.copytree", copy_wrapping_errors)
    assert main(["rollback", "--to", "1", "--store", str(model_dir.parent), "--name", model_dir.name]) == 143
    assert capsys.readouterr().err.startswith("stopped by SIGTERM before the job finished")
    assert sorted(entry.name for entry in model_dir.iterdir()) == ["1", "2"]


def test_a_stop_that_a_binding_turns_into_its_own_error_still_ends_the_job_as_stopped(model_dir, monkeypatch, capsys):
    """Where C++ lies between the signal handler and the job, the stop can come back as the library's own error,
    which `except Exception` would not have made of it (TensorFlow's errors are Exceptions): exit 143 all the
    same, not 1 with a traceback."""
    def copy_through_a_binding(source, target, **kwargs):
        (Path(target) / "part").write_bytes(b"half a version")
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # docker stop, while the library works
        except BaseException as error:  # noqa: BLE001 - what a binding does with any Python exception
            raise RuntimeError("INTERNAL: an error in a Python callback") from error

    monkeypatch.setattr("training.rollback.shutil.copytree", copy_through_a_binding)
    assert main(["rollback", "--to", "1", "--store", str(model_dir.parent), "--name", model_dir.name]) == 143
    assert capsys.readouterr().err.startswith("stopped by SIGTERM before the job finished")
    assert sorted(entry.name for entry in model_dir.iterdir()) == ["1", "2"]


def test_an_error_without_a_stop_is_still_that_error(model_dir, monkeypatch):
    def failing_copy(source, target, **kwargs):
        raise RuntimeError("the copy failed")

    monkeypatch.setattr("training.rollback.shutil.copytree", failing_copy)
    with pytest.raises(RuntimeError, match="the copy failed"):
        main(["rollback", "--to", "1", "--store", str(model_dir.parent), "--name", model_dir.name])
    assert sorted(entry.name for entry in model_dir.iterdir()) == ["1", "2"]


def _swallowed_signal(signum: int = signal.SIGTERM) -> None:
    """docker stop (or Ctrl-C) while TensorFlow's C++ runs an op: it runs the signal handler itself, and drops its
    exception."""
    try:
        os.kill(os.getpid(), signum)
    except BaseException:  # noqa: BLE001, S110 - what the C++ does
        pass


@pytest.fixture
def in_a_terminal():
    """Ctrl-C as in a terminal, where Python raises KeyboardInterrupt (in the background, where the tests may run,
    SIGINT is ignored)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize(("signum", "code", "by"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_a_stop_that_a_library_swallowed_still_publishes_nothing(model_dir, monkeypatch, capsys, in_a_terminal,
                                                                 signum, code, by):
    copytree = shutil.copytree

    def copy_swallowing_the_stop(source, target, *args, **kwargs):
        monkeypatch.setattr(shutil, "copytree", copytree)  # its folders are copied as usual
        copytree(source, target, *args, **kwargs)  # the whole version: only the stop was lost
        _swallowed_signal(signum)

    monkeypatch.setattr("training.rollback.shutil.copytree", copy_swallowing_the_stop)
    assert main(["rollback", "--to", "1", "--store", str(model_dir.parent), "--name", model_dir.name]) == code
    assert capsys.readouterr().err.startswith(f"stopped by {by} before the job finished")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back
    # Stopped at the last moment, as it was about to rename its staging folder: no version, and no staging folder.
    assert sorted(entry.name for entry in model_dir.iterdir()) == [".publish.lock", "1", "2"]
    # The stop was that job's: the next one runs.
    assert main(["rollback", "--to", "1", "--store", str(model_dir.parent), "--name", model_dir.name]) == 0
    assert list_versions(model_dir) == [1, 2, 3]


def test_a_stop_swallowed_during_training_ends_it_before_the_next_step(tiny_config, tmp_path, monkeypatch, capsys):
    import keras

    epochs, steps = [], []

    def epoch_begins(self, epoch, logs=None):
        epochs.append(epoch)
        if epoch == 1:
            _swallowed_signal()

    monkeypatch.setattr(keras.callbacks.TerminateOnNaN, "on_epoch_begin", epoch_begins, raising=False)
    monkeypatch.setattr(keras.callbacks.TerminateOnNaN, "on_train_batch_end",
                        lambda self, batch, logs=None: steps.append((epochs[-1], batch)), raising=False)
    store = tmp_path / "store"
    code = main(["train", "--store", str(store), "--name", "tiny", "--data", tiny_config.data, "--epochs", "5",
                 "--latent-dim", "4", "--hidden-units", "16", "--target-fpr", "0.05"])
    assert code == 143
    assert capsys.readouterr().err.strip().endswith("stopped by SIGTERM before the job finished: nothing "
                                                   "half-written is left, as a store takes only whole versions and "
                                                   "a report folder only whole reports")
    assert epochs == [0, 1] and steps and {epoch for epoch, _ in steps} == {0}  # no step after the stop
    assert not store.exists() or list((store / "tiny").iterdir()) == []


def test_a_job_in_the_background_leaves_ctrl_c_ignored(model_dir, monkeypatch):
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell starts a background job
    seen = []
    monkeypatch.setattr("training.rollback.shutil.copytree",
                        lambda *args, **kwargs: seen.append(signal.getsignal(signal.SIGINT)))
    try:
        assert main(["rollback", "--to", "1", "--store", str(model_dir.parent), "--name", model_dir.name]) == 0
        assert seen == [signal.SIG_IGN] and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
