"""Serving benchmark: the real service, real PNG uploads, over loopback.

Starts `python -m app` (one uvicorn worker) with the default model, then drives it with Debian's `wrk`
(multipart PNG uploads from a Lua script). In the same run it measures `GET /healthz` on the same
server: the HTTP-stack ceiling every endpoint is compared to. Each figure is the median of --repeats
runs; the ratio to the ceiling is taken within each repeat, so machine noise mostly cancels.

    python bench/serve.py [--duration 5] [--repeats 3] [--mnist PATH]
"""

from __future__ import annotations

import argparse
import io
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BOUNDARY = "benchboundary7f3a"
CONCURRENCIES = (1, 16, 64)
BATCH_IMAGES = 256
BATCH_CONCURRENCY = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def digit_images(mnist: str | None, count: int) -> list[np.ndarray]:
    if mnist and Path(mnist).is_file():
        with np.load(mnist) as data:
            return list(data["x_test"][data["y_test"] == 1][:count])
    sys.path.insert(0, str(ROOT))
    from tests.synthetic import make_images  # a stand-in when MNIST is not at hand

    return list(make_images(np.ones(count, int), seed=0))


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(field: str, payloads: list[bytes]) -> bytes:
    parts = [(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{i}.png\"\r\n"
              "Content-Type: image/png\r\n\r\n").encode() + data + b"\r\n" for i, data in enumerate(payloads)]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def lua_script(directory: Path, body: bytes | None, api_key: str | None = None, idempotency_keys: bool = False) -> Path:
    script = directory / f"script-{len(body or b'')}.lua"
    auth = f'wrk.headers["Authorization"] = "Bearer {api_key}"\n' if api_key else ""
    if idempotency_keys:  # a new key per request, and per wrk run, so that none is a replay
        auth += ('math.randomseed(os.time() + math.floor(os.clock() * 1e6))\n'
                 'local prefix, counter = tostring(math.random(1, 1e9)), 0\n'
                 'request = function()\n  counter = counter + 1\n'
                 '  wrk.headers["Idempotency-Key"] = prefix .. "-" .. counter\n'
                 '  return wrk.format()\nend\n')
    if body is None:
        script.write_text('wrk.method = "GET"\n' + auth)
        return script
    body_path = directory / f"body-{len(body)}.bin"
    body_path.write_bytes(body)
    script.write_text(f'local f = io.open("{body_path}", "rb")\nwrk.method = "POST"\nwrk.body = f:read("*all")\n'
                      f'f:close()\nwrk.headers["Content-Type"] = "multipart/form-data; boundary={BOUNDARY}"\n'
                      + auth + 'response = function(status, headers, body)\n'
                      '  if status ~= 200 then io.stderr:write("HTTP " .. status .. "\\n") end\nend\n')
    return script


def seconds(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(url: str, script: Path, connections: int, duration: float) -> dict:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "-s", str(script), url]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    out = completed.stdout
    errors = completed.stderr.count("HTTP ") + sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": seconds(re.search(r"\s50%\s+(\S+)", out).group(1)),
            "p99": seconds(re.search(r"\s99%\s+(\S+)", out).group(1)),
            "errors": errors}


def start_server(port: int, db: Path, workers: int, api_key: str | None = None) -> tuple[subprocess.Popen, float]:
    env = {**os.environ, "VAE_RESULTS_DB": str(db), "VAE_LOG_LEVEL": "warning", "VAE_POLL_INTERVAL_S": "0",
           "VAE_API_KEYS": api_key or ""}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port), "--log-level", "warning",
                                "--workers", str(workers)], cwd=ROOT, env=env)
    while time.monotonic() - started < 120:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                return process, time.monotonic() - started
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit("the service exited during start-up")
        time.sleep(0.02)
    process.kill()
    raise SystemExit("the service did not become ready within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=5, help="whole seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mnist", default=os.environ.get("MNIST_PATH"))
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--with-api-key", action="store_true",
                        help="serve with VAE_API_KEYS set and send the key on every scoring request")
    parser.add_argument("--with-idempotency-keys", action="store_true",
                        help="send a new Idempotency-Key with every POST /score and /score/batch")
    args = parser.parse_args()
    api_key = secrets.token_urlsafe(32) if args.with_api_key else None
    if not shutil.which("wrk"):
        raise SystemExit("wrk is required: apt-get install wrk")

    images = digit_images(args.mnist, BATCH_IMAGES)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        single = lua_script(work, multipart("file", [png(images[0])]), api_key, args.with_idempotency_keys)
        batch = lua_script(work, multipart("files", [png(image) for image in images]), api_key,
                           args.with_idempotency_keys)
        ceiling = lua_script(work, None)
        port = free_port()
        process, ready_seconds = start_server(port, work / "results.db", args.workers, api_key)
        base = f"http://127.0.0.1:{port}"
        try:
            run_wrk(f"{base}/score", single, 16, 1.0)  # warm-up
            runs: dict[str, list[dict]] = {}
            for _ in range(args.repeats):
                for c in CONCURRENCIES:
                    runs.setdefault(f"healthz c={c}", []).append(run_wrk(f"{base}/healthz", ceiling, c, args.duration))
                    runs.setdefault(f"score c={c}", []).append(run_wrk(f"{base}/score", single, c, args.duration))
                runs.setdefault("batch", []).append(run_wrk(f"{base}/score/batch", batch, BATCH_CONCURRENCY,
                                                            args.duration))
        finally:
            process.terminate()
            process.wait(timeout=30)

    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    print(f"ready after {ready_seconds:.2f} s (process start to /readyz 200)")
    print(f"server: {args.workers} uvicorn worker(s){', API key required' if api_key else ''}"
          f"{'; a new Idempotency-Key on every request' if args.with_idempotency_keys else ''}; "
          f"load: wrk 4 (1 thread), real {'MNIST' if args.mnist else 'synthetic'} PNG uploads, "
          f"{args.duration:.0f} s per run, median of {args.repeats}\n")
    print("| endpoint | concurrency | req/s | p50 ms | p99 ms | /healthz req/s | ratio to ceiling | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for c in CONCURRENCIES:
        pairs = zip(runs[f"score c={c}"], runs[f"healthz c={c}"], strict=True)
        ratio = statistics.median(s["rps"] / h["rps"] for s, h in pairs)
        errors = sum(run["errors"] for run in runs[f"score c={c}"])
        print(f"| POST /score | {c} | {median(f'score c={c}', 'rps'):.0f} | {median(f'score c={c}', 'p50') * 1e3:.2f} "
              f"| {median(f'score c={c}', 'p99') * 1e3:.2f} | {median(f'healthz c={c}', 'rps'):.0f} | {ratio:.0%} | {errors} |")
    images_per_second = median("batch", "rps") * BATCH_IMAGES
    print(f"| POST /score/batch ({BATCH_IMAGES} PNGs) | {BATCH_CONCURRENCY} | {median('batch', 'rps'):.1f} "
          f"| {median('batch', 'p50') * 1e3:.1f} | {median('batch', 'p99') * 1e3:.1f} | – | – | "
          f"{sum(r['errors'] for r in runs['batch'])} |")
    print(f"\n/score/batch: {images_per_second:.0f} images/s")


if __name__ == "__main__":
    main()
