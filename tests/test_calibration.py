"""Stage 3: representative samples from any image folder, and the preprocessing contract."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from mobilenet_edge.calibration import fashion_mnist
from mobilenet_edge.calibration.preprocessing import Preprocessing
from mobilenet_edge.calibration.representative import calibration_set
from mobilenet_edge.calibration.tasks import resolve_task
from conftest import error_line, run_cli
from mobilenet_edge.pipeline.errors import PipelineError


@pytest.fixture
def image_folder(tmp_path):
    """Every kind of file a user's camera roll holds, plus a corrupt one."""
    root = tmp_path / "calib"
    (root / "nested" / "deeper").mkdir(parents=True)
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, :30] = (255, 0, 0)  # left half red
    Image.fromarray(rgb).save(root / "photo.jpg", quality=95)
    Image.fromarray(rgb).convert("L").save(root / "grey.png")
    Image.fromarray(rgb).convert("RGBA").save(root / "nested" / "alpha.png")
    Image.fromarray(rgb).convert("CMYK").save(root / "nested" / "cmyk.jpg")
    Image.fromarray((np.arange(40 * 60).reshape(40, 60) * 27).astype(np.uint16)).save(root / "nested" / "deep16.png")
    Image.fromarray(rgb).save(root / "nested" / "deeper" / "b.bmp")
    Image.fromarray(rgb).save(root / "nested" / "deeper" / "w.webp")
    # EXIF orientation 6 (rotate 90° clockwise on display): a 60x40 file shown as 40x60.
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(root / "rotated.jpg", exif=exif)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("ignored")
    return root


def test_every_mode_becomes_rgb_and_corrupt_files_are_counted(image_folder):
    task = resolve_task("fashion-mnist")
    calib = calibration_set(task, 32, num_samples=100, calib_dir=str(image_folder), progress=False)
    assert calib.samples.shape == (8, 32, 32, 3)  # 9 image files, 1 corrupt
    assert calib.skipped == 1
    assert calib.samples.dtype == np.float32
    assert -1.0 <= calib.samples.min() and calib.samples.max() <= 1.0


def test_exif_orientation_is_applied(image_folder):
    from mobilenet_edge.calibration.images import load_rgb

    assert load_rgb(image_folder / "rotated.jpg").size == (40, 60)


def test_sixteen_bit_is_rescaled_not_clipped(image_folder):
    from mobilenet_edge.calibration.images import load_rgb

    pixels = np.asarray(load_rgb(image_folder / "nested" / "deep16.png"))
    assert pixels.max() > 200 and pixels.min() < 10 and len(np.unique(pixels)) > 50


def test_same_seed_same_samples(image_folder):
    task = resolve_task("fashion-mnist")
    a = calibration_set(task, 32, 4, seed=1, calib_dir=str(image_folder), progress=False)
    b = calibration_set(task, 32, 4, seed=1, calib_dir=str(image_folder), progress=False)
    c = calibration_set(task, 32, 4, seed=2, calib_dir=str(image_folder), progress=False)
    assert a.digest == b.digest and np.array_equal(a.samples, b.samples)
    assert a.digest != c.digest


def test_task_calibration_never_uses_test_images():
    task = resolve_task("fashion-mnist")
    calib = calibration_set(task, 32, 10, progress=False)
    assert calib.source and len(calib.samples) == 10
    held_out = task.labeled_images("test", 32, limit=10, progress=False)
    assert all("train[" in n for n in task.labeled_images("train", 32, limit=10, progress=False).names)
    assert all("test[" in n for n in held_out.names)


def test_contract_central_crop_and_scale():
    pre = Preprocessing(resolution=8, crop_fraction=0.5)
    image = np.zeros((16, 16, 3), np.uint8)
    image[4:12, 4:12] = 255  # the central half is white
    pixels = pre.crop_and_resize(Image.fromarray(image))
    assert pixels.shape == (8, 8, 3) and pixels.min() == 255
    assert pre.normalize(np.array([0, 255], np.uint8)[:, None].repeat(3, 1)).tolist() == [[-1, -1, -1], [1, 1, 1]]
    contract = pre.to_dict()
    assert contract["mean"] == [127.5] * 3 and contract["color_order"] == "RGB" and contract["output_range"] == [-1.0, 1.0]


def test_fashion_mnist_loader_reads_idx():
    test = fashion_mnist.load_split("test")
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    assert sorted(np.unique(test.labels)) == list(range(10))


def test_fashion_mnist_missing_everywhere_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(fashion_mnist, "KERAS_CACHE_DIR", tmp_path / "no-keras")
    monkeypatch.setattr(fashion_mnist, "EMBEDDED_DIR", tmp_path / "no-embedded")
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    import keras

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", lambda: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(PipelineError) as err:
        fashion_mnist.load_split("test", tmp_path / "mine")
    message = str(err.value)
    for place in ("mine", "no-debian", "no-keras", "Keras download", "dataset-fashion-mnist"):
        assert place in message


