"""New versions are picked up, self-checked and swapped in without failing requests; bad ones refused."""

import asyncio
import logging
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.detector import Detector
from app.main import create_app
from app.registry import ModelRegistry
from tests.app.conftest import png_bytes, publish_copy, wait_until_ready


def test_new_version_is_swapped_in_while_requests_keep_succeeding(client, store, normal_pixels):
    statuses, versions, stop = [], set(), threading.Event()
    png = png_bytes(normal_pixels)

    def keep_scoring():
        while not stop.is_set():
            response = client.post("/score", files={"file": ("x.png", png, "image/png")})
            statuses.append(response.status_code)
            if response.status_code == 200:
                versions.add(response.json()["model"]["version"])

    worker = threading.Thread(target=keep_scoring)
    worker.start()
    try:
        publish_copy(store, 2)
        wait_until_ready(client, version=2)
        for _ in range(20):  # keep traffic flowing after the swap as well
            if 2 in versions:
                break
            threading.Event().wait(0.05)
    finally:
        stop.set()
        worker.join()
    assert statuses and set(statuses) == {200}
    assert versions == {1, 2}
    assert client.get("/model").json()["version"] == 2


def test_broken_and_failing_versions_are_refused_and_the_old_one_keeps_serving(client, store, normal_pixels):
    def corrupt_graph(directory, metadata):
        (directory / "saved_model.pb").write_bytes(b"garbage")

    def wrong_reference_scores(directory, metadata):
        for reference in metadata["reference_images"]:
            reference["scores"]["score"] += 1.0

    publish_copy(store, 2, corrupt_graph)
    publish_copy(store, 3, wrong_reference_scores)
    registry = client.app.state.registry
    for _ in range(200):
        if {2, 3} <= set(registry.rejected_versions):
            break
        threading.Event().wait(0.05)
    assert "cannot load the SavedModel" in registry.rejected_versions[2]
    assert "self-check failed" in registry.rejected_versions[3]
    assert client.get("/readyz").json()["model"]["version"] == 1
    response = client.post("/score", files={"file": ("x.png", png_bytes(normal_pixels), "image/png")})
    assert response.status_code == 200 and response.json()["model"]["version"] == 1


def test_pinned_version_is_served_even_when_newer_exist(start_client, store):
    publish_copy(store, 2)
    client = start_client(model_version=1)
    assert client.get("/readyz").json()["model"]["version"] == 1


def test_startup_falls_back_to_an_older_version_when_the_newest_is_broken(start_client, store):
    publish_copy(store, 2, lambda directory, metadata: (directory / "saved_model.pb").write_bytes(b"x"))
    client = start_client()
    assert client.get("/readyz").json()["model"]["version"] == 1
    assert 2 in client.app.state.registry.rejected_versions


def test_scores_of_a_swapped_version_use_its_own_threshold(client, store, normal_pixels):
    def lower_threshold(directory, metadata):
        metadata["threshold"] = -1.0

    publish_copy(store, 2, lower_threshold)
    wait_until_ready(client, version=2)
    body = client.post("/score", files={"file": ("x.png", png_bytes(normal_pixels), "image/png")}).json()
    assert body["model"]["version"] == 2 and body["threshold"] == -1.0 and body["is_anomaly"]
    assert not np.isnan(body["score"])


def test_a_rollback_is_served_at_the_next_poll_without_a_restart(client, store, normal_pixels):
    from training.rollback import roll_back

    first_threshold = client.get("/model").json()["threshold"]
    publish_copy(store, 2, lambda directory, metadata: metadata.update(threshold=-1.0))  # a bad version
    wait_until_ready(client, version=2)

    roll_back(store / "tiny", 1)
    wait_until_ready(client, version=3)

    body = client.post("/score", files={"file": ("x.png", png_bytes(normal_pixels), "image/png")}).json()
    assert body["model"]["version"] == 3 and body["threshold"] == first_threshold and not body["is_anomaly"]
    assert client.get("/model").json()["origin"] == {"made_by": "rollback", "from_version": 1,
                                                     "replaced_version": 2}


