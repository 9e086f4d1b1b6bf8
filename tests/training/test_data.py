import numpy as np
import pytest
from PIL import Image

from tests.synthetic import make_mnist_like, tiff_with_strip_offsets_of_type
from training.data import DataError, load_image_folder, load_mnist


def test_loads_keras_layout(synthetic_mnist):
    data = load_mnist(synthetic_mnist)
    assert data.x_train.shape == (600, 28, 28) and data.x_train.dtype == np.uint8
    assert data.y_test.shape == (200,)
    assert len(data.fingerprint()) == 64


def test_fingerprint_changes_with_content(tmp_path):
    arrays = make_mnist_like(n_train=20, n_test=10)
    np.savez(tmp_path / "a.npz", **arrays)
    arrays["x_train"][0, 0, 0] ^= 1
    np.savez(tmp_path / "b.npz", **arrays)
    assert load_mnist(tmp_path / "a.npz").fingerprint() != load_mnist(tmp_path / "b.npz").fingerprint()


def test_environment_variable_is_the_fallback(synthetic_mnist, monkeypatch):
    monkeypatch.setenv("MNIST_PATH", str(synthetic_mnist))
    assert load_mnist(None).x_test.shape == (200, 28, 28)


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(DataError, match=r"not found: .*nope\.npz.*MNIST_PATH"):
        load_mnist(tmp_path / "nope.npz")


def test_a_folder_given_as_the_data_names_the_archives_in_it(synthetic_mnist, tmp_path):
    with pytest.raises(DataError, match=rf"^{synthetic_mnist.parent} is a folder; --data and MNIST_PATH take the "
                                        rf".npz file itself \(it holds {synthetic_mnist.name}"):
        load_mnist(synthetic_mnist.parent)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty is a folder; --data and MNIST_PATH take the .npz file itself$"):
        load_mnist(tmp_path / "empty")


def test_missing_arrays_are_named(tmp_path):
    arrays = make_mnist_like(n_train=10, n_test=10)
    del arrays["y_test"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(DataError, match="lacks y_test"):
        load_mnist(tmp_path / "partial.npz")


@pytest.mark.parametrize("key, bad, message", [
    ("x_train", np.zeros((10, 32, 32), np.uint8), "x_train has shape"),
    ("x_test", np.zeros((10, 28, 28), np.float32), "x_test has dtype float32"),
    ("y_train", np.zeros((3,), np.uint8), "y_train has shape"),
])
def test_malformed_arrays_are_rejected(tmp_path, key, bad, message):
    arrays = make_mnist_like(n_train=10, n_test=10)
    arrays[key] = bad
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_mnist(tmp_path / "bad.npz")


def test_a_file_that_is_not_npz_is_reported(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"definitely not a zip archive")
    with pytest.raises(DataError, match="is not a .npz archive"):  # not NumPy's "contains pickled data"
        load_mnist(tmp_path / "junk.npz")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 but then nothing that unzips")
    with pytest.raises(DataError, match="cannot read"):
        load_mnist(tmp_path / "broken.npz")


def test_image_folder_converts_any_size_and_mode(tmp_path):
    Image.new("RGBA", (56, 28), (255, 255, 255, 255)).save(tmp_path / "wide.png")
    Image.new("RGB", (10, 40), (0, 0, 0)).save(tmp_path / "tall.jpg")
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    images = load_image_folder(tmp_path)
    assert images.shape == (2, 28, 28) and images.dtype == np.uint8
    wide = images[1]  # sorted by name: tall.jpg, wide.png
    assert wide[0].max() == 0 and wide[14].min() == 255  # aspect kept: white band, black padding


def test_image_folder_scales_sixteen_bit_images(tmp_path):
    Image.fromarray(np.full((28, 28), 200 * 257, np.uint16)).save(tmp_path / "deep.png")
    assert np.array_equal(load_image_folder(tmp_path), np.full((1, 28, 28), 200, np.uint8))


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(DataError, match=r"no images \(\.bmp, \.gif, \.jpeg"):
        load_image_folder(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG but truncated")
    with pytest.raises(DataError, match="cannot decode .*broken.png"):
        load_image_folder(tmp_path)
    with pytest.raises(DataError, match="broken.png is a file; give the folder that holds the images"):
        load_image_folder(tmp_path / "broken.png")  # it said "image folder not found" of a file that is there
    (tmp_path / "broken.png").unlink()
    for type_code in (11, 16):  # the first was a TypeError traceback
        (tmp_path / "corrupt.tif").write_bytes(tiff_with_strip_offsets_of_type(type_code))
        with pytest.raises(DataError, match=r"cannot decode .*corrupt.tif: "):
            load_image_folder(tmp_path)


def test_image_folder_reads_every_format_the_service_decodes(tmp_path):
    stroke = np.zeros((28, 28), np.uint8)
    stroke[4:24, 13:15] = 255
    for suffix in (".bmp", ".gif", ".tif", ".webp"):
        Image.fromarray(stroke).save(tmp_path / f"digit{suffix}", **({"lossless": True} if suffix == ".webp" else {}))
    images = load_image_folder(tmp_path)
    assert images.shape == (4, 28, 28)
    assert all(np.array_equal(image, stroke) for image in images)


def test_image_folder_says_which_files_it_skipped(tmp_path, caplog):
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / ".git").mkdir()
    for name in ("b.heic", "c.heic", "notes.txt", "README", ".DS_Store", "._a.png", ".git/x.png"):
        (tmp_path / name).write_bytes(b"x")  # the hidden ones would fail to decode, were they read
    with caplog.at_level("WARNING", logger="training.data"):
        assert load_image_folder(tmp_path).shape == (1, 28, 28)
    assert [r.getMessage() for r in caplog.records] == [
        (f"{tmp_path}: skipped 4 files of a kind that is not read (2 .heic, 1 .txt, 1 no suffix); images must be "
         ".bmp, .gif, .jpeg, .jpg, .png, .tif, .tiff, .webp")]


def test_image_folder_of_several_folders_lists_them_as_all_taken_for_normal(tmp_path, caplog):
    # A dataset's root, e.g. MVTec's train/good and test/broken: the defects would train as normal images
    for folder, count in (("train/good", 3), ("test/broken", 2), ("test/good", 1)):
        (tmp_path / folder).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / folder / f"{i}.png")
    with caplog.at_level("INFO", logger="training.data"):
        assert load_image_folder(tmp_path).shape == (6, 28, 28)
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path}: 6 images from 3 folders, every one taken as normal: train/good 3, test/broken 2, test/good 1"]
    caplog.clear()
    with caplog.at_level("INFO", logger="training.data"):
        load_image_folder(tmp_path / "train" / "good")  # one folder: nothing to say
    assert caplog.records == []


