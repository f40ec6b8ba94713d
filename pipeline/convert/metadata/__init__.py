"""TFLite model metadata: the labels and the preprocessing contract travel inside every .tflite.

Android's Task Library (`ImageClassifier`) and Android Studio's ML Model Binding read the metadata to
know the input normalisation and the class names; without it every app re-implements preprocessing.

The layout is the one tflite-support's `MetadataPopulator` writes, built here from the vendored schema
(`pipeline/convert/metadata/schema/`) because tflite-support cannot be imported next to TensorFlow 2.21:
  - a `ModelMetadata` flatbuffer (file identifier "M001") in a new model buffer, referenced by a
    `metadata` entry named "TFLITE_METADATA";
  - the associated files (`labels.txt`) in a zip archive appended after the model flatbuffer, which
    the TFLite runtime never reads and the Task Library opens.
Nothing else changes: operators, tensors and weight buffers are carried over as they are, so inference
with and without metadata is identical.
"""
from __future__ import annotations

import functools
import io
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from mobilenet_edge.pipeline.archs import get_arch
from mobilenet_edge.pipeline.errors import PipelineError
from mobilenet_edge.pipeline.convert.metadata.schema import schema as md

if TYPE_CHECKING:
    from mobilenet_edge.calibration.representative import CalibrationSet
    from mobilenet_edge.calibration.tasks import Task
    from mobilenet_edge.pipeline.config import Variant

log = logging.getLogger(__name__)

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"  # file_identifier of metadata_schema.fbs
LABELS_FILE = "labels.txt"
# Only fields of the initial metadata schema are written, so tflite-support's populator would compute
# 1.0.0 too (metadata_version.cc); tests/test_android.py checks that it does.
MIN_PARSER_VERSION = "1.0.0"
# The converter leaves weight buffers 4-byte aligned; the flatbuffer object API would repack them at
# 1-byte alignment, so they are placed on 16-byte boundaries instead (float/int32 reads stay aligned).
BUFFER_ALIGNMENT = 16
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same inputs give the same sha256
# How far (in input quantization steps, ~grey levels) raw pixels may land from the normalisation on a
# uint8 input. Rounding and a calibration set whose brightest pixel is 253 stay within 2; a dark
# calibration set or a mismatched contract ([0, 1] vs [-1, 1]) is off by tens of levels.
MAX_LEVELS_OFF = 2.0


@dataclass(frozen=True)
class ModelInfo:
    """What the metadata says about a model: identity, the preprocessing contract, the labels.

    `mean`/`std` (per RGB channel, or one value for all) describe float input = (pixel - mean) / std
    for pixels in [input_min, input_max]; MobileNet V1 uses mean = std = 127.5, i.e. [-1, 1].
    `labels` are the class names in class-index order. `provenance` (training, calibration) is
    appended to the description.
    """

    name: str
    labels: tuple[str, ...]
    description: str = ""
    version: str = ""
    author: str = "mobilenet-edge"
    license: str = "Apache-2.0"
    mean: tuple[float, ...] = (127.5, 127.5, 127.5)
    std: tuple[float, ...] = (127.5, 127.5, 127.5)
    input_min: float = 0.0
    input_max: float = 255.0
    provenance: str = ""

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if not self.name:
            raise PipelineError(f"expected a model name, received {self.name!r}")
        if not self.labels or any(not str(l).strip() or "\n" in str(l) for l in self.labels):
            raise PipelineError(f"expected one non-empty single-line label per class, received {self.labels!r}")
        # The Task Library accepts 1 or 3 normalisation values (GetNormalizationOptionsIfAny).
        if len(self.mean) not in (1, 3) or len(self.std) != len(self.mean):
            raise PipelineError(
                f"expected 1 or 3 mean and as many std values, received mean={self.mean}, std={self.std}")
        if min(self.std) <= 0:
            raise PipelineError(f"expected std > 0, received std={self.std}")
        if not self.input_min < self.input_max:
            raise PipelineError(f"expected input_min < input_max, received {self.input_min} and {self.input_max}")

    @property
    def full_description(self) -> str:
        return " ".join(part.strip() for part in (self.description, self.provenance) if part.strip())

    @property
    def labels_text(self) -> str:
        return "\n".join(self.labels) + "\n"


