"""`mobilenet-edge predict`: top-k labels from any artifact, fed by the artifact's own recorded preprocessing."""
import json
import shutil

import pytest
from PIL import Image

from conftest import error_line, run_cli

N_IMAGES = 8


def _file(export, precision, fmt):
    return next(a.path for a in export.artifacts
                if a.precision == precision and a.format == fmt and a.per_channel is not False)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The first Fashion-MNIST test images as PNG files (28x28 greyscale, as the data set has them)."""
    from mobilenet_edge.calibration import fashion_mnist

    folder = tmp_path_factory.mktemp("images")
    split = fashion_mnist.load_split("test")
    for i in range(N_IMAGES):
        Image.fromarray(split.images[i], "L").save(folder / f"{i}.png")
    return folder, [fashion_mnist.CLASS_NAMES[label] for label in split.labels[:N_IMAGES]]


def _predict_json(*args):
    proc = run_cli("predict", *args, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _top1(data):
    return {row["image"].rsplit("/", 1)[-1]: row["top"][0]["label"] for row in data["images"]}


@pytest.fixture(scope="module")
def keras_answers(reference_export, images):
    return _predict_json(images[0], "--artifact", reference_export.variant_dir / "model.keras")


def test_keras_model_mostly_names_the_true_label(keras_answers, images):
    _, truth = images
    top1 = _top1(keras_answers)
    assert keras_answers["record"] == "manifest.json" and len(top1) == N_IMAGES
    assert sum(top1[f"{i}.png"] == truth[i] for i in range(N_IMAGES)) >= N_IMAGES - 2


@pytest.mark.parametrize("precision, fmt", [("int8", "tflite"), ("fp32", "onnx"), ("int8", "onnx")])
def test_artifacts_agree_with_keras(reference_export, images, keras_answers, precision, fmt):
    data = _predict_json(images[0], "--artifact", _file(reference_export, precision, fmt))
    mine, theirs = _top1(data), _top1(keras_answers)
    # int8 may flip an image: the fixture's int8 ONNX (100 calibration samples) agrees with Keras on ~94 % of
    # the validation images (validation.json), and image 6 is one it flips; the float file may flip none.
    assert sum(mine[name] != theirs[name] for name in theirs) <= (1 if precision == "int8" else 0), (mine, theirs)
    if precision == "fp32":  # same float model: same scores, not just the same winner
        for mine, theirs in zip(data["images"], keras_answers["images"]):
            assert [t["class"] for t in mine["top"]] == [t["class"] for t in theirs["top"]]
            assert mine["top"][0]["score"] == pytest.approx(theirs["top"][0]["score"], abs=1e-4)


def test_table_lists_top5_per_image(reference_export, images):
    folder, truth = images
    proc = run_cli("predict", folder / "0.png", folder / "1.png", "--artifact", _file(reference_export, "int8", "tflite"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "preprocessing from manifest.json: 64x64, central crop 1, bilinear, (pixel - mean 127.5) / std 127.5" in out
    assert out.count("rank  class  label") == 2 and str(folder / "1.png") in out
    block = out.split(str(folder / "0.png"))[1].split(str(folder / "1.png"))[0]
    rows = [line.split() for line in block.strip().splitlines()[1:]]
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"] and all(r[-1] == "%" for r in rows)
    assert rows[0][:2] == ["1", "9"] and " ".join(rows[0][2:-2]) == truth[0] == "Ankle boot"


def test_folder_and_files_together_and_top_k(reference_export, images):
    folder, _ = images
    data = _predict_json(folder, folder / "3.png", "--artifact", _file(reference_export, "int8", "tflite"), "--top", "3")
    assert len(data["images"]) == N_IMAGES + 1
    assert all(len(row["top"]) == 3 and row["top"][0]["score"] >= row["top"][1]["score"] for row in data["images"])
    assert data["preprocessing"]["resolution"] == 64 and data["preprocessing"]["mean"] == [127.5] * 3


@pytest.mark.parametrize("precision, fmt, source", [
    ("int8", "tflite", "TFLite metadata"), ("fp32", "onnx", "ONNX metadata_props"), ("int8", "onnx", "ONNX metadata_props"),
])
def test_a_file_copied_alone_reads_its_own_record(reference_export, images, tmp_path, precision, fmt, source):
    alone = tmp_path / _file(reference_export, precision, fmt).name
    shutil.copy(_file(reference_export, precision, fmt), alone)
    with_manifest = _predict_json(images[0], "--artifact", _file(reference_export, precision, fmt))
    data = _predict_json(images[0], "--artifact", alone)
    assert data["record"] == source
    assert data["images"][0]["top"] == with_manifest["images"][0]["top"]
    manifest = json.loads(reference_export.manifest.read_text())
    for key in ("resolution", "crop_fraction", "resize_method", "mean", "std"):
        assert data["preprocessing"][key] == manifest["preprocessing"][key]


def test_onnx_files_carry_the_manifest_record(reference_export):
    import onnx

    manifest = json.loads(reference_export.manifest.read_text())
    for precision in ("fp32", "int8"):
        props = {p.key: p.value for p in onnx.load(str(_file(reference_export, precision, "onnx"))).metadata_props}
        assert json.loads(props["preprocessing"]) == manifest["preprocessing"]
        assert props["labels"].splitlines() == manifest["variant"]["class_names"]


def test_imagenet_labels_come_from_the_record(tmp_path, images):
    """TASK=imagenet offline (random weights: the labels, not the answers, are under test)."""
    from mobilenet_edge.calibration.tasks import IMAGENET_LABELS
    from mobilenet_edge.pipeline.config import ExportConfig, Variant
    from mobilenet_edge.pipeline.recipe import export_variant
    from mobilenet_edge.pipeline.config import RecipeConfig

    result = export_variant(RecipeConfig(variant=Variant(0.25, 32, "imagenet", "random"),
                                         export=ExportConfig(formats=("fp32",), out=tmp_path)))
    index = json.loads(IMAGENET_LABELS.read_text())
    alone = tmp_path / "alone.tflite"
    shutil.copy(result.artifacts[0].path, alone)
    for artifact in (result.artifacts[0].path, alone):
        data = _predict_json(images[0] / "0.png", "--artifact", artifact)
        top = data["images"][0]["top"]
        assert len(top) == 5 and all(t["label"] == index[str(t["class"])][1] for t in top)


@pytest.fixture(scope="module")
def broken(tmp_path_factory, reference_export):
    """Bad inputs: an undecodable image, an empty folder, a manifest whose resolution is not the model's,
    a .keras and a metadata-free .tflite without any record."""
    from mobilenet_edge.pipeline.convert.metadata import strip_metadata

    root = tmp_path_factory.mktemp("broken")
    (root / "photo.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "empty").mkdir()
    (root / "alone").mkdir()
    shutil.copy(reference_export.variant_dir / "model.keras", root / "alone" / "model.keras")
    (root / "alone" / "bare.tflite").write_bytes(strip_metadata(_file(reference_export, "fp32", "tflite").read_bytes()))
    wrong = root / "wrong"
    shutil.copytree(reference_export.variant_dir, wrong)
    manifest = json.loads((wrong / "manifest.json").read_text())
    manifest["preprocessing"]["resolution"] = 32
    (wrong / "manifest.json").write_text(json.dumps(manifest))
    return root, wrong / _file(reference_export, "int8", "tflite").name


@pytest.mark.parametrize("image, artifact, expected", [
    ("photo.jpg", "int8", "expected a decodable image, received '{root}/photo.jpg'"),
    ("empty", "int8", "expected image files (.jpg, .jpeg, .png, .bmp, .webp) under '{root}/empty', received none"),
    ("missing.png", "int8", "expected an image file or folder, received '{root}/missing.png', which does not exist"),
    ("", "int8", "expected IMAGE=<image file or folder> (one or more), received none"),
    ("ok", "{root}/missing.tflite", "expected an artifact file, received '{root}/missing.tflite', which does not exist"),
    ("ok", "{root}/model.pt", "expected an artifact ending in .keras, .tflite, .onnx, received '{root}/model.pt'"),
    ("ok", "{root}/alone/model.keras", "expected a preprocessing record for model.keras in manifest.json beside it"),
    ("ok", "{root}/alone/bare.tflite", "expected a preprocessing record for bare.tflite in manifest.json beside it "
                                       "or its TFLite metadata, received none"),
    ("ok", "wrong", "to take 32x32x3 images as its manifest.json says, received a model input of 64x64x3"),
])
def test_bad_input_is_one_error_line(reference_export, images, broken, image, artifact, expected):
    root, wrong = broken
    image_args = [] if image == "" else [images[0] if image == "ok" else root / image]
    artifact = {"int8": _file(reference_export, "int8", "tflite"), "wrong": wrong}.get(artifact) or artifact.format(root=root)
    proc = run_cli("predict", *image_args, "--artifact", artifact)
    assert proc.returncode == 2
    assert expected.format(root=root) in error_line(proc)
    assert proc.stdout == ""


def test_default_artifact_is_the_variants_int8_tflite(reference_export, images, tmp_path):
    out = reference_export.variant_dir.parents[1]
    data = _predict_json(images[0] / "0.png", "--alpha", "0.25", "--task", "fashion-mnist", "--out", out)
    assert data["artifact"] == str(_file(reference_export, "int8", "tflite"))
    proc = run_cli("predict", images[0] / "0.png", "--alpha", "0.5", "--task", "fashion-mnist", "--out", tmp_path)
    assert proc.returncode == 2 and "or an exported int8 .tflite at" in error_line(proc)


def test_a_file_changed_since_its_manifest_is_refused(tiny_export, images, tmp_path):
    """A listed file whose bytes are not the manifest's (here: another model that still loads) is not used."""
    folder = tmp_path / tiny_export.variant_dir.name
    shutil.copytree(tiny_export.variant_dir, folder)
    name = folder.name
    shutil.copyfile(folder / f"{name}_dynamic.tflite", folder / f"{name}_int8.tflite")
    proc = run_cli("predict", images[0] / "0.png", "--artifact", folder / f"{name}_int8.tflite")
    line = error_line(proc)
    assert proc.returncode == 2 and "sha256" in line and f"{name}_int8.tflite" in line, line