def test_a_broken_pinned_version_is_tried_once_and_the_reason_is_reported(store):
    publish_copy(store, 2, lambda directory, metadata: (directory / "saved_model.pb").write_bytes(b"x"))
    attempts = []

    def counting_load(path):
        attempts.append(path.name)
        return Detector.load(path)

    settings = Settings(model_store=store, model_name="tiny", model_version=2, poll_interval_s=0.05,
                        results_db=store.parent / "pinned.db")
    with TestClient(create_app(settings, detector_loader=counting_load)) as client:
        for _ in range(40):  # ~2 s of polling
            threading.Event().wait(0.05)
        response = client.get("/readyz")
    assert response.status_code == 503
    assert "version 2" in response.json()["detail"] and "cannot load the SavedModel" in response.json()["detail"]
    assert attempts == ["2"]


def test_nothing_to_serve_is_logged_once_with_the_reason_not_at_every_poll(store, caplog):
    settings = Settings(model_store=store, model_name="tyni", poll_interval_s=0.02, results_db=store.parent / "x.db")
    with caplog.at_level(logging.WARNING, logger="app.registry"), TestClient(create_app(settings)) as client:
        threading.Event().wait(0.5)  # ~25 polls
        assert client.get("/readyz").status_code == 503
    warnings = [r.getMessage() for r in caplog.records if r.name == "app.registry"]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"no model to serve: {store / 'tyni'} does not exist or is not a folder; the "
                                  f"models in {store} are tiny. /readyz")
    (store / "empty").mkdir()
    assert "no usable model version in" in _first_reason(Settings(model_store=store, model_name="empty"))
    assert "version 7 of" in _first_reason(Settings(model_store=store, model_name="tiny", model_version=7))


def test_a_relative_store_that_is_not_found_names_the_working_directory(store, monkeypatch):
    # vae-serve started from another folder than the project's does not find the default store, model_store
    monkeypatch.chdir(store.parent)
    reason = _first_reason(Settings(model_store="model_store", model_name="tiny"))
    assert reason == (f"model_store/tiny does not exist or is not a folder (relative to the working directory, "
                      f"{store.parent})")
    assert "working directory" not in _first_reason(Settings(model_store=store, model_name="nope"))


def test_a_models_own_folder_given_as_the_store_says_how_to_set_it(store):
    reason = _first_reason(Settings(model_store=store / "tiny", model_name="mnist-vae"))
    assert reason == (f"{store / 'tiny' / 'mnist-vae'} does not exist or is not a folder; VAE_MODEL_STORE is a "
                      f"model's folder itself (it holds versions 1): set it to {store} and VAE_MODEL_NAME to tiny")


def _first_reason(settings) -> str:
    registry = ModelRegistry(settings)
    asyncio.run(registry.refresh())
    return str(registry.last_error)


def _rejection_of(client, store, edit_metadata) -> str:
    """Publish a copy of version 1 as version 2 with its metadata edited; the reason it was refused."""
    publish_copy(store, 2, lambda directory, metadata: edit_metadata(metadata))
    registry = client.app.state.registry
    for _ in range(200):
        if 2 in registry.rejected_versions:
            break
        threading.Event().wait(0.05)
    assert client.get("/readyz").json()["model"]["version"] == 1  # the current version keeps serving
    return registry.rejected_versions[2]


def test_metadata_without_required_fields_is_refused_cleanly(client, store):
    reason = _rejection_of(client, store, lambda metadata: metadata.pop("score_methods"))
    assert "lacks 'score_methods'" in reason


def test_a_version_framed_in_a_way_this_code_does_not_know_is_refused(client, store):
    reason = _rejection_of(client, store, lambda metadata: metadata["input"].update(framing="crop"))
    assert "2: its input framing 'crop' is unknown (known: pad, mnist)" in reason
    assert "unreadable" not in reason


def test_a_version_whose_threshold_is_not_a_number_is_refused(client, store):
    # json writes NaN and reads it back; with a NaN threshold no image would ever be flagged
    reason = _rejection_of(client, store, lambda metadata: metadata.update(threshold=float("nan")))
    assert "threshold nan is not a finite number" in reason


def _source_entry(metadata: dict) -> dict:
    return {"threshold": metadata["threshold"], "target_fpr": 0.05, "calibration_scores": [0.1, 0.2]}