def test_truncated_idx_is_refused(tmp_path):
    data = io.BytesIO()
    data.write(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + bytes(50))
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(data.getvalue())
    with pytest.raises(PipelineError, match="expected 100 values"):
        fashion_mnist.read_idx(path)


@pytest.mark.parametrize("case", ["missing", "empty", "no-images", "only-corrupt"])
def test_bad_calibration_folders(tmp_path, case):
    folder = tmp_path / "calib"
    if case != "missing":
        folder.mkdir()
    if case == "no-images":
        (folder / "readme.txt").write_text("x")
    if case == "only-corrupt":
        (folder / "a.jpg").write_bytes(b"garbage")
    proc = run_cli("export", "--alpha", "0.25", "--res", "32", "--task", "fashion-mnist", "--weights", "random",
                   "--out", tmp_path / "out", "--formats", "int8", "--calib", folder)
    assert proc.returncode == 2
    line = error_line(proc)
    assert "expected" in line and "received" in line
    assert not list((tmp_path / "out").rglob("*.tflite"))



def test_larger_samples_contain_smaller_ones():
    from mobilenet_edge.calibration.tasks import sample_rows

    small, large = sample_rows(60_000, 200, 0), sample_rows(60_000, 1000, 0)
    assert set(small) <= set(large) and len(set(large)) == 1000 and list(large) == sorted(large)


def test_the_embedded_copy_serves_validation_and_calibration(embedded_only):
    task = resolve_task("fashion-mnist")
    test = task.labeled_images("test", 32, limit=None, progress=False)
    assert len(test.labels) == 10_000 and test.source == str(fashion_mnist.EMBEDDED_DIR)
    calib = calibration_set(task, 32, 200, progress=False)
    assert calib.source == str(fashion_mnist.EMBEDDED_DIR) and len(calib.samples) == 200
    with pytest.raises(PipelineError, match="embedded 5,000-image calibration subset"):
        calibration_set(task, 32, 200, seed=1, progress=False)


def test_the_embedded_copy_equals_the_full_dataset(embedded_only, monkeypatch):
    """Same images, same labels, same names: artifacts do not depend on which copy a machine has.

    The full copy: Debian's dataset-fashion-mnist, installed or unpacked where FULL_FASHION_MNIST_DIR says
    (.ci/run unpacks the package there without installing it, so the pipeline itself still sees only the
    embedded copy). Under CI a missing full copy is a failure, not a skip.
    """
    full_dir = fashion_mnist.Path(os.environ.get("FULL_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
    if not full_dir.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"expected the full Fashion-MNIST in {full_dir} under CI (.ci/run unpacks it), received none")
        pytest.skip("the full dataset (Debian's dataset-fashion-mnist) is not installed to compare with")
    task = resolve_task("fashion-mnist")
    limits = {"test": None, "train": 5_000}  # every embedded image: the whole test split, seed 0's 5,000 train rows
    embedded = {split: task.labeled_images(split, 32, limit=limit, progress=False) for split, limit in limits.items()}
    assert len(embedded["test"].labels) == 10_000 and len(embedded["train"].labels) == 5_000
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", full_dir)
    for split, limit in limits.items():
        full = task.labeled_images(split, 32, limit=limit, progress=False)
        assert embedded[split].names == full.names and np.array_equal(embedded[split].pixels, full.pixels)
        assert np.array_equal(embedded[split].labels, full.labels) and full.source != embedded[split].source


def test_training_on_the_embedded_subset_is_refused(embedded_only):
    with pytest.raises(PipelineError, match="training needs all 60,000"):
        fashion_mnist.load_split("train", whole=True)


def test_a_cut_of_n_warns_and_records_the_real_count(tmp_path, caplog):
    """N=200 on a 5-image folder: one warning line, and the record says 5 of the 200 asked (issue 23.4)."""
    folder = tmp_path / "five"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(np.full((40, 40, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    calib = calibration_set(resolve_task("fashion-mnist"), 32, 200, 0, str(folder), progress=False)
    record = calib.to_dict()
    assert record["count"] == 5 and record["requested"] == 200
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "N=200" in r.getMessage()]
    assert len(lines) == 1 and "5" in lines[0], caplog.text
    exact = calibration_set(resolve_task("fashion-mnist"), 32, 5, 0, str(folder), progress=False)
    assert "requested" not in exact.to_dict()


def test_a_cut_of_limit_warns_and_records_the_real_count(caplog):
    from mobilenet_edge.pipeline.config import ValidationConfig
    from mobilenet_edge.pipeline.validate import held_out_images

    images = held_out_images(resolve_task("fashion-mnist"), 32, ValidationConfig(limit=20000))
    assert len(images.pixels) == 10000
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "LIMIT=20000" in r.getMessage()]
    assert len(lines) == 1 and "10000" in lines[0].replace(",", ""), caplog.text
