"""bench/framing.py: digits are photographed onto pages and framed both ways, in the service's decode path."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.bench import load_bench
from tests.synthetic import make_images

framing_bench = load_bench("framing")


def test_a_photographed_digit_is_dark_ink_on_the_pages_paper():
    page = framing_bench.Page("grey", paper=230, ink=30, digit_height=0.5, size=(200, 100))
    photo = Image.open(io.BytesIO(framing_bench.photograph(make_images(np.ones(1, int), 0)[0], page,
                                                           np.random.default_rng(0))))
    assert photo.format == "JPEG" and photo.size == (200, 100)
    gray = np.asarray(photo.convert("L")).astype(int)
    assert abs(np.median(gray) - 230) <= 2  # paper
    assert gray[25:75, 90:110].min() < 60  # ink in the middle, 50 rows high


def test_the_table_has_the_originals_then_each_page_framed_both_ways():
    digits = make_images(np.array([1, 1, 1, 0, 0, 0]), seed=2)
    is_anomaly = np.array([False] * 3 + [True] * 3)

    def distance_from_the_originals(images):  # 0 for a perfect framing
        return np.abs(images.astype(float) - digits).mean(axis=(1, 2))

    pages = framing_bench.PAGES[:3]  # the ordinary pages; the last ones probe the limits
    rows = framing_bench.framing_table(distance_from_the_originals, 1.0, digits, is_anomaly, pages=pages)
    assert [(page, framing) for page, framing, _ in rows][:3] == [
        ("the 28x28 originals", "-"), (framing_bench.PAGES[0].name, "pad"), (framing_bench.PAGES[0].name, "mnist")]
    assert len(rows) == 1 + 2 * len(pages)
    assert rows[0][2]["median_normal_score"] == 0
    by_framing = {framing: [r["median_normal_score"] for _, f, r in rows if f == framing] for framing in ("pad", "mnist")}
    assert max(by_framing["mnist"]) < min(by_framing["pad"])  # MNIST framing gives back digits closer to the originals


def test_the_background_table_raises_only_the_dark_pixels():
    digits = make_images(np.array([1, 0]), seed=2)
    seen = []

    def record(images):
        seen.append(images)
        return np.zeros(len(images))

    rows = framing_bench.background_table(record, 1.0, digits, np.array([False, True]), levels=(0, 8))
    assert [level for level, _ in rows] == [0, 8]
    assert np.array_equal(seen[0], digits)
    assert seen[1].min() == 8 and np.array_equal(seen[1][digits >= 8], digits[digits >= 8])


def test_a_shadow_darkens_the_paper_from_left_to_right():
    page = framing_bench.Page("shadow", paper=250, ink=40, shadow=100, size=(200, 100))
    photo = framing_bench.photograph(make_images(np.ones(1, int), 0)[0], page, np.random.default_rng(0))
    gray = np.asarray(Image.open(io.BytesIO(photo)).convert("L")).astype(int)
    assert abs(gray[:10, :5].mean() - 250) < 3 and abs(gray[:10, -5:].mean() - 150) < 4


@pytest.mark.parametrize("kind, dark_corner", [("vignette", (0, 0)), ("hand_shadow", (-1, 0))])
def test_a_vignette_darkens_the_corners_and_a_hand_shadow_the_lower_left(kind, dark_corner):
    page = framing_bench.Page(kind, paper=250, ink=40, size=(200, 100), **{kind: 100})
    photo = framing_bench.photograph(make_images(np.ones(1, int), 0)[0], page, np.random.default_rng(0))
    gray = np.asarray(Image.open(io.BytesIO(photo)).convert("L")).astype(int)
    row, column = dark_corner
    assert gray[row, column] < 200 and gray[10, 100] > gray[row, column] + 20  # paper above the digit


def test_a_digit_cropped_to_its_ink_has_no_margin():
    page = framing_bench.Page("cropped", paper=235, ink=40, digit_height=1.0, crop_to_ink=True, size=(600, 300))
    photo = Image.open(io.BytesIO(framing_bench.photograph(make_images(np.zeros(1, int), 0)[0], page,
                                                           np.random.default_rng(0)))).convert("L")
    gray = np.asarray(photo).astype(int)
    assert photo.height == 300 and photo.width < 600
    for edge in (gray[0], gray[-1], gray[:, 0], gray[:, -1]):  # a "0" touches every side of its box
        assert edge.min() < 120


def test_decoding_stability_compares_reduced_and_full_scale_decoding_of_the_same_uploads():
    digits = make_images(np.array([1, 1, 0, 0]), seed=4)
    calls = []

    def record(images):
        calls.append(images)
        return images.astype(float).mean(axis=(1, 2))

    moved = framing_bench.decoding_stability(record, 1e9, digits)
    assert len(calls) == 2 and calls[0].shape == calls[1].shape == (4, 28, 28)
    expected = np.abs(calls[0].astype(float).mean(axis=(1, 2)) - calls[1].astype(float).mean(axis=(1, 2)))
    assert moved["max"] == expected.max() and moved["verdicts_changed"] == 0 and moved["n"] == 4


@pytest.mark.parametrize("split", ["test", "train"])
def test_bench_digits_take_as_many_normals_from_either_split(synthetic_mnist, split):
    data = np.load(synthetic_mnist)
    digits, is_anomaly = framing_bench.bench_digits(str(synthetic_mnist), [1], anomalies=5, seed=0, split=split)
    assert (~is_anomaly).sum() == (data["y_test"] == 1).sum() and is_anomaly.sum() == 5
    pool = data["x_test"] if split == "test" else data["x_train"]
    assert all((pool == digit).all(axis=(1, 2)).any() for digit in digits)  # every digit comes from that split


def test_uploads_the_service_would_refuse_are_counted_and_left_out_of_the_figures(monkeypatch):
    digits = make_images(np.array([1, 1, 1, 0, 0, 0]), seed=2)
    is_anomaly = np.array([False] * 3 + [True] * 3)
    decode, calls = framing_bench.decode_image, []

    def refuse_every_other(data, **options):
        calls.append(1)
        if len(calls) % 2:
            raise framing_bench.InvalidInput("the image's background is light")
        return decode(data, **options)

    monkeypatch.setattr(framing_bench, "decode_image", refuse_every_other)
    seen = []

    def score(images):
        seen.append(len(images))
        return np.zeros(len(images))

    rows = framing_bench.framing_table(score, 1.0, digits, is_anomaly, pages=framing_bench.PAGES[:1])
    assert [row[2]["refused"] for row in rows] == [0.0, 0.5, 0.5]
    assert seen == [6, 3, 3]