def add_metadata(model: bytes, info: ModelInfo) -> bytes:
    """Return `model` (.tflite bytes) with `info` embedded as TFLite metadata and labels.txt packed in.

    Replaces metadata and packed files a previous call added, so it is safe to apply twice.
    """
    flat = _unpack(model)
    graph = _single_image_classifier(flat, len(info.labels))
    metadata = _model_metadata(info, graph)
    builder = flatbuffers.Builder(0)
    builder.Finish(metadata.Pack(builder), file_identifier=METADATA_IDENTIFIER)
    _set_metadata_buffer(flat, bytes(builder.Output()))
    return _append_files(_pack(flat), {LABELS_FILE: info.labels_text.encode()})


def metadata_writer(info: ModelInfo) -> Callable[[bytes], bytes]:
    """`bytes -> bytes` that embeds `info`: the form `convert_tflite(..., add_metadata=...)` takes."""
    return functools.partial(add_metadata, info=info)


def strip_metadata(model: bytes) -> bytes:
    """`model` without TFLITE_METADATA and packed files, repacked the same way `add_metadata` packs.

    Two conversions of the same weights whose metadata differs (say, in provenance) compare equal this way.
    """
    flat = _unpack(model)
    for i, entry in enumerate(flat.metadata or []):
        if entry.name.decode() == METADATA_NAME:
            del flat.metadata[i]
            if entry.buffer == len(flat.buffers) - 1:
                flat.buffers.pop()
            else:  # keep the other buffers' indices
                flat.buffers[entry.buffer] = tfl.BufferT()
            break
    return _pack(flat)


def metadata_buffer(model: bytes) -> bytes | None:
    """The raw ModelMetadata flatbuffer of a .tflite, or None without metadata."""
    root = tfl.Model.GetRootAs(model, 0)
    for i in range(root.MetadataLength()):
        if root.Metadata(i).Name() == METADATA_NAME.encode():
            return root.Buffers(root.Metadata(i).Buffer()).DataAsNumpy().tobytes()
    return None


def has_metadata(model: bytes) -> bool:
    return metadata_buffer(model) is not None


def read_metadata(model: bytes) -> dict:
    """The metadata of a .tflite as plain data (names, normalisation, stats, files, labels)."""
    buf = metadata_buffer(model)
    if buf is None:
        raise PipelineError(f"expected a .tflite carrying {METADATA_NAME}, received one without metadata")
    meta = md.ModelMetadataT.InitFromPackedBuf(buf, 0)
    graph = meta.subgraphMetadata[0]
    files = _packed_files(model)
    labels_file = files.get(LABELS_FILE, b"").decode()
    return {
        "name": _text(meta.name), "description": _text(meta.description), "version": _text(meta.version),
        "author": _text(meta.author), "license": _text(meta.license),
        "min_parser_version": _text(meta.minParserVersion),
        "inputs": [_tensor_dict(t) for t in graph.inputTensorMetadata or []],
        "outputs": [_tensor_dict(t) for t in graph.outputTensorMetadata or []],
        "packed_files": sorted(files),
        "labels": labels_file.splitlines(),
    }


