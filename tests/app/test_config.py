import logging

from app.config import unknown_variables


def test_a_variable_no_setting_reads_is_named_with_the_setting_it_likely_meant():
    environ = {"VAE_API_KEY": "secret", "VAE_MODEL_STOR": "/srv/models", "vae_worker": "2", "VAE_COLOUR": "red",
               "VAE_PORT": "8000", "vae_log_level": "debug", "HOME": "/root"}
    assert unknown_variables(environ) == ["VAE_API_KEY (did you mean VAE_API_KEYS?)", "VAE_COLOUR",
                                          "VAE_MODEL_STOR (did you mean VAE_MODEL_STORE?)",
                                          "vae_worker (did you mean VAE_WORKERS?)"]


def test_variables_of_compose_and_the_tests_are_not_typos():
    environ = {"VAE_IMAGE": "vae:1", "VAE_JOBS_IMAGE": "vae-jobs:1", "VAE_PUBLISH_ADDRESS": "0.0.0.0",
               "VAE_PUBLISH_PORT": "8080", "VAE_TEST_BASE_IMAGE": "base:1"}
    assert unknown_variables(environ) == []


def test_the_service_warns_of_them_at_startup(start_client, monkeypatch, caplog):
    # A typo once left the service open to anyone, with only "no API keys configured" to say so
    monkeypatch.setenv("VAE_API_KEY", "a-key-that-was-meant-to-be-required")
    with caplog.at_level(logging.WARNING, logger="app.main"):
        start_client(ready=False)
    warnings = [record.getMessage() for record in caplog.records if record.name == "app.main"]
    expected = ("ignored, as no setting has their name: VAE_API_KEY (did you mean VAE_API_KEYS?); the settings are "
                "in the README, \"Configuration\"")
    assert warnings == [expected]
    assert "a-key-that-was-meant" not in caplog.text