def test_image_folder_inverts_dark_on_light_images(tmp_path):
    Image.fromarray(np.full((28, 28), 250, np.uint8)).save(tmp_path / "scan.png")
    assert load_image_folder(tmp_path, invert=True).max() == 5


def test_image_folder_names_a_file_whose_pixels_are_out_of_range(tmp_path):
    Image.fromarray(np.full((28, 28), 300.0, np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(DataError, match=r"float.tif: floating-point pixel values must lie in 0-255"):
        load_image_folder(tmp_path)


def test_image_folder_names_a_file_scaled_to_0_1(tmp_path):
    Image.fromarray(np.full((28, 28), 0.5, np.float32)).save(tmp_path / "scaled.tif")
    with pytest.raises(DataError, match=r"scaled.tif: floating-point pixel values lie in 0-1 .* multiply them by 255"):
        load_image_folder(tmp_path)


def test_image_folder_names_a_file_of_several_pages(tmp_path):
    page = Image.fromarray(np.zeros((28, 28), np.uint8))
    page.save(tmp_path / "scan.tif", save_all=True, append_images=[page, page])
    with pytest.raises(DataError, match=r"scan.tif: the TIFF file holds 3 images \(pages or animation frames\)"):
        load_image_folder(tmp_path)


def test_image_folder_refuses_a_decompression_bomb_by_name(tmp_path, monkeypatch):
    Image.new("L", (100, 100)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow raises beyond twice its limit
    with pytest.raises(DataError, match="huge.png is too large to decode safely"):
        load_image_folder(tmp_path)


def test_the_kind_of_each_image_is_its_top_level_folder(tmp_path):
    from training.data import kinds_of

    files = [tmp_path / "scratch" / "1.png", tmp_path / "scratch" / "deep" / "2.png", tmp_path / "3.png"]
    assert kinds_of(tmp_path, files) == ["scratch", "scratch", tmp_path.name]
    assert kinds_of(tmp_path / "scratch" / "..", [tmp_path / "scratch" / ".." / "3.png"]) == [tmp_path.name]
