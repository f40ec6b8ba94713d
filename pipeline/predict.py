"""Predict — classify images with any artifact (.keras, .tflite, .onnx), fed by the artifact's own record.

Keras's `decode_predictions` example as a stage: top-k labels with scores per image. The preprocessing
contract (crop, resize, mean/std) and the labels come from what the artifact was exported with, never from
defaults, because architectures differ (V1/V2 take [-1, 1], V3 0..255 pixels). Looked up in order:
  1. `manifest.json` beside the file, when it lists the file (or the file is its `model.keras`);
  2. the record inside the file: TFLite metadata (normalisation, input size, packed `labels.txt`; crop and
     resize from the metadata's description) or ONNX `metadata_props` (`preprocessing`, `labels`);
  3. a `manifest.json` beside the file that does not list it (with a warning).
The models run through `pipeline.validate.runtimes`, exactly as validation runs them (a uint8 .tflite gets raw
pixels, int8 outputs are dequantized).
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from mobilenet_edge.calibration.images import find_images, load_rgb
from mobilenet_edge.calibration.preprocessing import RESIZE_METHODS, Preprocessing
from mobilenet_edge.pipeline.config import PREDICT_TOP
from mobilenet_edge.pipeline.validate import runtimes
from mobilenet_edge.pipeline.convert.tflite import tflite_file_name
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.manifest import MANIFEST, read_manifest
from mobilenet_edge.pipeline.convert.metadata import LABELS_FILE
from mobilenet_edge.pipeline.validate import FLOAT_MODEL

log = logging.getLogger(__name__)

SUFFIXES = (".keras", ".tflite", ".onnx")
# pipeline.convert.metadata.model_info writes the crop and resize into the description; the metadata schema has no field.
_CROP_SENTENCE = re.compile(r"central crop ([0-9.]+), (\w+) resize")


@dataclass(frozen=True)
class Record:
    """How to feed an artifact and name its outputs, and where that was read (for the user to check)."""

    preprocessing: Preprocessing
    labels: tuple[str, ...]
    source: str  # "manifest.json" | "TFLite metadata" | "ONNX metadata_props"


@dataclass(frozen=True)
class Prediction:
    image: Path
    top: tuple[tuple[int, str, float], ...]  # (class index, label, probability), best first


@dataclass(frozen=True)
class PredictResult:
    artifact: Path
    record: Record
    predictions: tuple[Prediction, ...]
    probabilities: np.ndarray  # (images, classes), float32
    skipped: tuple[tuple[Path, str], ...] = ()  # (image, why) of the files that could not be decoded

    def to_dict(self) -> dict:
        return {
            "artifact": str(self.artifact), "record": self.record.source,
            "preprocessing": self.record.preprocessing.to_dict(),
            "images": [{"image": str(p.image), "top": [
                {"rank": rank, "class": index, "label": label, "score": round(score, 6)}
                for rank, (index, label, score) in enumerate(p.top, 1)]} for p in self.predictions],
            "skipped": [{"image": str(image), "reason": why} for image, why in self.skipped],
        }


def default_artifact(variant_dir: Path) -> Path:
    """The variant's full-int8 .tflite: the file an app ships, so the one whose answers matter most."""
    path = Path(variant_dir) / tflite_file_name(Path(variant_dir).name, "int8")
    if not path.is_file():
        raise PipelineError(f"expected ARTIFACT=<.keras|.tflite|.onnx file> or an exported int8 .tflite at {path} "
                            "(make int8 with the same ALPHA/RES/TASK/OUT), received neither")
    return path


