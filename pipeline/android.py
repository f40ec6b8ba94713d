"""Stage: android/ — a variant's .tflite files that passed validation, with metadata and labels, for `assets/`.

Only what passed ships (pipeline.ship): every other file of the variant gets a line in the README saying why
it was left out (a failed gate, not validated, the per-tensor comparison file, an input the Task Library
rejects).

Android apps load these through the TFLite Task Library (`ImageClassifier`), which takes the input
normalisation and the class names from the metadata, so the app repeats no preprocessing constant.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mobilenet_edge.pipeline.artifacts import sha256_file, write_bytes, write_text
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.manifest import MANIFEST, read_manifest
from mobilenet_edge.pipeline.convert.gpu_compat import gpu_summary
from mobilenet_edge.pipeline.convert.metadata import LABELS_FILE, add_metadata, model_info
from mobilenet_edge.pipeline.ship import TASK_LIBRARY_INPUTS, Selection, select, table

log = logging.getLogger(__name__)

ANDROID_DIR = "android"
TASK_LIBRARY = "org.tensorflow:tensorflow-lite-task-vision:0.4.4"  # the version tests/test_android.py runs


def export_android(variant_dir: Path, out_dir: Path | None = None, busy_cores: float | None = None) -> Path:
    """Write `variant_dir/android/` (or `out_dir`): the .tflite files that passed validation, with metadata,
    labels and a README.

    Steps:
      1. read manifest.json and its .tflite artifacts (each present, with the sha256 listed); keep those that
         passed their gate in validation.json (pipeline.ship.select), the others get a reason
      2. the metadata, from the manifest's variant, preprocessing and calibration records
      3. per file: embed the metadata, prove outputs are unchanged, write atomically; remove .tflite files
         of an earlier run that no longer ship
      4. labels.txt and README.md (what shipped and what did not, the Kotlin that loads the model)
    `busy_cores`: other programs' CPU use when the files were benchmarked, stated beside their latency.
    Returns the folder written.
    """
    variant_dir = Path(variant_dir)
    out = Path(out_dir) if out_dir is not None else variant_dir / ANDROID_DIR

    # 1. manifest and artifacts
    manifest = read_manifest(variant_dir)
    if manifest is None:
        raise PipelineError(f"expected {MANIFEST} in {variant_dir}, received none; export the variant first (make all)")
    entries = [e for e in manifest.get("artifacts", []) if e.get("format") == "tflite"]
    if not entries:
        raise PipelineError(f"expected at least one .tflite artifact in {variant_dir / MANIFEST}, received none; "
                            "export one first (make int8 or make fp32)")
    sources = {e["file"]: _checked_source(variant_dir, e) for e in entries}
    selection = select(variant_dir, manifest)
    if not selection.shipped:
        raise PipelineError("expected at least one .tflite that passed its validation gate, received none: "
                            + "; ".join(f"{f}: {why}" for f, why in selection.left_out))
    entries = [s.entry for s in selection.shipped]

    # 2. metadata: as the convert stage writes it, only int8 files name their calibration set
    calibrated = model_info(manifest["variant"], manifest["preprocessing"], manifest.get("calibration"))
    uncalibrated = model_info(manifest["variant"], manifest["preprocessing"], None)

    # 3. .tflite files with metadata
    for entry in entries:
        model = sources[entry["file"]].read_bytes()
        with_metadata = add_metadata(model, calibrated if entry["precision"] == "int8" else uncalibrated)
        _check_same_outputs(model, with_metadata, entry["file"])
        write_bytes(out / entry["file"], with_metadata)
        log.info("android: %s (%s)", out / entry["file"], entry["precision"])
    for stale in set(p.name for p in out.glob("*.tflite")) - {e["file"] for e in entries}:
        (out / stale).unlink()
    for file, why in selection.left_out:
        log.warning("android: %s left out: %s", file, why)

    # 4. labels and README
    write_text(out / LABELS_FILE, calibrated.labels_text)
    write_text(out / "README.md", readme(manifest, selection, busy_cores))
    return out


def _checked_source(variant_dir: Path, entry: dict) -> Path:
    path = variant_dir / entry["file"]
    if not path.is_file():
        raise PipelineError(
            f"expected {entry['file']} listed in {MANIFEST} to exist, received no file in {variant_dir}")
    digest = sha256_file(path)
    if digest != entry.get("sha256"):
        listed = str(entry.get("sha256"))[:12]
        raise PipelineError(f"expected {entry['file']} with the sha256 in {MANIFEST} ({listed}), received "
                            f"{digest[:12]}; re-export the variant")
    return path


def _check_same_outputs(model: bytes, with_metadata: bytes, name: str) -> None:
    """Metadata must not change inference: one seeded image through both, outputs bit-identical."""
    from ai_edge_litert.interpreter import Interpreter

    outputs = []
    for data in (model, with_metadata):
        interpreter = Interpreter(model_content=data, num_threads=1)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
        pixels = np.random.default_rng(0).integers(0, 256, inp["shape"]).astype(np.float32)
        x = pixels if np.issubdtype(inp["dtype"], np.integer) else (pixels - 127.5) / 127.5
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy())
    if not np.array_equal(*outputs):
        raise PipelineError(f"expected identical outputs with and without metadata, received a difference for {name}")


def readme(manifest: dict, selection: Selection, busy_cores: float | None = None) -> str:
    """README.md for the android/ folder: what shipped (accuracy, size, latency) and what was left out and why,
    the Kotlin that loads one, what the Task Library does."""
    variant, pre = manifest["variant"], manifest["preprocessing"]
    res, crop = pre["resolution"], pre.get("crop_fraction", 1.0)
    entries = [s.entry for s in selection.shipped]
    loadable = [e for e in entries if e["inputs"][0]["dtype"] in TASK_LIBRARY_INPUTS]
    pick = next((e for e in loadable if e["precision"] == "int8" and e.get("per_channel") is not False), None)
    pick = pick or next((e for e in loadable if e["precision"] == "fp32"), None) or (loadable or entries)[0]
    uint8 = next((e["inputs"][0] for e in loadable if e["inputs"][0]["dtype"] == "uint8"), None)
    lines = [
        f"# {variant['name']} for Android ({variant['task']}, {len(variant['class_names'])} classes)",
        "",
        "Copy these files into your app's `src/main/assets/`. Every `.tflite` carries TFLite metadata: the input",
        "normalisation, the class names (`labels.txt`, packed inside the model too) and where the weights and the",
        "int8 calibration came from. Generated by `make android`; do not edit. Only files that passed their",
        "validation gate on held-out images are here.",
        "",
        *table(selection),
        "",
        *gpu_lines(entries),
        "Latency: p50 on the machine that built these files, a guide to their relative cost, not a phone's figure"
        + (f" (other programs used {busy_cores:g} cores' worth of CPU when it was measured)." if busy_cores is not None
           else "."),
        "",
        f"Recommended: `{pick['file']}`.",
        "",
        "```kotlin",
        "// app/build.gradle.kts",
        f'dependencies {{ implementation("{TASK_LIBRARY}") }}',
        'android { androidResources { noCompress += "tflite" } }  // the model is memory-mapped from assets',
        "```",
        "",
        "```kotlin",
        "import org.tensorflow.lite.support.image.TensorImage",
        "import org.tensorflow.lite.task.core.BaseOptions",
        "import org.tensorflow.lite.task.vision.classifier.ImageClassifier",
        "",
        "val options = ImageClassifier.ImageClassifierOptions.builder()",
        "    .setBaseOptions(BaseOptions.builder().setNumThreads(4).build())",
        "    .setMaxResults(3)",
        "    .build()",
        f'val classifier = ImageClassifier.createFromFileAndOptions(context, "{pick["file"]}", options)',
        *_classify_lines(crop),
        f'val top = results[0].categories[0]  // top.label is a line of labels.txt, e.g. "{variant["class_names"][0]}"',
        "classifier.close()",
        "```",
        "",
        "Notes",
        "",
        f"- Input: RGB, resized by the Task Library to {res}x{res} (bilinear). The normalisation (pixel - "
        f"{_num(pre['mean'])}) / {_num(pre['std'])} → [{pre['output_range'][0]:g}, {pre['output_range'][1]:g}] "
        "comes from the metadata: do not normalise in the app.",
        _crop_note(crop, res),
    ]
    if uint8 is not None:
        lines.append(
            "- The int8 models have uint8 input and output because the Task Library rejects int8 input tensors: "
            f"they are fed the raw RGB bytes, and the input quantization (scale {uint8['scale']:.6g}, zero point "
            f"{uint8['zero_point']}) performs the same normalisation. Their scores are multiples of 1/256.")
    if variant.get("task") == "fashion-mnist":
        lines.append("- Trained on Fashion-MNIST: centred white garments on a black background, grey replicated to "
                     "RGB; camera photos need the same look to be classified well.")
    return "\n".join(lines) + "\n"


def gpu_lines(entries: list[dict]) -> list[str]:
    """One line per shipped file: what the Android GPU delegate takes ("GPU delegate: all N ops" / "falls back: ...")."""
    lines = [f"- `{e['file']}`: {gpu_summary(e.get('gpu'))}" for e in entries]
    return ["GPU delegate (`GpuDelegate` / `BaseOptions.useGpu()`), per file:", "", *lines, ""] if lines else []


def _classify_lines(crop: float) -> list[str]:
    if crop >= 1.0:
        return ["val results = classifier.classify(TensorImage.fromBitmap(bitmap))"]
    return [
        "// the pipeline's contract: central crop first (the Task Library only resizes)",
        f"val side = (minOf(bitmap.width, bitmap.height) * {crop}f).toInt()",
        "val roi = android.graphics.Rect((bitmap.width - side) / 2, (bitmap.height - side) / 2,",
        "    (bitmap.width + side) / 2, (bitmap.height + side) / 2)",
        "val crop = org.tensorflow.lite.task.core.vision.ImageProcessingOptions.builder().setRoi(roi).build()",
        "val results = classifier.classify(TensorImage.fromBitmap(bitmap), crop)",
    ]


def _crop_note(crop: float, res: int) -> str:
    if crop >= 1.0:
        return f"- No crop: validation resized whole images to {res}x{res}, as the Task Library does."
    return (f"- Validation central-cropped {crop:.1%} of the shorter side before resizing; the snippet repeats it "
            "with a region of interest, since the Task Library itself only resizes.")


def _num(values) -> str:
    return f"{values[0]:g}" if len(set(values)) == 1 else str(list(values))
