import datetime as dt
import os
from pathlib import Path

import pytest

from app.cli import main
from app.config import Settings


@pytest.fixture(autouse=True)
def restored_environment(monkeypatch):
    """main() sets VAE_WORKERS and PROMETHEUS_MULTIPROC_DIR for uvicorn's workers: undone after each test."""
    for variable in ("VAE_WORKERS", "PROMETHEUS_MULTIPROC_DIR"):
        monkeypatch.setenv(variable, "recorded")
        monkeypatch.delenv(variable)


def test_bad_settings_exit_2_naming_each_variable(monkeypatch, capsys):
    monkeypatch.setenv("VAE_MAX_BATCH", "0")
    monkeypatch.setenv("VAE_LOG_LEVEL", "loud")
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err and "Traceback" not in err
    assert "VAE_MAX_BATCH='0': Input should be greater than or equal to 1" in err
    assert "VAE_LOG_LEVEL='loud'" in err


@pytest.mark.parametrize("variable, value, hint", [
    ("VAE_MAX_UPLOAD_BYTES", "16MB", "(a whole number of bytes, such as 16777216 for 16 MiB, without a unit)"),
    ("VAE_POLL_INTERVAL_S", "10s", "(seconds, such as 10, without a unit)"),
    ("VAE_RESULTS_MAX_AGE_DAYS", "30d", "(days, such as 30, without a unit)"),
])
def test_a_number_setting_written_with_a_unit_is_told_its_unit(monkeypatch, capsys, variable, value, hint):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit):
        main([])
    assert f"{variable}={value!r}: Input should be a valid" in (err := capsys.readouterr().err) and hint in err


def test_log_level_is_case_insensitive(monkeypatch):
    monkeypatch.setenv("VAE_LOG_LEVEL", "WARNING")
    assert Settings().log_level == "warning"


def test_a_bad_api_key_exits_2_without_printing_the_key(monkeypatch, capsys):
    monkeypatch.setenv("VAE_API_KEYS", "hunter2")
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "VAE_API_KEYS=<hidden>" in err and "at least 16" in err and "hunter2" not in err


def test_a_results_db_that_cannot_be_opened_exits_2_with_the_reason(monkeypatch, capsys, tmp_path):
    not_a_database = tmp_path / "results.db"
    not_a_database.write_text("these are not the results you are looking for")
    monkeypatch.setenv("VAE_RESULTS_DB", str(not_a_database))
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"cannot open the results store VAE_RESULTS_DB='{not_a_database}': file is not a database" in err
    assert not_a_database.read_text().startswith("these are not")  # left as it was


