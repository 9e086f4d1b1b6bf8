"""Nothing a client sends may cause a 5xx: a corpus of hostile requests, each answered 2xx or 4xx.

The corpus collects what fuzzing the running service turned up (a few of these were 500s) and the odd
inputs around them. Each request's answer is checked for a status below 500 and, for errors, an RFC 9457
body; the assertion lists every request that failed, not just the first.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from tests.app.conftest import png_bytes
from tests.app.test_score import PROBLEM
from tests.synthetic import tiff_with_strip_offsets_of_type


def _encoded(array: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge image (a decompression bomb) with almost no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
            + chunk(b"IEND", b""))


def _gif_cut_in_its_second_frame() -> bytes:
    """Counting the frames of this GIF (to refuse a file of several images) raised an IndexError: a 500."""
    frames = io.BytesIO()
    Image.new("L", (28, 28)).save(frames, "GIF", save_all=True, append_images=[Image.new("L", (28, 28), 200)])
    data = frames.getvalue()
    return data[:data.rindex(b"\x2c") + 10]  # the second frame's image descriptor, without what follows


def _hostile_images() -> dict[str, bytes]:
    black = np.zeros((28, 28), np.uint8)
    frames = io.BytesIO()
    Image.new("L", (28, 28)).save(frames, "TIFF", save_all=True, append_images=[Image.new("L", (28, 28), 255)])
    return {
        "empty": b"",
        "random bytes": np.random.default_rng(0).bytes(3000),
        "truncated png": png_bytes(black)[:40],
        "png signature only": b"\x89PNG\r\n\x1a\n",
        "1x1": png_bytes(np.zeros((1, 1), np.uint8)),
        "1x5000": png_bytes(np.zeros((1, 5000), np.uint8)),
        "bomb header": _png_declaring(100_000, 100_000),
        "float NaN tiff": _encoded(np.full((28, 28), np.nan, np.float32), "TIFF"),
        "float inf tiff": _encoded(np.full((28, 28), np.inf, np.float32), "TIFF"),
        "int32 negative tiff": _encoded(np.full((28, 28), -5, np.int32), "TIFF"),
        "16-bit": _encoded(np.full((28, 28), 60000, np.uint16), "PNG"),
        "1-bit": _one_bit_png(),
        "multi-page tiff": frames.getvalue(),
        "gif cut in its second frame": _gif_cut_in_its_second_frame(),
        "cmyk jpeg": _cmyk_jpeg(),
        # Pillow raised a TypeError and an OverflowError for these: 500s.
        "tiff with float strip offsets": tiff_with_strip_offsets_of_type(11),
        "tiff with 2**64 strip offsets": tiff_with_strip_offsets_of_type(16),
        "pdf": b"%PDF-1.4\n%%EOF",
        "svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    }


def _one_bit_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (28, 28)).save(buffer, "PNG")
    return buffer.getvalue()


def _cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (28, 28)).save(buffer, "JPEG")
    return buffer.getvalue()


def _requests(image: bytes, result_id: str) -> list[tuple[str, str, dict]]:
    json_type = {"content-type": "application/json"}
    multipart = {"content-type": "multipart/form-data; boundary=b"}
    row = ", ".join(["0"] * 28)
    requests = [
        ("POST", "/score", {"content": b"[" * 100_000 + b"]" * 100_000, "headers": json_type}),
        ("POST", "/score", {"content": b'{"pixels": [[1e999]]}', "headers": json_type}),
        ("POST", "/score", {"content": b"\xff\xfe\x00", "headers": json_type}),
        ("POST", "/score", {"content": ('{"pixels": [' + ", ".join([f"[{row}]"] * 28) + '], "pixels": 1}').encode(),
                            "headers": json_type}),
        ("POST", "/score", {"json": {"pixels": [[10**400] * 28] * 28}}),
        ("POST", "/score", {"json": {"pixels": [[[0]] * 28] * 28}}),
        ("POST", "/score", {"content": b"", "headers": multipart}),
        ("POST", "/score", {"content": b"--b\r\ngarbage", "headers": multipart}),
        ("POST", "/score", {"content": b"--b--\r\n", "headers": multipart}),
        ("POST", "/score", {"content": image, "headers": {"content-type": "multipart/form-data; boundary="}}),
        ("POST", "/score", {"content": image, "headers": {"content-type": "image/"}}),
        ("POST", "/score", {"content": image, "headers": {"content-type": "*/*"}}),
        ("POST", "/score?fpr=nan", {"files": {"file": ("a.png", image, "image/png")}}),
        ("POST", "/score?fpr=1e-300", {"files": {"file": ("a.png", image, "image/png")}}),
        ("POST", "/score?threshold=1e400", {"files": {"file": ("a.png", image, "image/png")}}),
        ("POST", "/score?resize=true&resize=maybe", {"files": {"file": ("a.png", image, "image/png")}}),
        ("POST", "/score", {"files": {"file": ("\u2603\x00.png", image, "image/png")}}),
        ("POST", "/score/batch", {"content": b"", "headers": multipart}),
        ("POST", "/score/batch", {"files": [("files", ("a", b"", "image/png"))] * 3}),
        ("GET", f"/results?before={2**63}", {}),
        ("GET", f"/results?before={10**30}", {}),
        ("GET", "/results?limit=99999999999999999999999", {}),
        ("GET", "/results/%00", {}),
        ("GET", "/results/" + "a" * 10_000, {}),
        ("GET", f"/image/{result_id}?scale=99999999999999999999", {}),
        ("GET", f"/difference/{result_id}?scale=-1", {}),
        ("POST", "/score?source=%F0%9F%98%80", {"files": {"file": ("a.png", image, "image/png")}}),
        ("POST", "/score?ref=" + "x" * 10_000, {"files": {"file": ("a.png", image, "image/png")}}),
        ("POST", "/score?ref=%00", {"files": {"file": ("a.png", image, "image/png")}}),
        ("POST", "/score", {"files": {"file": ("x" * 100_000 + ".png", image, "image/png")}}),
        ("POST", "/score/batch?ref=a", {"files": [("files", ("a.png", image, "image/png"))]}),
        ("GET", "/results?source=" + "x" * 10_000, {}),
        ("GET", "/results?ref=%00%0A", {}),
        ("POST", "/score", {"files": {"file": ("a.png", image, "image/png")},
                            "headers": {"Idempotency-Key": "k" * 100_000}}),
        ("POST", "/score", {"files": {"file": ("a.png", image, "image/png")},
                            "headers": {"Idempotency-Key": "\u00e9\u00ff\x7f".encode("latin-1")}}),
        ("POST", "/score", {"files": {"file": ("a.png", image, "image/png")}, "headers": {"Idempotency-Key": '"'}}),
        ("POST", "/score", {"content": b"junk", "headers": {"Idempotency-Key": "hostile-1",
                                                             "content-type": "image/png"}}),
        ("POST", "/score", {"content": b"junk", "headers": {"Idempotency-Key": "hostile-1",
                                                             "content-type": "image/png"}}),
        ("POST", "/score/batch", {"files": [("files", ("a.png", b"junk", "image/png"))] * 2,
                                  "headers": {"Idempotency-Key": "hostile-batch"}}),
        ("POST", "/score/batch", {"files": [("files", ("a.png", image, "image/png"))],
                                  "headers": {"Idempotency-Key": "hostile-batch"}}),
        ("POST", "/score/batch", {"files": [("files", ("b.png", image, "image/png"))],
                                  "headers": {"Idempotency-Key": "hostile-batch"}}),
        ("POST", "/score/batch", {"files": [("files", ("a.png", image, "image/png"))],
                                  "headers": {"Idempotency-Key": "hostile-1"}}),
        ("GET", "/results/summary?since=0001-01-01T00:00:00%2B14:00", {}),
        ("GET", "/results/summary?source=%00&until=nan", {}),
        ("GET", "/results/summary?every=hour&tz=..%2F..%2Fetc%2Fpasswd", {}),
        ("GET", "/results/export?since=0001-01-01T00:00:00%2B14:00", {}),
        ("GET", "/results/export?ref=" + "x" * 201, {}),
        ("GET", "/results/export?source=%00&anomalous=2", {}),
        ("GET", "/results/summary?every=day&tz=%00", {}),
        ("GET", "/results/summary?every=day&tz=Europe", {}),
        ("GET", "/results/summary?every=day&tz=Etc/GMT%2B14&since=9999-12-31T00:00:00Z", {}),
        ("GET", "/results/summary?" + "&".join(f"p{i}=1" for i in range(1000)), {}),
        ("GET", "/results?limit=5&" + "x" * 10_000 + "=1", {}),
        ("GET", "/results?limit=0", {"headers": {"X-Request-ID": "x" * 10_000}}),
        ("GET", "/results?limit=0", {"headers": {"X-Request-ID": "\u00e9\r\n".encode("latin-1")}}),
        ("GET", f"/panel/{result_id}?scale=16", {"headers": {"X-Request-ID": "%s%s%n"}}),
        ("PUT", f"/results/{result_id}/review", {"content": b"[" * 100_000, "headers": json_type}),
        ("PUT", f"/results/{result_id}/review", {"content": b"\xff\xfe\x00", "headers": json_type}),
        ("PUT", f"/results/{result_id}/review", {"content": b'{"verdict": "normal", "verdict": 1e999}',
                                                  "headers": json_type}),
        ("PUT", f"/results/{result_id}/review", {"json": {"verdict": {"$ne": None}}}),
        ("PUT", f"/results/{result_id}/review", {"content": b'{"verdict": "normal", "note": "\\ud800"}',
                                                  "headers": json_type}),
        ("PUT", f"/results/{result_id}/review", {"json": {"verdict": "normal", "reviewer": "x" * 100_000}}),
        ("PUT", f"/results/{result_id}/review", {"json": {"verdict": "normal", "note": ["a"] * 1000}}),
        ("PUT", f"/results/{result_id}/review", {"content": b"", "headers": json_type}),
        ("PUT", f"/results/{result_id}/review", {"content": b"null", "headers": json_type}),
        ("PUT", f"/results/{result_id}/review", {"content": b"verdict=normal"}),
        ("PUT", f"/results/{result_id}/review", {"files": {"file": ("a.png", image, "image/png")}}),
        ("PUT", "/results/%00/review", {"json": {"verdict": "normal"}}),
        ("DELETE", "/results/" + "a" * 10_000 + "/review", {}),
        ("GET", "/results?review=%00", {}),
        ("GET", "/results/export?review=" + "n" * 10_000, {}),
    ]
    for name, data in _hostile_images().items():
        for query in ("", "?resize=true", "?resize=true&invert=true"):
            requests.append(("POST", f"/score{query}", {"files": {"file": (name, data, "application/octet-stream")}}))
        requests.append(("POST", "/score/batch?resize=true", {"files": [("files", (name, data, "image/png"))]}))
    return requests


def test_hostile_requests_get_a_4xx_problem_or_a_result_never_a_5xx(client, normal_pixels):
    image = png_bytes(normal_pixels)
    result_id = client.post("/score", files={"file": ("a.png", image, "image/png")}).json()["id"]
    failures = []
    requests = _requests(image, result_id)
    for method, url, options in requests:
        response = client.request(method, url, **options)
        is_problem = response.headers.get("content-type") == PROBLEM and "detail" in response.json()
        if response.status_code >= 500 or (response.status_code >= 400 and not is_problem):
            failures.append((method, url, response.status_code, response.text[:120]))
    assert not failures, failures
    assert len(requests) > 80
    assert client.get("/readyz").status_code == 200  # and the service is still serving


def test_hostile_credentials_get_a_401_problem(start_client):
    client = start_client(api_keys="a-perfectly-good-key-0123")
    hostile = ("Bearer " + "x" * 100_000, "Bearer \u00e9\u00e9".encode("latin-1"), "Bearer", "Basic", "",
               "Bearer  ", "Bearer a-perfectly-good-key-0123 extra")
    for authorization in hostile:
        response = client.get("/results", headers={"Authorization": authorization})
        assert response.status_code == 401, (authorization[:20], response.text)
        assert response.headers["content-type"] == PROBLEM
