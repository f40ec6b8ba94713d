"""Android: TFLite metadata written from the vendored schema, proven with the real Task Library.

The models are MobileNet alpha=0.25 at 64 px with the committed Fashion-MNIST reference checkpoint when
it exists (so top-1 means something), random weights otherwise, converted for real to fp32 and full int8
(uint8 I/O). tflite-support cannot be imported here (protobuf<4 vs TensorFlow 2.21): the tests marked
slow run it in its own cached venv (tests/android_env/) through subprocesses.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from android_env.venv import PyPIUnreachable, ensure_venv
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.convert.metadata import ModelInfo, add_metadata, has_metadata, model_info, read_metadata, strip_metadata

ROOT = Path(__file__).resolve().parents[1]
ALPHA, RES = 0.25, 64
CHECKPOINT = ROOT / "pipeline" / "checkpoints" / "fashion-mnist" / f"mobilenet_{ALPHA:.2f}_{RES}.weights.h5"
TASK_LIBRARY_SCRIPT = ROOT / "tests" / "android_env" / "task_library.py"
PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class AndroidModels:
    folder: Path
    info: ModelInfo
    bare: dict  # precision -> .tflite bytes straight from the converter
    with_metadata: dict  # precision -> Path of the .tflite with metadata
    pixels: np.ndarray  # held-out uint8 images (N, RES, RES, 3), already at the model's input size
    labels: np.ndarray
    images: tuple  # the same pixels as PNG files, for the Task Library
    preprocessing: object
    trained: bool


@pytest.fixture(scope="session")
def android_models(tmp_path_factory) -> AndroidModels:
    from mobilenet_edge.calibration.representative import calibration_set
    from mobilenet_edge.calibration.tasks import Task
    from mobilenet_edge.pipeline.artifacts import sha256_file
    from mobilenet_edge.pipeline.build import mobilenet
    from mobilenet_edge.pipeline.config import QuantConfig
    from mobilenet_edge.pipeline.convert.tflite import tflite_bytes

    folder = tmp_path_factory.mktemp("android")
    task = Task("fashion-mnist", "fashion-mnist")
    model = mobilenet(ALPHA, RES, task.num_classes)
    trained = CHECKPOINT.is_file()
    if trained:
        model.load_weights(CHECKPOINT)
    calib = calibration_set(task, RES, num_samples=32, progress=False)
    pre = task.preprocessing(RES)
    variant = {"name": f"mobilenet_{ALPHA:.2f}_{RES}", "alpha": ALPHA, "resolution": RES, "task": task.slug,
               "class_names": list(task.class_names), "weights": "reference" if trained else "random",
               "weights_file": str(CHECKPOINT) if trained else None,
               "weights_sha256": sha256_file(CHECKPOINT) if trained else None}
    info = model_info(variant, pre.to_dict(), calib.to_dict())
    bare = {"fp32": tflite_bytes(model, "fp32"), "int8": tflite_bytes(model, "int8", calib, QuantConfig())}
    with_metadata = {}
    for precision, data in bare.items():
        with_metadata[precision] = folder / f"{variant['name']}_{precision}.tflite"
        with_metadata[precision].write_bytes(add_metadata(data, info))
    held_out = task.labeled_images("test", RES, limit=20, seed=1, progress=False)
    images = []
    for i, pixels in enumerate(held_out.pixels):
        images.append(folder / f"test_{i:02d}.png")
        Image.fromarray(pixels, "RGB").save(images[-1])
    return AndroidModels(folder, info, bare, with_metadata, held_out.pixels, held_out.labels, tuple(images), pre,
                         trained)


def litert_outputs(model: bytes | Path, x: np.ndarray) -> np.ndarray:
    """Raw output tensors of one ai-edge-litert Interpreter, one image at a time, x already in the input dtype."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(model)) if isinstance(model, Path) else Interpreter(model_content=model)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs = []
    for image in x:
        interpreter.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.stack(outputs)