def model_info(variant: dict, preprocessing: dict, calibration: dict | None = None) -> ModelInfo:
    """The metadata of one variant from its manifest records (`variant`, `preprocessing`, `calibration`).

    The provenance names files, not folders, so the bytes do not depend on where a checkout or a data set
    lives; the training record beside a weights file (pipeline.train writes one) is summarised if present.
    """
    side = f"{variant['resolution']}x{variant['resolution']}"
    title = get_arch(variant.get("arch", "v1")).title
    description = (f"{title} (alpha={variant['alpha']}, {side} RGB input) classifying {variant['task']} "
                   f"into {len(variant['class_names'])} classes.")
    kind = variant.get("weights") if variant.get("weights") in ("reference", "imagenet", "random") else "file"
    weights = f"Weights: {kind}"
    if variant.get("weights_sha256"):
        weights += f" ({Path(variant['weights_file']).name}, sha256 {variant['weights_sha256'][:12]})"
    provenance = [weights + "."]
    training = _training_record(variant.get("weights_file"))
    if training.get("test_top1") is not None:
        epochs = training.get("config", {}).get("epochs")
        provenance.append(f"Trained {epochs} epochs on {training.get('train_images')} images; "
                          f"test top-1 {training['test_top1']:.1%} on {training.get('test_images')}.")
    if calibration and calibration["source"].startswith("synthetic"):
        # Data-free: an app developer should know no real image set the ranges.
        provenance.append(f"Int8 calibration: {calibration['count']} {calibration['source']}, seed "
                          f"{calibration['seed']}, sha256 {calibration['sha256'][:12]}; real images calibrate better.")
    elif calibration:
        provenance.append(f"Int8 calibration: {calibration['count']} images from {Path(calibration['source']).name}, "
                          f"seed {calibration['seed']}, sample list sha256 {calibration['sha256'][:12]}.")
    provenance.append(f"Preprocessing: central crop {preprocessing['crop_fraction']}, {preprocessing['resize_method']} "
                      f"resize to {side}, then (pixel - mean) / std, mean {_nums(preprocessing['mean'])}, "
                      f"std {_nums(preprocessing['std'])}.")
    return ModelInfo(
        name=variant["name"], labels=tuple(variant["class_names"]), description=description,
        version=(variant.get("weights_sha256") or kind)[:12],
        mean=tuple(preprocessing["mean"]), std=tuple(preprocessing["std"]), provenance=" ".join(provenance),
    )


def _training_record(weights_file: str | None) -> dict:
    from mobilenet_edge.pipeline.build import checkpoint_info

    try:
        return checkpoint_info(Path(weights_file)) if weights_file and Path(weights_file).is_file() else {}
    except (OSError, ValueError, KeyError) as exc:  # the record is provenance only: the file is still right
        log.warning("training record beside %s not read (%s): the metadata omits the training summary",
                    weights_file, exc)
        return {}


def metadata_for_variant(variant: Variant, task: Task, calib: CalibrationSet | None,
                         weights_file: Path | None) -> Callable[[bytes], bytes]:
    """The recipe's convert-stage hook: the same metadata `model_info` makes from the manifest records."""
    from mobilenet_edge.pipeline.manifest import weights_record

    record = {"arch": variant.arch, "name": variant.name, "alpha": variant.alpha, "resolution": variant.resolution,
              "task": task.slug, "class_names": list(task.class_names), **weights_record(variant, weights_file)}
    info = model_info(record, task.preprocessing(variant.resolution, variant.arch).to_dict(),
                      calib.to_dict() if calib else None)
    return metadata_writer(info)


# --- building ---------------------------------------------------------------------------------------

class _AlignedBufferT(tfl.BufferT):
    """A model buffer whose data starts on a BUFFER_ALIGNMENT boundary of the finished file."""

    def Pack(self, builder):
        data = None
        if self.data is not None:
            raw = bytes(self.data)
            builder.Prep(BUFFER_ALIGNMENT, len(raw))  # the vector's first byte lands on the boundary
            data = builder.CreateByteVector(raw)
        tfl.BufferStart(builder)
        if data is not None:
            tfl.BufferAddData(builder, data)
        tfl.BufferAddOffset(builder, self.offset)
        tfl.BufferAddSize(builder, self.size)
        return tfl.BufferEnd(builder)


def _unpack(model: bytes) -> tfl.ModelT:
    if len(model) < 8 or model[4:8] != b"TFL3":
        raise PipelineError(f"expected .tflite bytes (flatbuffer identifier TFL3), received {bytes(model[4:8])!r}")
    flat = tfl.ModelT.InitFromPackedBuf(model, 0)
    if any(b.offset for b in flat.buffers or []):
        # Weights stored after the flatbuffer (models > 2 GB) would move when the flatbuffer grows.
        raise PipelineError("expected a .tflite with its weights inside the flatbuffer, received external buffers")
    return flat