def collect_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Files as given (any format PIL decodes), folders searched recursively for image files."""
    if not inputs:
        raise PipelineError("expected IMAGE=<image file or folder> (one or more), received none")
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(find_images(item))
        elif item.is_file():
            files.append(item)
        else:
            raise PipelineError(f"expected an image file or folder, received {str(item)!r}, which does not exist")
    return files


def predict(artifact: Path, images: Sequence[str | Path], top_k: int = PREDICT_TOP) -> PredictResult:
    """Classify `images` (files and/or folders) with `artifact`; the `top_k` classes per image, best first."""
    artifact = Path(artifact)
    if not isinstance(top_k, int) or top_k < 1:
        raise PipelineError(f"expected --top >= 1, received {top_k!r}")
    if artifact.suffix not in SUFFIXES:
        raise PipelineError(f"expected an artifact ending in {', '.join(SUFFIXES)}, received {str(artifact)!r}")
    if not artifact.is_file():
        raise PipelineError(f"expected an artifact file, received {str(artifact)!r}, which does not exist")
    # Inputs first, the model last: a typo or a broken image should not cost a TensorFlow import.
    files = collect_images(images)
    record = read_record(artifact)
    pre = record.preprocessing
    pixels, skipped = [], []
    for f in files:  # one broken file among many is listed, not fatal
        try:
            pixels.append(pre.crop_and_resize(load_rgb(f)))
        except PipelineError as exc:
            skipped.append((f, str(exc)))
    if not pixels:
        raise PipelineError(f"expected at least one decodable image, received {len(files)} that could not be "
                            f"decoded (first: {skipped[0][1]})")
    files = [f for f in files if f not in {s for s, _ in skipped}]
    pixels = np.stack(pixels)

    model = runtimes.load(artifact, batch=32)
    _check_input_size(artifact, model, record)
    probs = runtimes.predict(model, pixels, pre.normalize)
    if probs.ndim != 2 or probs.shape[1] != len(record.labels):
        raise PipelineError(f"expected one output per label ({len(record.labels)} from {record.source}), "
                            f"received outputs of shape {list(probs.shape[1:])} from {artifact.name}")
    k = min(top_k, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    predictions = tuple(
        Prediction(f, tuple((int(i), record.labels[i], float(p[i])) for i in best))
        for f, p, best in zip(files, probs, order))
    return PredictResult(artifact, record, predictions, probs, tuple(skipped))


# --- the record ------------------------------------------------------------------------------------

def read_record(artifact: Path) -> Record:
    """The artifact's preprocessing contract and labels (see the module docstring for the order)."""
    artifact = Path(artifact)
    manifest = read_manifest(artifact.parent)
    listed = manifest is not None and (
        artifact.name == FLOAT_MODEL or any(e.get("file") == artifact.name for e in manifest.get("artifacts", [])))
    if listed:
        _check_listed_sha256(manifest, artifact)
        return _from_manifest(manifest, artifact)
    try:
        embedded = _embedded_record(artifact)
    except PipelineError:
        raise
    except Exception as exc:  # not a model file at all: say so as runtimes.load would
        raise PipelineError(f"expected a loadable {artifact.suffix} model, received {artifact} "
                            f"({type(exc).__name__}: {exc})") from exc
    if embedded is not None:
        return embedded
    if manifest is not None:
        log.warning("%s is not listed in %s beside it; using that manifest's preprocessing record",
                    artifact.name, MANIFEST)
        return _from_manifest(manifest, artifact)
    inside = {".tflite": "its TFLite metadata", ".onnx": "its ONNX metadata_props"}.get(artifact.suffix)
    where = f"{MANIFEST} beside it" + (f" or {inside}" if inside else " (a .keras file carries no record)")
    raise PipelineError(f"expected a preprocessing record for {artifact.name} in {where}, received none "
                        f"in {artifact.parent}")


def _check_listed_sha256(manifest: dict, artifact: Path) -> None:
    """A file the manifest lists is used only with the bytes it lists: a changed file may load and answer wrongly."""
    from mobilenet_edge.pipeline.artifacts import sha256_file

    entry = next((e for e in manifest.get("artifacts", []) if e.get("file") == artifact.name), None)
    if entry is None:  # model.keras: the manifest lists no hash for it
        return
    found = sha256_file(artifact)
    if found != entry["sha256"]:
        raise PipelineError(f"expected {artifact.name} with the sha256 {MANIFEST} lists ({entry['sha256'][:12]}…), "
                            f"received a file with sha256 {found[:12]}…: it changed since it was exported; export "
                            "it again, or copy the file elsewhere to use it with its own embedded record")


def _from_manifest(manifest: dict, artifact: Path) -> Record:
    source = MANIFEST
    pre = _preprocessing(manifest.get("preprocessing"), source)
    labels = (manifest.get("variant") or {}).get("class_names")
    if not labels and (artifact.parent / LABELS_FILE).is_file():
        labels = (artifact.parent / LABELS_FILE).read_text().splitlines()
    if not labels:
        raise PipelineError(f"expected class names in {MANIFEST} (variant.class_names) or {LABELS_FILE} beside "
                            f"{artifact.name}, received neither")
    return Record(pre, tuple(labels), source)


