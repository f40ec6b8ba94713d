"""Read a .tflite's metadata back as plain data (what Android's Task Library will see)."""
from __future__ import annotations

from mobilenet_edge.pipeline.convert.metadata.describe import LABELS_FILE
from mobilenet_edge.pipeline.convert.metadata.flatbuffer import METADATA_NAME, enum_name, metadata_buffer, packed_files
from mobilenet_edge.pipeline.convert.metadata.schema import schema as md
from mobilenet_edge.pipeline.errors import PipelineError

def has_metadata(model: bytes) -> bool:
    return metadata_buffer(model) is not None


def read_metadata(model: bytes) -> dict:
    """The metadata of a .tflite as plain data (names, normalisation, stats, files, labels)."""
    buf = metadata_buffer(model)
    if buf is None:
        raise PipelineError(f"expected a .tflite carrying {METADATA_NAME}, received one without metadata")
    meta = md.ModelMetadataT.InitFromPackedBuf(buf, 0)
    graph = meta.subgraphMetadata[0]
    files = packed_files(model)
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


def _tensor_dict(t: md.TensorMetadataT) -> dict:
    out = {"name": _text(t.name), "description": _text(t.description)}
    if t.content is not None:
        out["content"] = enum_name(md.ContentProperties, t.content.contentPropertiesType)
        props = t.content.contentProperties
        if isinstance(props, md.ImagePropertiesT):
            out["color_space"] = enum_name(md.ColorSpaceType, props.colorSpace)
            if props.defaultSize is not None:
                out["size"] = [props.defaultSize.width, props.defaultSize.height]
    for unit in t.processUnits or []:
        if unit.optionsType == md.ProcessUnitOptions.NormalizationOptions:
            out["normalization"] = {"mean": _floats(unit.options.mean), "std": _floats(unit.options.std)}
    if t.stats is not None:
        out["stats"] = {"min": _floats(t.stats.min), "max": _floats(t.stats.max)}
    out["associated_files"] = [
        {"name": _text(f.name), "type": enum_name(md.AssociatedFileType, f.type), "description": _text(f.description)}
        for f in t.associatedFiles or []
    ]
    return out


def _text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _floats(values) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


