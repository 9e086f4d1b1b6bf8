import subprocess
import sys
import threading
from pathlib import Path

import pytest

from training.arguments import build_parser
from training.cli import main


def test_defaults_match_the_documented_ones():
    args = build_parser().parse_args(["train"])
    assert (args.epochs, args.target_fpr, args.name, str(args.store)) == (80, 0.01, "mnist-vae", "model_store")


def _subcommands(parser):
    return next(action for action in parser._actions if action.choices and action.dest == "command").choices


def test_every_option_of_every_command_says_what_it_does_and_its_default():
    for name, command in _subcommands(build_parser()).items():
        for action in command._actions:
            if action.dest == "help":
                continue
            assert action.help, (name, action.option_strings)
            if action.default not in (None, False, []) and not action.required:
                shown = "".join(command.format_help().split())  # argparse wraps lines, also at hyphens
                assert "".join(str(action.default).split()) in shown, (name, action.option_strings)
                assert "default" in action.help, (name, action.option_strings)


@pytest.mark.parametrize("argv, message", [
    (["train", "--normal", "12"], "expected digits 0-9"),
    (["train", "--target-fpr", "1.5"], "strictly between 0 and 1"),
    (["train", "--epochs", "0"], "positive integer"),
    (["train", "--data", "a.npz", "--images", "dir"], "not allowed with"),
    (["train", "--seed", "-1"], "from 0 to 2**32 - 1"),
    (["train", "--learning-rate", "0"], "--learning-rate: must be a positive number"),
    (["train", "--beta", "nan"], "--beta: must be a number >= 0"),
    (["train", "--target-fpr", "1%"], "--target-fpr: expected a number, got '1%'"),
    (["train", "--epochs", "1e2"], "--epochs: expected a whole number, got '1e2'"),
    (["train", "--seed", "abc"], "--seed: expected a whole number, got 'abc'"),
    (["rollback", "--to", "v3"], "--to: expected a whole number, got 'v3'"),
    (["train", "--target-fpr", "5"], "got 5 (a fraction: 0.01 is 1 %)"),
    (["train", "--hidden-units", "1"], "--hidden-units: must be 2 or more, got 1"),  # was a Keras traceback
    # Published outside the store (../evil), or into the store's own folder ('')
    (["train", "--name", "../evil"], "--name: a model is named by letters, digits and ._-"),
    (["versions", "--name", ""], "--name: a model is named by letters, digits and ._-"),
])
def test_bad_options_are_rejected_with_a_reason(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_data_is_a_clean_error(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "absent.npz"), "--store", str(tmp_path / "store")])
    assert code == 2
    assert "MNIST file not found" in capsys.readouterr().err
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("saved_model.pb"))


@pytest.mark.parametrize("data", [["--data", "absent.npz"], ["--images", "absent"]])
def test_missing_data_is_said_before_tensorflow_is_imported(tmp_path, data):
    # In a fresh interpreter: the tests have imported TensorFlow long ago. Its import takes 5 s, which a
    # mistyped path used to wait for.
    script = ("import sys; from training.cli import main; code = main(sys.argv[1:]); "
              "print('imported TensorFlow' if 'tensorflow' in sys.modules else 'not imported'); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, "train", data[0], str(tmp_path / data[1]),
                           "--store", str(tmp_path / "store")], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 2, done.stderr
    assert "not found" in done.stderr
    assert done.stdout.strip() == "not imported"


def test_invert_without_an_image_folder_is_a_clean_error(synthetic_mnist, tmp_path, capsys):
    code = main(["train", "--data", str(synthetic_mnist), "--invert", "--store", str(tmp_path / "store")])
    assert code == 2
    assert "--invert applies to an --images folder" in capsys.readouterr().err


def test_normal_digits_with_an_image_folder_are_a_clean_error(tmp_path, capsys):
    code = main(["train", "--images", str(tmp_path), "--normal", "7", "--store", str(tmp_path / "store")])
    assert code == 2
    assert "--normal picks MNIST digits; with --images every image in the folder is normal" in capsys.readouterr().err


def test_framing_without_an_image_folder_is_a_clean_error(synthetic_mnist, tmp_path, capsys):
    code = main(["train", "--data", str(synthetic_mnist), "--framing", "pad", "--store", str(tmp_path / "store")])
    assert code == 2
    assert "--framing applies to an --images folder" in capsys.readouterr().err


def test_held_out_fractions_that_leave_nothing_to_train_on_are_a_clean_error(synthetic_mnist, tmp_path, capsys):
    code = main(["train", "--data", str(synthetic_mnist), "--calibration-fraction", "0.9",
                 "--validation-fraction", "0.2", "--store", str(tmp_path / "store")])
    assert code == 2
    assert "must add up to less than 1" in capsys.readouterr().err


def test_a_diverging_run_publishes_nothing(synthetic_mnist, tmp_path, capsys):
    code = main(["train", "--data", str(synthetic_mnist), "--learning-rate", "1e9", "--epochs", "3",
                 "--batch-size", "64", "--latent-dim", "4", "--hidden-units", "16", "--store", str(tmp_path / "store")])
    assert code == 2
    assert "training diverged" in capsys.readouterr().err
    assert not any((tmp_path / "store").rglob("saved_model.pb"))


@pytest.mark.parametrize("target_fpr, message", [
    ("0.0001", "--target-fpr 0.0001 needs at least 9999 held-out normal images to calibrate, but"),
    ("5e-324", "too small for any number of calibration scores"),
])
def test_a_target_fpr_the_held_out_images_cannot_calibrate_is_refused_before_training(
        synthetic_mnist, tmp_path, capsys, monkeypatch, target_fpr, message):
    def no_training(*args, **kwargs):
        raise AssertionError("trained although the threshold could not have been calibrated")

    monkeypatch.setattr("training.model.VAE.fit", no_training)
    code = main(["train", "--data", str(synthetic_mnist), "--target-fpr", target_fpr,
                 "--store", str(tmp_path / "store")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not any((tmp_path / "store").rglob("saved_model.pb"))


def test_the_command_line_runs_from_a_thread_other_than_the_main_one(tmp_path, capsys):
    # Only the main thread may set a signal handler: from another, the job keeps SIGTERM's default.
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(code=main(
        ["versions", "--store", str(tmp_path), "--name", "absent"])))
    runner.start()
    runner.join()
    assert outcome == {"code": 2}
    assert f"{tmp_path / 'absent'} does not exist" in capsys.readouterr().err
