"""TFLite formats: fp32, fp16, dynamic-range and full-integer int8 `.tflite` files (pipeline/convert/tflite.py)."""
from __future__ import annotations

from mobilenet_edge.pipeline.formats import ConvertContext, Format


def _float(precision: str):
    def convert(ctx: ConvertContext) -> None:
        from mobilenet_edge.pipeline.convert.tflite import convert_tflite, tflite_file_name

        path = ctx.folder / tflite_file_name(ctx.cfg.variant.name, precision)
        ctx.add(convert_tflite(ctx.model, precision, path, ctx.calib, ctx.cfg.quant, ctx.float_metadata))
    return convert


def convert_int8(ctx: ConvertContext) -> None:
    """The int8 file (BUDGET: the search's pick), then the diagnosis / keep-k file and the per-tensor file."""
    from mobilenet_edge.pipeline.config import QuantConfig
    from mobilenet_edge.pipeline.convert.tflite import convert_tflite, tflite_file_name

    cfg, name = ctx.cfg, ctx.cfg.variant.name
    if ctx.budget:
        for artifact in ctx.budget.tflite(ctx.add_metadata):
            ctx.add(artifact)
    else:
        ctx.add(convert_tflite(ctx.model, "int8", ctx.folder / tflite_file_name(name, "int8"), ctx.calib, cfg.quant,
                               ctx.add_metadata))
    if cfg.quant.diagnose or cfg.quant.keep_float:
        for artifact in diagnose_and_select(ctx):
            ctx.add(artifact)
    if cfg.per_tensor:
        per_tensor = QuantConfig(**{**cfg.quant.__dict__, "per_channel": False})
        ctx.add(convert_tflite(ctx.model, "int8", ctx.folder / tflite_file_name(name, "int8", False), ctx.calib,
                               per_tensor, ctx.add_metadata))


def diagnose_and_select(ctx: ConvertContext) -> list:
    """Per-layer int8 diagnosis (diagnosis.json) and, with keep_float = k, the selectively quantized model."""
    from mobilenet_edge.pipeline.artifacts import write_json
    from mobilenet_edge.pipeline.convert.diagnose import diagnose_int8, selective_int8
    from mobilenet_edge.pipeline.convert.tflite import convert_tflite
    from mobilenet_edge.pipeline.validate import DIAGNOSIS

    cfg, model, calib = ctx.cfg, ctx.model, ctx.calib
    diagnosis = diagnose_int8(model, calib, cfg.quant)
    write_json(ctx.folder / DIAGNOSIS, diagnosis.to_dict())
    k = cfg.quant.keep_float
    if not k:
        return []
    data = selective_int8(model, calib, diagnosis, k, cfg.quant)
    kept = [layer["tensor"] for layer in diagnosis.worst_layers[:k]]
    path = ctx.folder / f"{cfg.variant.name}_int8_keep{k}.tflite"
    return [convert_tflite(model, "int8", path, calib, cfg.quant, ctx.add_metadata, data=data,
                           extra=(("keep_float", kept),))]


def _int8_settings(quant, opset) -> dict:
    return {"io_dtype": quant.io_dtype, "per_channel": quant.per_channel, "n": quant.num_samples, "seed": quant.seed,
            **({"budget": quant.budget} if quant.budget is not None else {})}


FORMATS = (
    Format("tflite-fp32", "tflite", "fp32", _float("fp32"), aliases=("fp32",)),
    Format("tflite-fp16", "tflite", "fp16", _float("fp16"), aliases=("fp16",)),
    Format("tflite-dynamic", "tflite", "dynamic", _float("dynamic"), aliases=("dynamic",)),
    Format("tflite-int8", "tflite", "int8", convert_int8, aliases=("int8",), calibrated=True, uses_samples=True,
           settings=_int8_settings),
)
