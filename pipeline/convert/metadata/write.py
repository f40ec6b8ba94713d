"""Embed TFLite metadata (ModelMetadata "M001" and labels.txt) the way tflite-support's MetadataPopulator lays it out."""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from mobilenet_edge.pipeline.convert.metadata.describe import LABELS_FILE, ModelInfo, model_info, numbers_text
from mobilenet_edge.pipeline.convert.metadata.flatbuffer import METADATA_IDENTIFIER, append_files, enum_name, pack, set_metadata_buffer, unpack
from mobilenet_edge.pipeline.convert.metadata.schema import schema as md
from mobilenet_edge.pipeline.errors import PipelineError

if TYPE_CHECKING:
    from mobilenet_edge.calibration.representative import CalibrationSet
    from mobilenet_edge.calibration.tasks import Task
    from mobilenet_edge.pipeline.config import Variant

log = logging.getLogger(__name__)

# Only fields of the initial metadata schema are written, so tflite-support's populator would compute
# 1.0.0 too (metadata_version.cc); tests/test_android.py checks that it does.
MIN_PARSER_VERSION = "1.0.0"


# How far (in input quantization steps, ~grey levels) raw pixels may land from the normalisation on a
# uint8 input. Rounding and a calibration set whose brightest pixel is 253 stay within 2; a dark
# calibration set or a mismatched contract ([0, 1] vs [-1, 1]) is off by tens of levels.
MAX_LEVELS_OFF = 2.0


def add_metadata(model: bytes, info: ModelInfo) -> bytes:
    """Return `model` (.tflite bytes) with `info` embedded as TFLite metadata and labels.txt packed in.

    Replaces metadata and packed files a previous call added, so it is safe to apply twice.
    """
    flat = unpack(model)
    graph = _single_image_classifier(flat, len(info.labels))
    metadata = _model_metadata(info, graph)
    builder = flatbuffers.Builder(0)
    builder.Finish(metadata.Pack(builder), file_identifier=METADATA_IDENTIFIER)
    set_metadata_buffer(flat, bytes(builder.Output()))
    return append_files(pack(flat), {LABELS_FILE: info.labels_text.encode()})


def metadata_writer(info: ModelInfo) -> Callable[[bytes], bytes]:
    """`bytes -> bytes` that embeds `info`: the form `convert_tflite(..., add_metadata=...)` takes."""
    return functools.partial(add_metadata, info=info)


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
    contract = f"(pixel - {numbers_text(info.mean)}) / {numbers_text(info.std)}"
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
                    info.name, enum_name(tfl.TensorType, tensor.type))
        stats, how = None, f"{enum_name(tfl.TensorType, tensor.type).lower()}: quantized {contract}."
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
            f"expected the uint8 input quantization to turn raw pixels into (pixel - {numbers_text(info.mean)}) / "
            f"{numbers_text(info.std)} within {MAX_LEVELS_OFF:g} levels, received scale={scale:.6g}, zero_point="
            f"{zero_point} (off by {off_by:.1f} levels); calibrate with images spanning the full pixel range")
    return scale, zero_point


def metadata_for_variant(variant: Variant, task: Task, calib: CalibrationSet | None,
                         weights_file: Path | None) -> Callable[[bytes], bytes]:
    """The recipe's convert-stage hook: the same metadata `model_info` makes from the manifest records."""
    from mobilenet_edge.pipeline.manifest import weights_record

    record = {"arch": variant.arch, "name": variant.name, "alpha": variant.alpha, "resolution": variant.resolution,
              "task": task.slug, "class_names": list(task.class_names), **weights_record(variant, weights_file)}
    info = model_info(record, task.preprocessing(variant.resolution, variant.arch).to_dict(),
                      calib.to_dict() if calib else None)
    return metadata_writer(info)