@pytest.mark.parametrize(("edit", "reason_part"), [
    (lambda metadata: metadata.update(calibration_scores="oops"), "calibration_scores"),
    (lambda metadata: metadata.update(calibration_scores=[1.0, float("nan")]), "calibration_scores"),
    (lambda metadata: metadata.update(calibration_scores=[]), "calibration_scores"),
    (lambda metadata: metadata.update(heatmap_scale="wide"), "heatmap_scale"),
    (lambda metadata: metadata.update(score_methods=7), "score_methods"),
    (lambda metadata: metadata.update(target_fpr=1.5), "target_fpr 1.5 is not a rate between 0 and 1"),
    (lambda metadata: metadata.update(source_calibrations="oops"), "source_calibrations must map sources"),
    (lambda metadata: metadata.update(source_calibrations={"line 3": _source_entry(metadata)}),
     "source_calibrations names 'line 3', which is not a source the service accepts"),
    (lambda metadata: metadata.update(source_calibrations={"line-3": {"threshold": 1.0}}),
     "source_calibrations['line-3'] needs threshold, target_fpr and calibration_scores"),
    (lambda metadata: metadata.update(source_calibrations={"line-3": {**_source_entry(metadata), "threshold": None}}),
     "source_calibrations['line-3'].threshold None is not a finite number"),
    (lambda metadata: metadata.update(source_calibrations={"line-3": {**_source_entry(metadata),
                                                                      "calibration_scores": [float("inf")]}}),
     "source_calibrations['line-3'].calibration_scores must be a non-empty list of finite numbers"),
])
def test_metadata_with_malformed_values_is_refused_once_with_the_field_named(client, store, edit, reason_part):
    reason = _rejection_of(client, store, edit)
    assert reason_part in reason


def test_an_unforeseen_load_error_refuses_the_version_once_instead_of_at_every_poll(start_client, store):
    attempts = []

    def flaky_load(path):
        attempts.append(path.name)
        if path.name == "2":
            raise RuntimeError("something no check foresaw")
        return Detector.load(path)

    settings = Settings(model_store=store, model_name="tiny", poll_interval_s=0.05,
                        results_db=store.parent / "flaky.db")
    with TestClient(create_app(settings, detector_loader=flaky_load)) as client:
        wait_until_ready(client, version=1)
        publish_copy(store, 2)
        for _ in range(40):  # ~2 s of polling
            threading.Event().wait(0.05)
        assert client.get("/readyz").json()["model"]["version"] == 1
        assert "something no check foresaw" in client.app.state.registry.rejected_versions[2]
    assert attempts.count("2") == 1


def test_p_values_do_not_depend_on_the_order_of_the_stored_calibration_scores(client, store, normal_pixels):
    image = {"file": ("x.png", png_bytes(normal_pixels), "image/png")}
    before = client.post("/score", files=image).json()
    publish_copy(store, 2, lambda directory, metadata: metadata["calibration_scores"].reverse())
    wait_until_ready(client, version=2)
    after = client.post("/score", files=image).json()
    assert after["model"]["version"] == 2 and after["score"] == before["score"]
    assert after["p_value"] == before["p_value"]


def _gated_loader(gate: threading.Event):
    def load(path):
        gate.wait(30)
        return Detector.load(path)
    return load


def test_one_worker_answers_while_it_loads_and_says_it_is_not_ready(make_settings):
    gate = threading.Event()
    with TestClient(create_app(make_settings(workers=1), detector_loader=_gated_loader(gate))) as client:
        assert client.get("/healthz").status_code == 200
        loading = client.get("/readyz")
        gate.set()
        wait_until_ready(client)
    assert loading.status_code == 503 and "still loading" in loading.json()["detail"]


def test_one_of_several_workers_starts_answering_only_once_its_model_is_loaded(make_settings):
    # Several workers share a socket, and a worker accepts connections once its startup is over: so
    # while one loads (restarted after a crash, say), the workers that are ready take the requests.
    gate = threading.Event()
    threading.Timer(0.5, gate.set).start()
    with TestClient(create_app(make_settings(workers=2), detector_loader=_gated_loader(gate))) as client:
        assert gate.is_set()
        first = client.get("/readyz")
    assert first.status_code == 200 and first.json()["model"]["version"] == 1


def test_one_of_several_workers_still_starts_when_no_model_can_be_loaded(make_settings, store):
    (store / "tiny" / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    with TestClient(create_app(make_settings(workers=2))) as client:
        response = client.get("/readyz")
    assert response.status_code == 503 and "cannot load the SavedModel" in response.json()["detail"]
