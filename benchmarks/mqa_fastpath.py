#!/usr/bin/env python3
"""Does MobileNet V4 Hybrid-M's Mobile MQA attention stay on the int8 fast path? (issue 24's stretch)

    python benchmarks/mqa_fastpath.py                 # build, convert, audit; writes the record
    python benchmarks/mqa_fastpath.py --from-record   # print the record's table (readme.py renders it)

Hybrid-M (Qin et al. 2024) is Conv-M with Mobile MQA blocks in its last two stages. The issue adds it only if
its attention converts to TFLite and ONNX int8 with every op on the fast path. This script builds the two
attention stages as Hybrid-M has them at 256 px and asks the pipeline's own converters and fast-path audit
(pipeline/convert/fastpath.py) which ops fall off, on this machine's runtimes:
  stage 4: a 16x16x160 feature map, 4 heads, key and value dims 64, keys/values downsampled by a stride-2
           3x3 depthwise conv (the paper's spatial reduction);
  stage 5: 8x8x256, 4 heads, 64/64, no downsampling.
Each block is Mobile MQA as the paper writes it: BatchNorm, a 1x1 query conv for all heads, ONE shared key and
value head (1x1 convs), softmax(q k^T / sqrt(d)) v as two batched matmuls between activations (the heads stacked
along the token axis, which is what sharing K and V allows), a 1x1 output conv and the residual add.
A 4x4 stride-4 conv stem feeds stage 4 from a 64 px image. Weights are random and calibration is 64 random
images: the question is which kernels run, not accuracy.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "records" / "mqa_fastpath.json"
HEADS, KEY_DIM, VALUE_DIM = 4, 64, 64
STAGES = ((16, 160, 2), (8, 256, 1))  # (side, channels, key/value stride) of Hybrid-M's attention stages at 256 px
SAMPLES = 64
PATCH = 4  # a 4x4 stride-4 conv stem turns a 64 px image into stage 4's 16x16 map (the converters take images)


def mobile_mqa(x, side: int, channels: int, kv_stride: int, name: str):
    """One Mobile MQA block with its residual, from standard Keras layers only (so batch_of_one can clone it)."""
    from keras import layers

    tokens_kv = (side // kv_stride) ** 2
    y = layers.BatchNormalization(name=f"{name}_norm")(x)
    q = layers.Conv2D(HEADS * KEY_DIM, 1, use_bias=False, name=f"{name}_query")(y)
    q = layers.Reshape((side * side * HEADS, KEY_DIM), name=f"{name}_query_tokens")(q)  # heads along the tokens
    q = layers.Rescaling(KEY_DIM ** -0.5, name=f"{name}_scale")(q)
    kv = y
    if kv_stride > 1:
        kv = layers.DepthwiseConv2D(3, kv_stride, padding="same", use_bias=False, name=f"{name}_kv_down")(kv)
        kv = layers.BatchNormalization(name=f"{name}_kv_down_bn")(kv)
    k = layers.Conv2D(KEY_DIM, 1, use_bias=False, name=f"{name}_key")(kv)
    v = layers.Conv2D(VALUE_DIM, 1, use_bias=False, name=f"{name}_value")(kv)
    k = layers.Reshape((tokens_kv, KEY_DIM), name=f"{name}_key_tokens")(k)
    v = layers.Reshape((tokens_kv, VALUE_DIM), name=f"{name}_value_tokens")(v)
    scores = layers.Dot(axes=(2, 2), name=f"{name}_qk")([q, k])  # (tokens x heads, tokens_kv)
    weights = layers.Softmax(axis=-1, name=f"{name}_softmax")(scores)
    out = layers.Dot(axes=(2, 1), name=f"{name}_av")([weights, v])  # (tokens x heads, value dim)
    out = layers.Reshape((side, side, HEADS * VALUE_DIM), name=f"{name}_heads")(out)
    out = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_output")(out)
    return layers.Add(name=f"{name}_add")([x, out])


def attention_model():
    """Hybrid-M's two attention stages: a conv stem to 16x16x160, MQA, a strided 1x1 to 8x8x256, MQA, pooling,
    classifier."""
    import keras
    from keras import layers

    (side, channels, stride), (side2, channels2, stride2) = STAGES
    inputs = keras.Input((side * PATCH, side * PATCH, 3), name="input")
    x = layers.Conv2D(channels, PATCH, strides=PATCH, use_bias=False, name="stem")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    x = mobile_mqa(x, side, channels, stride, "mqa4")
    x = layers.Conv2D(channels2, 1, strides=2, use_bias=False, name="down")(x)
    x = layers.BatchNormalization(name="down_bn")(x)
    x = layers.ReLU(name="down_relu")(x)
    x = mobile_mqa(x, side2, channels2, stride2, "mqa5")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="mnv4_hybrid_m_attention")


def audit_rows(path: Path, fmt: str) -> list[dict]:
    """The file's audit on its first runtime, and on each runtime measured beside it here (OpenVINO for .onnx)."""
    from mobilenet_edge.pipeline.convert.fastpath import FastPath, also_audited, audit

    audits = [audit(path)] + [FastPath.from_dict(a) for a in also_audited(path).get("fast_path_by_runtime", {}).values()]
    return [{"format": fmt, "file": path.name, "runtime": a.runtime, "ops": a.ops, "partitions": a.partitions,
             "on_fast_path": a.on_fast_path, "fast": a.fast, "slow": a.slow, "edge": a.edge, "culprits": a.culprits}
            for a in audits]


