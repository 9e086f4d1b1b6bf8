"""Backing up the results store while the service scores: how long a backup takes, and what it costs scoring.

Fills a results store with --results results (random 28x28 pictures, as large as real ones), starts the
service on it (`python -m app`), and posts single MNIST-sized PNGs to `/score` one after another: first
alone, then while `vae-backup` copies the store, --repeats times each, alternated. Prints the backups' times
and the singles' latencies, then stops the service and times `vae-backup --restore`.

    python bench/backup.py [--results 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import ROOT, digit_images, free_port, png, start_server  # noqa: E402

sys.path.insert(0, str(ROOT))
from app.results import ResultStore, StoredResult  # noqa: E402

BACKUP = [sys.executable, "-c", "from app.backup import main; main()"]


def fill(database: Path, count: int) -> None:
    rng = np.random.default_rng(0)

    def result(n: int) -> StoredResult:
        return StoredResult(
            id=f"{n:032x}", created_at=f"2026-12-03T10:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}.{n:06d}+00:00",
            model_name="mnist-vae", model_version=4, score_method="dssim_knn", score=0.1, threshold=3.6,
            threshold_source="model", target_fpr=0.01, p_value=0.5, is_anomaly=n % 97 == 0,
            scores={"mse": 0.1, "dssim": 0.2}, source=f"line-{n % 4}", ref=f"SN-{n}",
            image=rng.integers(0, 256, (28, 28), dtype=np.uint8),
            reconstruction=rng.integers(0, 256, (28, 28), dtype=np.uint8),
            difference=rng.standard_normal((28, 28)).astype(np.float16), heatmap_scale=0.2)

    async def write(store: ResultStore) -> None:
        for start in range(0, count, 1000):
            await store.save([result(n) for n in range(start, min(start + 1000, count))])

    store = ResultStore(database, max_rows=count + 1000)
    store.open()
    try:
        asyncio.run(write(store))
    finally:
        store.close()


def post_singles(base: str, image: bytes, until: threading.Event, latencies: list[float]) -> None:
    with httpx.Client(base_url=base, timeout=60) as client:
        while not until.is_set():
            start = time.perf_counter()
            client.post("/score", files={"file": ("one.png", image, "image/png")}).raise_for_status()
            latencies.append(time.perf_counter() - start)


def measure(base: str, image: bytes, env: dict, destination: Path | None) -> tuple[float, list[float]]:
    """The singles' latencies for as long as a backup to `destination` takes (or 3 s without one)."""
    until, latencies = threading.Event(), []
    thread = threading.Thread(target=post_singles, args=(base, image, until, latencies))
    thread.start()
    time.sleep(0.3)  # the singles are under way
    started = time.perf_counter()
    if destination is None:
        time.sleep(3)
    else:
        subprocess.run([*BACKUP, "--overwrite", str(destination)], env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    until.set()
    thread.join()
    return seconds, latencies[3:]  # the ones before the backup began are left out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=100_000, help="results in the store")
    parser.add_argument("--repeats", type=int, default=3, help="runs alone and during a backup, alternated")
    parser.add_argument("--mnist", default=os.environ.get("MNIST_PATH"), help="MNIST .npz for the test image")
    args = parser.parse_args(argv)

    image = png(digit_images(args.mnist, 1)[0])
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        database, copy = work / "results.db", work / "backup.db"
        started = time.perf_counter()
        fill(database, args.results)
        print(f"store of {args.results:,} results: {database.stat().st_size / 1e6:.0f} MB, "
              f"filled in {time.perf_counter() - started:.0f} s")
        env = {**os.environ, "VAE_RESULTS_DB": str(database)}
        port = free_port()
        server, _ = start_server(port, database, workers=1)
        base = f"http://127.0.0.1:{port}"
        alone: list[float] = []
        during: list[float] = []
        backups: list[float] = []
        try:
            for _ in range(args.repeats):
                alone += measure(base, image, env, None)[1]
                seconds, latencies = measure(base, image, env, copy)
                backups.append(seconds)
                during += latencies
        finally:
            server.terminate()
            server.wait(timeout=30)
        started = time.perf_counter()
        subprocess.run([*BACKUP, "--restore", str(copy)], env=env, check=True, capture_output=True)
        restore_seconds = time.perf_counter() - started

    print(f"backup ({copy.name}, {args.repeats} runs): median {statistics.median(backups):.1f} s, "
          f"max {max(backups):.1f} s")
    for label, latencies in (("alone", alone), ("during a backup", during)):
        print(f"/score {label}: {len(latencies)} requests, latency median {statistics.median(latencies) * 1000:.1f} ms,"
              f" p99 {np.percentile(latencies, 99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    print(f"restore, with the service stopped (keeping the replaced store beside it): {restore_seconds:.1f} s")


if __name__ == "__main__":
    main()
