"""Decode fairness: how long a large single upload waits while a batch of large images is decoded.

Starts the service (`python -m app`, default settings: one decode thread) and posts one
`/score/batch` of --batch large PNGs (6000x6000 drawings, ~42 KB each, ?resize=true). While it is
being decoded, a second client posts single 6000x6000 PNGs to `/score?resize=true`, one after
another, and records each one's latency. Prints the batch's own time and the singles' latencies.

    python bench/fairness.py [--batch 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import free_port, png, start_server  # noqa: E402


def drawing() -> bytes:
    """A 6000x6000 PNG of one bar: cheap to send, ~0.1-0.3 s to decode and frame."""
    pixels = np.zeros((6000, 6000), np.uint8)
    pixels[1500:4500, 2800:3200] = 255
    return png(pixels)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="large images in the batch")
    args = parser.parse_args(argv)

    image = drawing()
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        server, _ = start_server(port, Path(scratch) / "results.db", workers=1)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=600) as client:
                alone = []
                for _ in range(5):
                    start = time.perf_counter()
                    client.post("/score?resize=true", files={"file": ("one.png", image, "image/png")}).raise_for_status()
                    alone.append(time.perf_counter() - start)
            batch_seconds, singles = run_beside_a_batch(base, image, args.batch)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"one 6000x6000 PNG alone: median {statistics.median(alone) * 1000:.0f} ms")
    print(f"/score/batch of {args.batch} such PNGs: {batch_seconds:.1f} s")
    if not singles:  # the batch was done before the singles began: a bigger one gives them time
        print("singles posted meanwhile: 0 (the batch was too small: raise --batch)")
        return
    print(f"singles posted meanwhile: {len(singles)}; latency median {statistics.median(singles) * 1000:.0f} ms, "
          f"max {max(singles) * 1000:.0f} ms")


def run_beside_a_batch(base: str, image: bytes, size: int) -> tuple[float, list[float]]:
    done = threading.Event()
    singles: list[float] = []

    def post_singles():
        with httpx.Client(base_url=base, timeout=600) as client:
            time.sleep(0.5)  # the batch is being decoded by now
            while not done.is_set():
                start = time.perf_counter()
                client.post("/score?resize=true", files={"file": ("one.png", image, "image/png")}).raise_for_status()
                singles.append(time.perf_counter() - start)

    thread = threading.Thread(target=post_singles)
    thread.start()
    with httpx.Client(base_url=base, timeout=600) as client:
        start = time.perf_counter()
        files = [("files", (f"{i}.png", image, "image/png")) for i in range(size)]
        response = client.post("/score/batch?resize=true", files=files)
        batch_seconds = time.perf_counter() - start
    response.raise_for_status()
    done.set()
    thread.join()
    return batch_seconds, singles


if __name__ == "__main__":
    main()