def _pack(flat: tfl.ModelT) -> bytes:
    flat.buffers = [_AlignedBufferT(b.data, b.offset, b.size) for b in flat.buffers]
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(flat.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _single_image_classifier(flat: tfl.ModelT, num_labels: int) -> dict:
    """Check the model is what the Task Library's ImageClassifier takes; return its I/O tensors."""
    if len(flat.subgraphs) != 1:
        raise PipelineError(f"expected a model with one subgraph, received {len(flat.subgraphs)}")
    graph = flat.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise PipelineError(
            f"expected one input and one output, received {len(graph.inputs)} and {len(graph.outputs)}")
    image, scores = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    shape = [int(s) for s in image.shape]
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
        raise PipelineError(f"expected a 1xHxWx3 image input, received shape {shape}")
    classes = int(np.prod(scores.shape))
    if classes != num_labels:
        raise PipelineError(f"expected one label per output class ({classes}), received {num_labels} labels")
    return {"image": image, "scores": scores, "height": shape[1], "width": shape[2]}


def _model_metadata(info: ModelInfo, graph: dict) -> md.ModelMetadataT:
    meta = md.ModelMetadataT()
    meta.name, meta.description, meta.version = info.name, info.full_description, info.version
    meta.author, meta.license, meta.minParserVersion = info.author, info.license, MIN_PARSER_VERSION
    sub = md.SubGraphMetadataT()
    sub.inputTensorMetadata = [_image_metadata(info, graph)]
    sub.outputTensorMetadata = [_scores_metadata(info, graph["scores"])]
    meta.subgraphMetadata = [sub]
    return meta


def _image_metadata(info: ModelInfo, graph: dict) -> md.TensorMetadataT:
    tensor = graph["image"]
    props = md.ImagePropertiesT()
    props.colorSpace = md.ColorSpaceType.RGB
    props.defaultSize = md.ImageSizeT()
    props.defaultSize.width, props.defaultSize.height = graph["width"], graph["height"]
    norm = md.NormalizationOptionsT()
    # Quantized models carry their float model's normalisation (metadata_schema.fbs, NormalizationOptions);
    # the input quantization then maps it back to raw pixels, which is what the Task Library feeds.
    norm.mean, norm.std = list(info.mean), list(info.std)
    unit = md.ProcessUnitT()
    unit.optionsType, unit.options = md.ProcessUnitOptions.NormalizationOptions, norm
    contract = f"(pixel - {_nums(info.mean)}) / {_nums(info.std)}"
    if tensor.type == tfl.TensorType.UINT8:
        scale, zero_point = _check_raw_pixels_match(tensor, info)
        stats = ([info.input_min], [info.input_max])
        how = (f"uint8: raw RGB pixels {info.input_min:g}..{info.input_max:g}; the input quantization (scale "
               f"{scale:.6g}, zero point {zero_point}) applies {contract}.")
    elif tensor.type == tfl.TensorType.FLOAT32:
        stats = ([(info.input_min - m) / s for m, s in zip(info.mean, info.std)],
                 [(info.input_max - m) / s for m, s in zip(info.mean, info.std)])
        how = f"float32: {contract} per channel."
    else:
        log.warning("%s: input type %s is not accepted by the Task Library (uint8 or float32 only)",
                    info.name, _enum_name(tfl.TensorType, tensor.type))
        stats, how = None, f"{_enum_name(tfl.TensorType, tensor.type).lower()}: quantized {contract}."
    return _tensor_metadata("image", f"RGB image, {graph['width']}x{graph['height']}. Input {how}",
                            md.ContentProperties.ImageProperties, props, stats, [unit])


def _scores_metadata(info: ModelInfo, tensor) -> md.TensorMetadataT:
    labels = md.AssociatedFileT()
    labels.name, labels.type = LABELS_FILE, md.AssociatedFileType.TENSOR_AXIS_LABELS
    labels.description = "Labels for categories that the model can recognize."
    stats = ([0.0], [255.0]) if tensor.type == tfl.TensorType.UINT8 else ([0.0], [1.0])
    meta = _tensor_metadata("probability", f"Probabilities of the {len(info.labels)} classes, in the order of "
                            f"{LABELS_FILE}.", md.ContentProperties.FeatureProperties, md.FeaturePropertiesT(), stats)
    meta.associatedFiles = [labels]
    return meta


def _tensor_metadata(name, description, content_type, properties, stats, units=None) -> md.TensorMetadataT:
    meta = md.TensorMetadataT()
    meta.name, meta.description = name, description
    meta.content = md.ContentT()
    meta.content.contentPropertiesType, meta.content.contentProperties = content_type, properties
    if stats is not None:
        meta.stats = md.StatsT()
        meta.stats.min, meta.stats.max = stats
    meta.processUnits = units
    return meta


def _check_raw_pixels_match(tensor, info: ModelInfo) -> tuple[float, int]:
    """The Task Library feeds raw uint8 pixels and ignores the normalisation for uint8 inputs, so the input
    quantization must be that normalisation: (pixel - zero_point) * scale == (pixel - mean) / std."""
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) != 1:
        raise PipelineError("expected one scale/zero point on the uint8 input, received none or per-channel ones")
    scale, zero_point = float(q.scale[0]), int(q.zeroPoint[0])
    pixels = np.arange(info.input_min, info.input_max + 1)[:, None]
    normalised = (pixels - np.array(info.mean)) / np.array(info.std)
    off_by = np.abs((pixels - zero_point) * scale - normalised).max() / scale
    if off_by > MAX_LEVELS_OFF:
        raise PipelineError(
            f"expected the uint8 input quantization to turn raw pixels into (pixel - {_nums(info.mean)}) / "
            f"{_nums(info.std)} within {MAX_LEVELS_OFF:g} levels, received scale={scale:.6g}, zero_point="
            f"{zero_point} (off by {off_by:.1f} levels); calibrate with images spanning the full pixel range")
    return scale, zero_point