def measure(workdir: Path) -> dict:
    import keras

    from mobilenet_edge.calibration.representative import CalibrationSet
    from mobilenet_edge.pipeline.config import QuantConfig
    from mobilenet_edge.pipeline.convert.onnx import convert_onnx, convert_onnx_int8
    from mobilenet_edge.pipeline.convert.tflite import tflite_bytes

    keras.utils.set_random_seed(0)
    model = attention_model()
    side = model.input_shape[1]
    samples = np.random.default_rng(0).uniform(-1, 1, (SAMPLES, side, side, 3)).astype(np.float32)
    calib = CalibrationSet.from_samples(samples, "random images", "random")
    quant = QuantConfig(io_dtype="int8")
    rows = []
    for precision in ("fp32", "int8"):
        path = workdir / f"mqa_{precision}.tflite"
        path.write_bytes(tflite_bytes(model, precision, calib if precision == "int8" else None, quant))
        rows += audit_rows(path, f"tflite-{precision}")
    fp32 = workdir / "mqa_fp32.onnx"
    convert_onnx(model, fp32, samples[:4])
    rows += audit_rows(fp32, "onnx-fp32")
    int8 = convert_onnx_int8(fp32, workdir / "mqa_int8.onnx", calib, per_channel=True).path
    rows += audit_rows(int8, "onnx-int8")
    return {"rows": rows}


def versions() -> dict:
    """The manifest's tool versions, and those of the runtimes measured beside the first ones (OpenVINO)."""
    from mobilenet_edge.benchmarks import runtimes
    from mobilenet_edge.pipeline.manifest import tool_versions
    from mobilenet_edge.pipeline.validate.runtimes import installed_version

    return {k: v for k, v in {**tool_versions(), **{n: installed_version(n) for n in runtimes.also_measured()}}.items()
            if v is not None}


def finding(rows: list[dict]) -> str:
    """One sentence from the rows: on the fast path or not, and which op types fall off, per int8 format."""
    int8 = [r for r in rows if r["format"].endswith("int8")]
    if all(r["on_fast_path"] for r in int8):
        return "Mobile MQA stays on the int8 fast path in both formats here: Hybrid-M can be added."
    parts = []
    for r in int8:
        if r["on_fast_path"]:
            parts.append(f"{r['format']} on the fast path ({r['runtime']})")
        else:
            where = f", {r['partitions']} XNNPACK partitions" if r["partitions"] not in (None, 1) else ""
            parts.append(f"{r['format']} off it ({r['runtime']}{where}): {', '.join(r['culprits'])}")
    return ("Mobile MQA does not stay on the int8 fast path here, so Hybrid-M is not added: " + "; ".join(parts)
            + ".")


def table(record: dict) -> str:
    lines = ["| file | runtime | ops | XNNPACK partitions | on the fast path | off it (op x count) |",
             "|---|---|---|---|---|---|"]
    for r in record["rows"]:
        lines.append(f"| {r['format']} | {r['runtime']} | {r['ops']} | {r['partitions'] if r['partitions'] is not None else '—'} "
                     f"| {'yes' if r['on_fast_path'] else 'no'} | {', '.join(r['culprits']) or '—'} |")
    v = record["versions"]
    return "\n".join(lines) + "\n\n" + record["finding"] + "\n\n" + \
        f"(Measured by benchmarks/mqa_fastpath.py with {', '.join(f'{k} {x}' for k, x in v.items())}.)\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--from-record", action="store_true", help="measure nothing; print the record's table")
    args = p.parse_args(argv)
    if args.from_record:
        print(table(json.loads(RECORD.read_text())))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(Path(tmp))
    record = {"what": "Mobile MQA (MNv4 Hybrid-M's attention stages at 256 px) through the pipeline's int8 converters "
                      "and fast-path audit", "heads": HEADS, "key_dim": KEY_DIM, "value_dim": VALUE_DIM,
              "stages": [{"side": s, "channels": c, "kv_stride": k} for s, c, k in STAGES],
              "machine": platform.processor() or platform.machine(), "versions": versions(), **result}
    record["finding"] = finding(record["rows"])
    tmp = RECORD.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(RECORD)
    print(table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
