"""ONNX formats: fp32 (tf2onnx) and QDQ int8 (onnxruntime's static quantizer) `.onnx` files
(pipeline/convert/onnx.py). The int8 file is made from the fp32 one, which it converts first when missing."""
from __future__ import annotations

from mobilenet_edge.pipeline.formats import ConvertContext, Format


def _metadata(ctx: ConvertContext) -> dict:
    """The manifest's preprocessing record and the labels, inside the file: a file copied alone says how to feed it."""
    from mobilenet_edge.pipeline.convert.onnx import metadata_props

    variant = ctx.cfg.variant
    return metadata_props(ctx.task.preprocessing(variant.resolution, variant.arch).to_dict(), ctx.task.class_names)


def _fp32(ctx: ConvertContext):
    from mobilenet_edge.pipeline.convert.onnx import convert_onnx

    path = ctx.folder / FP32.file_name(ctx.cfg.variant.name)
    return convert_onnx(ctx.model, path, ctx.calib.head(8), ctx.cfg.export.opset, metadata=_metadata(ctx))


def convert_fp32(ctx: ConvertContext) -> None:
    ctx.add(_fp32(ctx))


def convert_int8(ctx: ConvertContext) -> None:
    """QDQ int8 from the fp32 file (made first, unlisted, when this export did not make it and it is missing)."""
    from mobilenet_edge.pipeline.convert.onnx import convert_onnx_int8

    name, quant = ctx.cfg.variant.name, ctx.cfg.quant
    fp32 = ctx.folder / FP32.file_name(name)
    if not fp32.is_file():
        _fp32(ctx)
    if ctx.budget:
        for artifact in ctx.budget.onnx(fp32, _metadata(ctx)):
            ctx.add(artifact)
    else:
        ctx.add(convert_onnx_int8(fp32, ctx.folder / INT8.file_name(name), ctx.calib, quant.per_channel,
                                  metadata=_metadata(ctx), activations=quant.onnx_activations))


def _int8_settings(quant, opset) -> dict:
    return {"opset": opset, "per_channel": quant.per_channel, "n": quant.num_samples, "seed": quant.seed,
            **({"budget": quant.budget} if quant.budget is not None else {})}


FP32 = Format("onnx-fp32", "onnx", "fp32", convert_fp32, aliases=("onnx",), uses_samples=True,
              settings=lambda quant, opset: {"opset": opset})
INT8 = Format("onnx-int8", "onnx", "int8", convert_int8, aliases=("onnx-int8",), calibrated=True, uses_samples=True,
              settings=_int8_settings)
FORMATS = (FP32, INT8)