def builtin_kernel_probabilities(path: Path, pixels: np.ndarray) -> np.ndarray:
    """A uint8-input model fed raw pixels with TFLite's builtin kernels (no XNNPACK), outputs dequantized."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero_point = out["quantization"]
    outputs = []
    for image in pixels:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        outputs.append((interpreter.get_tensor(out["index"])[0].astype(np.float32) - zero_point) * scale)
    return np.stack(outputs)


def our_probabilities(path: Path, models: AndroidModels) -> np.ndarray:
    """What the pipeline's own validation computes: our preprocessing, then pipeline.validate.runtimes on the artifact."""
    from mobilenet_edge.pipeline.validate.runtimes import load, predict

    return predict(load(path, batch=len(models.pixels)), models.pixels, models.preprocessing.normalize)


# --- main environment: writing, reading back, not changing inference ----------------------------------

@pytest.mark.parametrize("precision", PRECISIONS)
def test_metadata_reads_back(android_models, precision):
    meta = read_metadata(android_models.with_metadata[precision].read_bytes())
    assert meta["name"] == "mobilenet_0.25_64" and meta["min_parser_version"] == "1.0.0"
    assert "Int8 calibration: 32 images" in meta["description"] and "fashion-mnist" in meta["description"]
    image, = meta["inputs"]
    assert image["content"] == "ImageProperties" and image["color_space"] == "RGB" and image["size"] == [RES, RES]
    assert image["normalization"] == {"mean": [127.5] * 3, "std": [127.5] * 3}
    # Stats: the float input range after normalisation, or the raw uint8 range the Task Library feeds.
    expected = {"min": [-1.0] * 3, "max": [1.0] * 3} if precision == "fp32" else {"min": [0.0], "max": [255.0]}
    assert image["stats"] == expected
    scores, = meta["outputs"]
    assert scores["associated_files"] == [{"name": "labels.txt", "type": "TENSOR_AXIS_LABELS",
                                           "description": "Labels for categories that the model can recognize."}]
    assert meta["packed_files"] == ["labels.txt"]
    assert meta["labels"] == list(android_models.info.labels)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_metadata_does_not_change_inference(android_models, precision):
    from ai_edge_litert import schema_py_generated as tfl

    bare, with_md = android_models.bare[precision], android_models.with_metadata[precision].read_bytes()
    # Without its metadata the model is the converter's: same graph, signatures, weights, other metadata.
    assert strip_metadata(with_md) == strip_metadata(bare)
    before, after = tfl.ModelT.InitFromPackedBuf(bare, 0), tfl.ModelT.InitFromPackedBuf(with_md, 0)
    assert len(after.buffers) == len(before.buffers) + 1 and len(after.metadata) == len(before.metadata) + 1
    # Weight buffers stay aligned (the flatbuffer object API alone would pack them at 1-byte alignment).
    root = tfl.Model.GetRootAs(with_md, 0)
    for i in range(root.BuffersLength()):
        if root.Buffers(i).DataLength():
            assert root.Buffers(i)._tab.Vector(root.Buffers(i)._tab.Offset(4)) % 16 == 0
    # Identical outputs on the held-out images and on noise, in the model's own input dtype.
    pixels = np.concatenate([android_models.pixels,
                             np.random.default_rng(0).integers(0, 256, (4, RES, RES, 3), dtype=np.uint8)])
    x = pixels if precision == "int8" else android_models.preprocessing.normalize(pixels)
    np.testing.assert_array_equal(litert_outputs(with_md, x), litert_outputs(bare, x))


def test_add_metadata_twice_replaces_it(android_models):
    once = android_models.with_metadata["int8"].read_bytes()
    assert has_metadata(once) and not has_metadata(android_models.bare["int8"])
    assert add_metadata(once, android_models.info) == once  # deterministic, and no second copy
    renamed = add_metadata(once, ModelInfo(name="other", labels=tuple("abcdefghij")))
    meta = read_metadata(renamed)
    assert meta["name"] == "other" and meta["labels"] == list("abcdefghij") and meta["packed_files"] == ["labels.txt"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(labels=()), "expected one non-empty single-line label per class"),
    (dict(labels=("a", "b\nc")), "expected one non-empty single-line label per class"),
    (dict(mean=(127.5, 127.5), std=(127.5, 127.5)), "expected 1 or 3 mean"),
    (dict(mean=(127.5,) * 3, std=(127.5,)), "expected 1 or 3 mean"),
    (dict(std=(0.0,) * 3), "expected std > 0"),
    (dict(input_min=255.0, input_max=0.0), "expected input_min < input_max"),
])
def test_model_info_rejects_bad_values(kwargs, message):
    with pytest.raises(PipelineError, match=message):
        ModelInfo(**{"name": "m", "labels": ("a", "b"), **kwargs})