def _set_metadata_buffer(flat: tfl.ModelT, data: bytes) -> None:
    buffer = tfl.BufferT()
    buffer.data = data
    for entry in flat.metadata or []:
        if entry.name.decode() == METADATA_NAME:
            flat.buffers[entry.buffer] = buffer
            return
    flat.buffers.append(buffer)
    entry = tfl.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(flat.buffers) - 1
    flat.metadata = [*(flat.metadata or []), entry]


def _append_files(model: bytes, files: dict[str, bytes]) -> bytes:
    """Append `files` as a stored (uncompressed) zip after the flatbuffer, as the populator does."""
    out = io.BytesIO(model)
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a") as archive:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)
    return out.getvalue()


# --- reading ----------------------------------------------------------------------------------------

def _packed_files(model: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, EOFError, ValueError):  # no archive (weights may even look like a broken one)
        return {}


def _tensor_dict(t: md.TensorMetadataT) -> dict:
    out = {"name": _text(t.name), "description": _text(t.description)}
    if t.content is not None:
        out["content"] = _enum_name(md.ContentProperties, t.content.contentPropertiesType)
        props = t.content.contentProperties
        if isinstance(props, md.ImagePropertiesT):
            out["color_space"] = _enum_name(md.ColorSpaceType, props.colorSpace)
            if props.defaultSize is not None:
                out["size"] = [props.defaultSize.width, props.defaultSize.height]
    for unit in t.processUnits or []:
        if unit.optionsType == md.ProcessUnitOptions.NormalizationOptions:
            out["normalization"] = {"mean": _floats(unit.options.mean), "std": _floats(unit.options.std)}
    if t.stats is not None:
        out["stats"] = {"min": _floats(t.stats.min), "max": _floats(t.stats.max)}
    out["associated_files"] = [
        {"name": _text(f.name), "type": _enum_name(md.AssociatedFileType, f.type), "description": _text(f.description)}
        for f in t.associatedFiles or []
    ]
    return out


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _floats(values) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def _nums(values) -> str:
    return str(values[0]) if len(set(values)) == 1 else str(list(values))


def _enum_name(enum, value) -> str:
    return next((k for k, v in vars(enum).items() if v == value and not k.startswith("_")), str(value))