def test_a_folder_given_as_the_results_db_exits_2_naming_a_file_in_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("VAE_RESULTS_DB", str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert (f"VAE_RESULTS_DB='{tmp_path}': it is a folder; give the path of a file in it, such as "
            f"{tmp_path / 'results.db'}") in capsys.readouterr().err


@pytest.mark.parametrize(("value", "expected"), [("30", 30.0), ("0.5", 0.5), ("", None)])
def test_the_age_limit_of_results_is_in_days_and_empty_means_none(monkeypatch, value, expected):
    monkeypatch.setenv("VAE_RESULTS_MAX_AGE_DAYS", value)  # compose passes an unset variable on as ""
    settings = Settings()
    assert settings.results_max_age_days == expected
    assert settings.results_max_age == (None if expected is None else dt.timedelta(days=expected))


@pytest.mark.parametrize(("value", "expected"), [("3", 3), ("", None)])
def test_an_empty_version_pin_pins_nothing(monkeypatch, value, expected):
    monkeypatch.setenv("VAE_MODEL_VERSION", value)  # compose passes an unset variable on as ""
    assert Settings().model_version == expected


@pytest.mark.parametrize(("variable", "value", "message"), [
    *(("VAE_RESULTS_MAX_AGE_DAYS", value, "") for value in ("0", "-1", "1e9", "a month")),
    *(("VAE_ROOT_PATH", value, "Value error, must be empty or a path prefix such as /inspection")
      for value in ("inspection", "/inspection/", "/a b", "/")),
    ("VAE_PORT", "tcp://10.96.0.12:8000", ("Value error, looks like Kubernetes' service link of a Service named "
                                           "'vae': set enableServiceLinks: false")),
    # A folder outside the store, or the store itself, served as if it were a model's
    *(("VAE_MODEL_NAME", value, "Value error, a model is named by letters, digits and ._-")
      for value in ("../other-store/model", "a/b", "", ".")),
])
def test_a_setting_that_cannot_work_exits_2_naming_it(monkeypatch, capsys, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert f"{variable}='{value}': {message}" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["", "/inspection", "/plant-2/vae.v1"])
def test_a_root_path_is_a_path_prefix_or_empty(monkeypatch, value):
    monkeypatch.setenv("VAE_ROOT_PATH", value)
    assert Settings().root_path == value


@pytest.fixture
def uvicorn_run(monkeypatch, tmp_path) -> dict:
    """The keyword arguments main() started uvicorn with (none if it did not start it); results in tmp_path."""
    monkeypatch.setenv("VAE_RESULTS_DB", str(tmp_path / "results.db"))
    started = {}
    monkeypatch.setattr("app.cli.serve", lambda *args, **kwargs: started.update(kwargs))
    return started


def _exit_code_of(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code


def test_help_names_each_options_variable_and_its_default_here(monkeypatch, capsys):
    monkeypatch.setenv("VAE_PORT", "9000")
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert exit_info.value.code == 0
    for option, variable, default in (("--host", "VAE_HOST", "127.0.0.1"), ("--port", "VAE_PORT", "9000"),
                                      ("--workers", "VAE_WORKERS", "1"), ("--log-level", "VAE_LOG_LEVEL", "info")):
        assert f"({variable}; default here: {default})" in shown, option


def test_the_number_of_workers_reaches_the_workers_through_the_environment(uvicorn_run):
    # uvicorn starts each worker from the environment, and a worker's startup depends on how many there are.
    main(["--workers", "3"])
    assert uvicorn_run["workers"] == 3
    assert Settings().workers == 3


@pytest.mark.parametrize(("value", "message"), [("0", "must be 1 or more, not 0"),
                                                ("two", "must be a whole number, not 'two'")])
def test_a_number_of_workers_that_cannot_work_exits_2_naming_it(uvicorn_run, capsys, value, message):
    assert _exit_code_of(["--workers", value]) == 2
    assert f"argument --workers: {message}" in capsys.readouterr().err
    assert not uvicorn_run


@pytest.mark.parametrize(("value", "message"), [("70000", "must be a port from 1 to 65535, not 70000"),
                                                ("0", "must be a port from 1 to 65535, not 0"),
                                                ("-1", "must be a port from 1 to 65535, not -1"),
                                                ("http", "must be a whole number, not 'http'")])
def test_a_port_out_of_range_exits_2_instead_of_listening_elsewhere(uvicorn_run, capsys, value, message):
    # 70000 used to be bound as 4464 (70000 - 65536) while the log said 70000
    assert _exit_code_of(["--port", value]) == 2
    assert f"argument --port: {message}" in capsys.readouterr().err
    assert not uvicorn_run


def test_a_port_in_range_reaches_uvicorn(uvicorn_run):
    main(["--port", "65535"])
    assert uvicorn_run["port"] == 65535


def test_a_host_that_does_not_resolve_exits_2_naming_it(uvicorn_run, capsys):
    assert _exit_code_of(["--host", "no-such-host.invalid"]) == 2
    assert "cannot listen on host 'no-such-host.invalid' (--host or VAE_HOST)" in capsys.readouterr().err
    assert not uvicorn_run


@pytest.mark.parametrize("workers", [1, 2])
def test_several_workers_share_a_fresh_metrics_directory_removed_after_the_run(monkeypatch, tmp_path, workers):
    monkeypatch.setenv("VAE_RESULTS_DB", str(tmp_path / "results.db"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "left over from before"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    seen = {}

    def run(*args, **kwargs):
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        seen["directory"] = directory and Path(directory)
        seen["contents"] = directory and list(Path(directory).iterdir())

    monkeypatch.setattr("app.cli.serve", run)
    main(["--workers", str(workers)])
    if workers == 1:  # metrics in memory
        assert seen["directory"] is None
    else:
        assert seen["directory"].parent == tmp_path and seen["directory"].name.startswith("vae-metrics-")
        assert [path.name for path in seen["contents"]] == ["supervisor.lock"]  # fresh: no worker's old counts
        assert not seen["directory"].exists()