def test_add_metadata_rejects_what_the_classifier_cannot_use(android_models):
    with pytest.raises(PipelineError, match=r"expected one label per output class \(10\), received 3 labels"):
        add_metadata(android_models.bare["fp32"], ModelInfo(name="m", labels=("a", "b", "c")))
    with pytest.raises(PipelineError, match="expected .tflite bytes"):
        add_metadata(b"not a model at all", android_models.info)


def test_uint8_input_must_apply_the_normalisation(android_models):
    """The Task Library feeds raw pixels to uint8 inputs, so a quantization that is not the contract is an error."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as tfl

    flat = tfl.ModelT.InitFromPackedBuf(android_models.bare["int8"], 0)
    image = flat.subgraphs[0].tensors[flat.subgraphs[0].inputs[0]]
    image.quantization.scale = [1 / 255]  # what calibration on images never brighter than ~128 would give
    builder = flatbuffers.Builder(0)
    builder.Finish(flat.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(PipelineError, match="expected the uint8 input quantization to turn raw pixels into"):
        add_metadata(bytes(builder.Output()), android_models.info)


# --- the android/ folder ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def validated_export(tiny_export, tmp_path_factory):
    """A copy of the tiny export, validated with gates every file passes: android/ ships only validated files."""
    import shutil

    from mobilenet_edge.calibration.tasks import resolve_task
    from mobilenet_edge.pipeline.validate import validate
    from mobilenet_edge.pipeline.config import Gates, ValidationConfig

    copy = tmp_path_factory.mktemp("validated") / tiny_export.variant_dir.name
    shutil.copytree(tiny_export.variant_dir, copy, ignore=shutil.ignore_patterns("android", "validation.json"))
    validate(copy, resolve_task("fashion-mnist"), ValidationConfig(limit=20, gates=Gates(0.0, 0.0, 100.0, 0.0)))
    return copy


def test_export_android_writes_assets(tiny_export, validated_export, tmp_path):
    from mobilenet_edge.pipeline.android import export_android

    out = export_android(validated_export, tmp_path / "assets")
    manifest = json.loads(tiny_export.manifest.read_text())
    # every validated .tflite but the per-tensor comparison file
    tflites = sorted(e["file"] for e in manifest["artifacts"]
                     if e["format"] == "tflite" and e["per_channel"] is not False)
    assert sorted(p.name for p in out.glob("*.tflite")) == tflites
    assert (out / "labels.txt").read_text().splitlines() == manifest["variant"]["class_names"]
    for name in tflites:
        meta = read_metadata((out / name).read_bytes())
        assert meta["labels"] == manifest["variant"]["class_names"] and meta["packed_files"] == ["labels.txt"]
        assert meta["inputs"][0]["normalization"]["mean"] == manifest["preprocessing"]["mean"]
        # the convert stage already embedded the same metadata: re-embedding from the manifest changes nothing
        assert (out / name).read_bytes() == (tiny_export.variant_dir / name).read_bytes()
    readme = (out / "README.md").read_text()
    assert "ImageClassifier.createFromFileAndOptions" in readme and "mobilenet_0.25_32_int8.tflite" in readme
    assert "uint8" in readme and "(pixel - 127.5) / 127.5" in readme
    assert not list(out.glob(".*")), "temporary files left behind"
    assert export_android(validated_export, tmp_path / "assets") == out  # idempotent


def test_android_command_ships_the_validated_files(validated_export, tmp_path):
    """`make android` on an exported, validated variant: the command line, as a user runs it."""
    import shutil

    from conftest import run_cli

    out = tmp_path / "out"
    variant = out / "fashion-mnist" / validated_export.name
    shutil.copytree(validated_export, variant, ignore=shutil.ignore_patterns("android"))
    proc = run_cli("android", "--task", "fashion-mnist", "--alpha", "0.25", "--res", "32", "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    folder = variant / "android"
    shipped = sorted(p.name for p in folder.glob("*.tflite"))
    assert "mobilenet_0.25_32_int8.tflite" in shipped and "mobilenet_0.25_32_fp32.tflite" in shipped
    assert (folder / "labels.txt").read_text().splitlines()[0] == "T-shirt/top"
    assert str(folder) in proc.stdout + proc.stderr


def test_export_android_default_folder_and_errors(validated_export, tmp_path):
    import shutil

    from mobilenet_edge.pipeline.android import export_android

    with pytest.raises(PipelineError, match="expected manifest.json in"):
        export_android(tmp_path)
    copy = tmp_path / "variant"
    shutil.copytree(validated_export, copy, ignore=shutil.ignore_patterns("*.onnx", "android"))
    assert export_android(copy) == copy / "android"
    (copy / "mobilenet_0.25_32_fp16.tflite").write_bytes(b"changed")
    with pytest.raises(PipelineError, match=r"expected mobilenet_0.25_32_fp16.tflite with the sha256 in manifest.json"):
        export_android(copy)
    (copy / "mobilenet_0.25_32_fp16.tflite").unlink()
    with pytest.raises(PipelineError, match="expected mobilenet_0.25_32_fp16.tflite listed in manifest.json to exist"):
        export_android(copy)


# --- the real Task Library, in its own venv ---------------------------------------------------------

@pytest.fixture(scope="session")
def task_library():
    """Run tests/android_env/task_library.py in the cached tflite-support venv; returns its JSON."""
    try:
        python = ensure_venv()
    except PyPIUnreachable as exc:
        reason = f"the tflite-support venv cannot be created: PyPI is unreachable ({exc.args[0][-300:]})"
        if os.environ.get("CI"):  # CI installs everything: a missing environment there is a failure, not a skip
            pytest.fail(reason)
        pytest.skip(reason)

    def run(*args) -> dict:
        proc = subprocess.run([str(python), str(TASK_LIBRARY_SCRIPT), *map(str, args)], capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS)
def test_task_library_classifies_like_our_validation(android_models, task_library, precision):
    """The Task Library's resize differs from our crop + resize, so the images are handed over already at the
    model's input size: both sides then start from the same pixels and only the metadata can differ."""
    path = android_models.with_metadata[precision]
    results = task_library("classify", path, *android_models.images)["results"]
    names = android_models.info.labels
    for result in results:  # every category, named from the packed labels.txt
        assert sorted(c["label"] for c in result) == sorted(names)
        assert all(names[c["index"]] == c["label"] for c in result)
    scores = np.array([[c["score"] for c in sorted(r, key=lambda c: c["index"])] for r in results])
    ours = our_probabilities(path, android_models)
    if precision == "fp32":
        # the Task Library normalised with the metadata's mean/std exactly as our preprocessing does
        np.testing.assert_allclose(scores, ours, atol=1e-5)
    else:
        # uint8 input: the Task Library feeds the raw pixels and leaves the normalisation to the input
        # quantization. Proof: the scores of ai-edge-litert fed raw pixels with builtin kernels (no XNNPACK).
        # The TFLite inside tflite-support 0.4.4 is older and requantizes with another rounding, which moves the
        # odd near-tied score by a few output levels (1-2 levels on 1 of 200 values with one calibration set,
        # 2-6 levels on 3 of 200 with another); a wrong normalisation would move nearly every score by far more.
        level = 1 / 256
        diff = np.abs(scores - builtin_kernel_probabilities(path, android_models.pixels))
        assert diff.max() <= 8 * level * 1.001, diff.max() / level
        assert np.mean(diff > level * 1.001) <= 0.05, np.mean(diff > level * 1.001)
    # Top-1 against our validation path (XNNPACK kernels, normalised floats re-quantized): int8 kernels of the two
    # runtimes round differently (up to ~10 output levels of 1/256 seen), so a top-1 must lead by more than that.
    noise = 1e-4 if precision == "fp32" else 16 / 256
    top2 = np.sort(ours, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > noise
    ours_top1, task_top1 = ours.argmax(1), np.array([r[0]["index"] for r in results])
    assert np.array_equal(task_top1[clear], ours_top1[clear]), (
        f"Task Library top-1 {[names[i] for i in task_top1]}, ours {[names[i] for i in ours_top1]}")
    if android_models.trained:  # the reference checkpoint: confident and right on held-out garments
        assert clear.mean() >= 0.75 and np.mean(task_top1 == android_models.labels) >= 0.7, (
            f"{clear.sum()} clear top-1 of {len(clear)}, accuracy {np.mean(task_top1 == android_models.labels):.0%}")


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS)
def test_metadata_displayer_shows_normalisation_and_labels(android_models, task_library, precision):
    shown = task_library("display", android_models.with_metadata[precision])
    meta = shown["metadata"]
    assert meta["name"] == "mobilenet_0.25_64" and meta["min_parser_version"] == "1.0.0"
    image = meta["subgraph_metadata"][0]["input_tensor_metadata"][0]
    assert image["content"]["content_properties"]["color_space"] == "RGB"
    unit, = image["process_units"]
    assert unit["options_type"] == "NormalizationOptions"
    assert unit["options"] == {"mean": [127.5] * 3, "std": [127.5] * 3}
    labels, = meta["subgraph_metadata"][0]["output_tensor_metadata"][0]["associated_files"]
    assert labels["name"] == "labels.txt" and labels["type"] == "TENSOR_AXIS_LABELS"
    assert shown["packed_files"] == ["labels.txt"]
    assert shown["files"]["labels.txt"].splitlines() == list(android_models.info.labels)