def _embedded_record(artifact: Path) -> Record | None:
    if artifact.suffix == ".tflite":
        data = artifact.read_bytes()
        if data[4:8] != b"TFL3":
            raise PipelineError(f"expected a .tflite model (flatbuffer identifier TFL3), received {artifact} "
                                f"(bytes 4-8: {bytes(data[4:8])!r})")
        return _from_tflite_metadata(data)
    if artifact.suffix == ".onnx":
        import onnx

        from mobilenet_edge.pipeline.convert.onnx import LABELS_KEY, PREPROCESSING_KEY

        props = {p.key: p.value for p in onnx.load(str(artifact), load_external_data=False).metadata_props}
        if PREPROCESSING_KEY not in props:
            return None
        source = "ONNX metadata_props"
        try:
            record = json.loads(props[PREPROCESSING_KEY])
        except ValueError as exc:
            raise PipelineError(f"expected JSON in {source}[{PREPROCESSING_KEY!r}] of {artifact.name}, "
                                f"received {props[PREPROCESSING_KEY][:60]!r}") from exc
        labels = props.get(LABELS_KEY, "").splitlines()
        if not labels:
            raise PipelineError(f"expected class names in {source}[{LABELS_KEY!r}] of {artifact.name}, received none")
        return Record(_preprocessing(record, source), tuple(labels), source)
    return None


def _from_tflite_metadata(data: bytes) -> Record | None:
    from mobilenet_edge.pipeline.convert.metadata import has_metadata, read_metadata

    if not has_metadata(data):
        return None
    source = "TFLite metadata"
    meta = read_metadata(data)
    image = (meta["inputs"] or [{}])[0]
    norm, size = image.get("normalization"), image.get("size")
    if not norm or not size:
        raise PipelineError(f"expected the input normalisation and size in the {source}, received "
                            f"normalization={norm}, size={size}")
    if not meta["labels"]:
        raise PipelineError(f"expected {LABELS_FILE} packed in the {source}, received files {meta['packed_files']}")
    sentence = _CROP_SENTENCE.search(meta.get("description") or "")
    if sentence:
        crop, method = float(sentence.group(1)), sentence.group(2)
    else:  # not one of ours: do what the Task Library does with it, resize the whole image
        crop, method = 1.0, "bilinear"
        log.warning("the %s does not say how to crop; resizing the whole image (bilinear), as the Task Library does",
                    source)
    record = {"resolution": size[1] if size[0] == size[1] else size, "crop_fraction": crop, "resize_method": method,
              "mean": _three(norm["mean"]), "std": _three(norm["std"])}
    return Record(_preprocessing(record, source), tuple(meta["labels"]), source)


def _three(values: list[float]) -> list[float]:
    """The Task Library allows one normalisation value for all channels."""
    return list(values) * 3 if len(values) == 1 else list(values)


def _preprocessing(record: dict | None, source: str) -> Preprocessing:
    """The recorded contract as `Preprocessing`, refusing what crop_and_resize/normalize cannot repeat."""
    required = ("resolution", "crop_fraction", "resize_method", "mean", "std")
    if not isinstance(record, dict) or any(k not in record for k in required):
        got = sorted(record) if isinstance(record, dict) else record
        raise PipelineError(f"expected a preprocessing record with {', '.join(required)} in {source}, received {got}")
    try:
        pre = Preprocessing.from_dict(record)
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"expected a valid preprocessing record in {source}, received {record} ({exc})") from exc
    problems = []
    if not isinstance(pre.resolution, int) or pre.resolution < 1:
        problems.append(f"resolution={pre.resolution!r} (a square side in pixels)")
    if not 0 < pre.crop_fraction <= 1:
        problems.append(f"crop_fraction={pre.crop_fraction!r} (in (0, 1])")
    if pre.resize_method not in RESIZE_METHODS:
        problems.append(f"resize_method={pre.resize_method!r} (one of {', '.join(RESIZE_METHODS)})")
    if len(pre.mean) != 3 or len(pre.std) != 3 or min(pre.std) <= 0:
        problems.append(f"mean={list(pre.mean)}, std={list(pre.std)} (3 values each, std > 0)")
    if (pre.color_order, pre.layout) != ("RGB", "NHWC"):
        problems.append(f"color_order={pre.color_order!r}, layout={pre.layout!r} (RGB, NHWC)")
    if problems:
        raise PipelineError(f"expected a preprocessing record predict can apply in {source}, received "
                            + "; ".join(problems))
    return pre


def _check_input_size(artifact: Path, model, record: Record) -> None:
    """A model whose input is not the recorded side would be fed wrongly sized images (or fail deep inside)."""
    shape = tuple(model.input_shape)
    height, width = (shape[0], shape[1]) if len(shape) == 3 else (None, None)
    side = record.preprocessing.resolution
    fixed = [s for s in (height, width) if isinstance(s, int) and s > 0]  # None / "unk__": any size goes
    if any(s != side for s in fixed) or (len(shape) == 3 and isinstance(shape[2], int) and shape[2] != 3):
        raise PipelineError(f"expected {artifact.name} to take {side}x{side}x3 images as its {record.source} says, "
                            f"received a model input of {'x'.join(str(s) for s in shape)}")