@pytest.mark.slow
def test_tflite_supports_populator_writes_the_same(android_models, task_library, tmp_path):
    """tflite-support's own MetadataPopulator, given our metadata without its parser version, writes the same
    metadata buffer byte for byte (so it computes the same version) and the same model around it."""
    import flatbuffers

    from mobilenet_edge.pipeline.convert.metadata import METADATA_IDENTIFIER, metadata_buffer
    from mobilenet_edge.pipeline.convert.metadata.schema import schema

    ours = android_models.with_metadata["int8"].read_bytes()
    meta = schema.ModelMetadataT.InitFromPackedBuf(metadata_buffer(ours), 0)
    meta.minParserVersion = None
    builder = flatbuffers.Builder(0)
    builder.Finish(meta.Pack(builder), file_identifier=METADATA_IDENTIFIER)
    (tmp_path / "metadata.bin").write_bytes(bytes(builder.Output()))
    (tmp_path / "bare.tflite").write_bytes(android_models.bare["int8"])
    (tmp_path / "labels.txt").write_text(android_models.info.labels_text)
    task_library("populate", tmp_path / "bare.tflite", tmp_path / "metadata.bin", tmp_path / "labels.txt",
                 tmp_path / "theirs.tflite")
    theirs = (tmp_path / "theirs.tflite").read_bytes()
    assert metadata_buffer(theirs) == metadata_buffer(ours)
    assert strip_metadata(theirs) == strip_metadata(ours)
    assert read_metadata(theirs) == read_metadata(ours)
    np.testing.assert_array_equal(litert_outputs(theirs, android_models.pixels),
                                  litert_outputs(ours, android_models.pixels))


@pytest.mark.slow
def test_vendored_schema_is_tflite_supports(task_library):
    from mobilenet_edge.pipeline.convert.metadata.schema import GENERATED_HEADER_LINES

    where = task_library("schema")
    vendored = ROOT / "pipeline" / "convert" / "metadata" / "schema"
    assert (vendored / "metadata_schema.fbs").read_text() == Path(where["fbs"]).read_text()
    generated = (vendored / "metadata_schema_py_generated.py").read_text().splitlines(keepends=True)
    assert "".join(generated[GENERATED_HEADER_LINES:]) == Path(where["py"]).read_text()


@pytest.mark.slow
def test_android_folder_loads_in_the_task_library(tiny_export, validated_export, task_library, tmp_path):
    """What `make android` writes: every shipped file opens and names its categories."""
    from mobilenet_edge.pipeline.android import export_android

    out = export_android(validated_export, tmp_path / "assets")
    side = json.loads(tiny_export.manifest.read_text())["variant"]["resolution"]
    image = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(image)
    names = (out / "labels.txt").read_text().splitlines()
    for model in sorted(out.glob("*.tflite")):
        result, = task_library("classify", model, image)["results"]
        assert sorted(c["label"] for c in result) == sorted(names), model.name


@pytest.mark.slow
def test_task_library_reads_v3_normalisation(task_library, tmp_path_factory):
    """MobileNet V3 takes 0..255 pixels (mean 0, std 1): the Task Library must feed the trained V3-Small
    checkpoint's files exactly as our validation does."""
    from mobilenet_edge.pipeline.config import ExportConfig, QuantConfig, Variant
    from mobilenet_edge.pipeline.recipe import export_variant
    from mobilenet_edge.pipeline.config import RecipeConfig
    from mobilenet_edge.pipeline.validate.runtimes import load, predict
    from mobilenet_edge.calibration.preprocessing import Preprocessing
    from mobilenet_edge.calibration.tasks import Task

    out = tmp_path_factory.mktemp("android-v3")
    result = export_variant(RecipeConfig(variant=Variant(1.0, 64, "fashion-mnist", "reference", "v3-small"),
                                         export=ExportConfig(formats=("fp32", "int8"), out=out),
                                         quant=QuantConfig(num_samples=32)))
    manifest = json.loads(result.manifest.read_text())
    pre = Preprocessing.from_dict(manifest["preprocessing"])
    held_out = Task("fashion-mnist", "fashion-mnist").labeled_images("test", 64, limit=20, seed=1, progress=False)
    images = []
    for i, pixels in enumerate(held_out.pixels):
        images.append(out / f"test_{i:02d}.png")
        Image.fromarray(pixels, "RGB").save(images[-1])
    for artifact in result.artifacts:
        results = task_library("classify", artifact.path, *images)["results"]
        scores = np.array([[c["score"] for c in sorted(r, key=lambda c: c["index"])] for r in results])
        ours = predict(load(artifact.path, batch=len(images)), held_out.pixels, pre.normalize)
        if artifact.precision == "fp32":
            np.testing.assert_allclose(scores, ours, atol=1e-5)
        top2 = np.sort(ours, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 16 / 256
        assert np.array_equal(scores.argmax(1)[clear], ours.argmax(1)[clear]), artifact.path.name
        assert np.mean(scores.argmax(1) == held_out.labels) >= 0.7, artifact.path.name


def test_a_class_with_no_held_out_images_blocks_shipping(tmp_path):
    """A class whose few images all fall in train/val cannot be measured: one line, exit 2, before training."""
    from PIL import Image

    from conftest import error_line, run_cli
    from mobilenet_edge.calibration.tasks import split_of

    root = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for cls, count in (("coat", 25), ("dress", 25), ("rare", 3)):
        (root / cls).mkdir(parents=True)
        made, i = 0, 0
        while made < count:
            name = f"{cls}_{i}.png"
            i += 1
            if cls == "rare" and split_of(Path(cls) / name) == "test":
                continue  # the rare class: 3 images, none held out
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(root / cls / name)
            made += 1
    proc = run_cli("android", "--task", root, "--alpha", "0.25", "--res", "32", "--epochs", "1",
                   "--out", tmp_path / "out")
    line = error_line(proc)
    assert proc.returncode == 2 and "'rare'" in line and "held-out" in line, line
    assert not (tmp_path / "out" / "checkpoints").exists()  # refused before any training
